/*
 * DesignWare PCIe internal address translation unit (iATU)
 *
 * One register file and one set of translation functions serve both
 * directions: outbound regions map local CPU addresses onto PCI
 * addresses, inbound regions map PCI addresses (by BAR or by address)
 * onto the endpoint's DMA address space.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCI_EP_DW_PCIE_EP_IATU_H
#define HW_PCI_EP_DW_PCIE_EP_IATU_H

#include "exec/hwaddr.h"
#include "hw/registerfields.h"

#define DW_IATU_MAX_REGIONS     256
/* Unrolled layout: region i at i * 0x200, inbound half at +0x100. */
#define DW_IATU_REGION_STRIDE   0x200
#define DW_IATU_INBOUND_OFFSET  0x100
#define DW_IATU_REGS_SIZE       0x24

typedef enum DWiATUDir {
    DW_IATU_OUTBOUND = 0,
    DW_IATU_INBOUND = 1,
} DWiATUDir;

/* Registers of one region, as offsets within it */
REG32(IATU_CTRL1, 0x00)
    FIELD(IATU_CTRL1, TYPE, 0, 5)
    FIELD(IATU_CTRL1, TD, 8, 1)
    FIELD(IATU_CTRL1, INCREASE_REGION_SIZE, 13, 1)
    FIELD(IATU_CTRL1, FUNC_NUM, 20, 3)
REG32(IATU_CTRL2, 0x04)
    FIELD(IATU_CTRL2, MSG_CODE, 0, 8)
    FIELD(IATU_CTRL2, BAR_NUM, 8, 3)
    FIELD(IATU_CTRL2, FUNC_NUM_MATCH_EN, 19, 1)
    FIELD(IATU_CTRL2, INHIBIT_PAYLOAD, 22, 1)
    FIELD(IATU_CTRL2, CFG_SHIFT_MODE, 28, 1)
    FIELD(IATU_CTRL2, BAR_MODE_ENABLE, 30, 1)
    FIELD(IATU_CTRL2, REGION_EN, 31, 1)
REG32(IATU_LOWER_BASE, 0x08)
REG32(IATU_UPPER_BASE, 0x0c)
REG32(IATU_LIMIT, 0x10)
REG32(IATU_LOWER_TARGET, 0x14)
REG32(IATU_UPPER_TARGET, 0x18)
REG32(IATU_CTRL3, 0x1c)
REG32(IATU_UPPER_LIMIT, 0x20)

/* TLP types in CTRL1.TYPE */
#define DW_IATU_TYPE_MEM        0x0
#define DW_IATU_TYPE_IO         0x2

typedef struct DWiATURegion {
    uint32_t ctrl1;
    uint32_t ctrl2;
    uint32_t lower_base;
    uint32_t upper_base;
    uint32_t limit;
    uint32_t lower_target;
    uint32_t upper_target;
    uint32_t upper_limit;
} DWiATURegion;

typedef struct DWiATU {
    DWiATURegion region[2][DW_IATU_MAX_REGIONS];

    /* Configuration, from the controller's properties */
    uint32_t num_regions[2];
    uint64_t region_align;      /* power of two, 4 KiB to 2 GiB */
    uint64_t max_region_size;   /* power of two, at least 4 GiB */
} DWiATU;

/* What an inbound TLP hit on the function's side, for BAR matching. */
typedef struct DWiATUBarHit {
    uint8_t func;
    uint8_t bar;
    uint64_t bar_base;
    uint64_t bar_mask;      /* size - 1 */
} DWiATUBarHit;

/* The result of a translation. */
typedef struct DWiATUTranslation {
    int index;              /* the region that matched */
    uint64_t addr;          /* the translated address */
    uint64_t remaining;     /* bytes from addr to the end of the region */
    uint8_t func;           /* outbound: the function number of the TLP */
} DWiATUTranslation;

void dw_iatu_reset(DWiATU *iatu);
bool dw_iatu_check_config(const DWiATU *iatu, Error **errp);

/* Register access to region @index of direction @dir; @reg as above. */
uint32_t dw_iatu_read(DWiATU *iatu, DWiATUDir dir, unsigned index,
                      hwaddr reg);
void dw_iatu_write(DWiATU *iatu, DWiATUDir dir, unsigned index, hwaddr reg,
                   uint32_t val);

/* The unrolled register space: decode an offset into dir/index/reg. */
uint32_t dw_iatu_unrolled_read(DWiATU *iatu, hwaddr offset);
void dw_iatu_unrolled_write(DWiATU *iatu, hwaddr offset, uint32_t val);

/*
 * Outbound: the enabled memory region, lowest index first, whose
 * [base, limit] holds the CPU address @cpu_addr.
 */
bool dw_iatu_translate_outbound(const DWiATU *iatu, uint64_t cpu_addr,
                                DWiATUTranslation *out);

/*
 * The CPU addresses [*lo, *hi] around @cpu_addr that translate through
 * the same outbound region as @cpu_addr did (@t), and linearly.
 */
void dw_iatu_outbound_span(const DWiATU *iatu, uint64_t cpu_addr,
                           const DWiATUTranslation *t, uint64_t *lo,
                           uint64_t *hi);

/*
 * Inbound: the enabled memory region, lowest index first, that matches a
 * TLP to @pci_addr, which hit BAR @hit->bar of function @hit->func.
 * BAR-match regions match by BAR (and function, if asked to);
 * address-match regions by [base, limit].
 */
bool dw_iatu_translate_inbound(const DWiATU *iatu, uint64_t pci_addr,
                               const DWiATUBarHit *hit,
                               DWiATUTranslation *out);

extern const VMStateDescription vmstate_dw_iatu;

#endif
