/*
 * DesignWare eDMA (v0 register map), the DMA engine integrated in the
 * DesignWare PCIe controller
 *
 * Write channels read the local side (the controller's DMA address
 * space) and write the remote side (memory requests onto the link);
 * read channels do the opposite.  The engine moves data in bounded
 * pieces from a timer, at a modelled bandwidth, so software sees a
 * transfer in flight and no callback does unbounded work.
 *
 * The controller owns the block: it maps dw_edma_mmio(), wires the IRQ
 * lines, and serves the remote side through DWEDMAOps.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCI_EP_DW_EDMA_H
#define HW_PCI_EP_DW_EDMA_H

#include "exec/hwaddr.h"
#include "exec/memattrs.h"
#include "hw/irq.h"
#include "hw/registerfields.h"
#include "system/memory.h"

#define DW_EDMA_MAX_CHANNELS    8
#define DW_EDMA_MAX_IRQS        (2 * DW_EDMA_MAX_CHANNELS)
/* The unrolled map: globals, then a 0x200 stride of channel pairs */
#define DW_EDMA_UNROLL_SIZE     0x2000
#define DW_EDMA_CH_BASE         0x200
#define DW_EDMA_CH_STRIDE       0x200
#define DW_EDMA_CH_RD_OFFSET    0x100
#define DW_EDMA_CH_REGS_SIZE    0x24
/* The legacy viewport map: globals, viewport_sel, one channel window */
#define DW_EDMA_LEGACY_SIZE     (0x100 + DW_EDMA_CH_REGS_SIZE)
/* Linked-list elements take 24-byte slots */
#define DW_EDMA_LLI_SIZE        24

typedef enum DWEDMADir {
    DW_EDMA_WRITE = 0,      /* local to remote */
    DW_EDMA_READ = 1,       /* remote to local */
} DWEDMADir;

/* Global registers (offsets from the eDMA base; write, then read side) */
REG32(EDMA_CTRL_DATA_ARB_PRIOR, 0x000)
REG32(EDMA_CTRL, 0x008)
    FIELD(EDMA_CTRL, NUM_WR, 0, 4)
    FIELD(EDMA_CTRL, NUM_RD, 16, 4)
REG32(EDMA_WR_ENGINE_EN, 0x00c)
REG32(EDMA_WR_DOORBELL, 0x010)
    FIELD(EDMA_DOORBELL, CH, 0, 3)
    FIELD(EDMA_DOORBELL, STOP, 31, 1)
REG32(EDMA_WR_CH_ARB_WEIGHT_LO, 0x018)
REG32(EDMA_WR_CH_ARB_WEIGHT_HI, 0x01c)
REG32(EDMA_RD_ENGINE_EN, 0x02c)
REG32(EDMA_RD_DOORBELL, 0x030)
REG32(EDMA_RD_CH_ARB_WEIGHT_LO, 0x038)
REG32(EDMA_RD_CH_ARB_WEIGHT_HI, 0x03c)
REG32(EDMA_WR_INT_STATUS, 0x04c)
    FIELD(EDMA_INT, DONE, 0, 8)
    FIELD(EDMA_INT, ABORT, 16, 8)
REG32(EDMA_WR_INT_MASK, 0x054)
REG32(EDMA_WR_INT_CLEAR, 0x058)
REG32(EDMA_WR_ERR_STATUS, 0x05c)
    FIELD(EDMA_WR_ERR, APP_READ, 0, 8)
    FIELD(EDMA_WR_ERR, LL_FETCH, 16, 8)
REG32(EDMA_WR_DONE_IMWR_LO, 0x060)
REG32(EDMA_WR_DONE_IMWR_HI, 0x064)
REG32(EDMA_WR_ABORT_IMWR_LO, 0x068)
REG32(EDMA_WR_ABORT_IMWR_HI, 0x06c)
REG32(EDMA_WR_IMWR_DATA, 0x070)         /* four: channels 0/1 to 6/7 */
REG32(EDMA_WR_LL_ERR_EN, 0x090)
REG32(EDMA_RD_INT_STATUS, 0x0a0)
REG32(EDMA_RD_INT_MASK, 0x0a8)
REG32(EDMA_RD_INT_CLEAR, 0x0ac)
REG32(EDMA_RD_ERR_STATUS_LO, 0x0b4)
    FIELD(EDMA_RD_ERR_LO, APP_WRITE, 0, 8)
    FIELD(EDMA_RD_ERR_LO, LL_FETCH, 16, 8)
REG32(EDMA_RD_ERR_STATUS_HI, 0x0b8)
    FIELD(EDMA_RD_ERR_HI, UR, 0, 8)
    FIELD(EDMA_RD_ERR_HI, CA, 8, 8)
    FIELD(EDMA_RD_ERR_HI, TIMEOUT, 16, 8)
REG32(EDMA_RD_LL_ERR_EN, 0x0c4)
REG32(EDMA_RD_DONE_IMWR_LO, 0x0cc)
REG32(EDMA_RD_DONE_IMWR_HI, 0x0d0)
REG32(EDMA_RD_ABORT_IMWR_LO, 0x0d4)
REG32(EDMA_RD_ABORT_IMWR_HI, 0x0d8)
REG32(EDMA_RD_IMWR_DATA, 0x0dc)
REG32(EDMA_VIEWPORT_SEL, 0x0fc)         /* legacy map only */
    FIELD(EDMA_VIEWPORT_SEL, CH, 0, 3)
    FIELD(EDMA_VIEWPORT_SEL, READ, 31, 1)
REG32(EDMA_WR_ENGINE_CHGROUP, 0x100)    /* unrolled map only, to 0x1a8 */
REG32(EDMA_RD_ENGINE_CHGROUP, 0x104)
REG32(EDMA_WR_ENGINE_HSHAKE_CNT_LO, 0x108)
REG32(EDMA_WR_ENGINE_HSHAKE_CNT_HI, 0x10c)
REG32(EDMA_RD_ENGINE_HSHAKE_CNT_LO, 0x118)
REG32(EDMA_RD_ENGINE_HSHAKE_CNT_HI, 0x11c)
REG32(EDMA_WR_CH_PWR_EN, 0x128)         /* eight of each */
REG32(EDMA_RD_CH_PWR_EN, 0x168)

/* Channel registers, from the channel's base */
REG32(EDMA_CH_CTRL1, 0x00)
    FIELD(EDMA_CH_CTRL1, CB, 0, 1)
    FIELD(EDMA_CH_CTRL1, TCB, 1, 1)
    FIELD(EDMA_CH_CTRL1, LLP, 2, 1)
    FIELD(EDMA_CH_CTRL1, LIE, 3, 1)
    FIELD(EDMA_CH_CTRL1, RIE, 4, 1)
    FIELD(EDMA_CH_CTRL1, CS, 5, 2)
    FIELD(EDMA_CH_CTRL1, CCS, 8, 1)
    FIELD(EDMA_CH_CTRL1, LLE, 9, 1)
REG32(EDMA_CH_CTRL2, 0x04)
REG32(EDMA_CH_SIZE, 0x08)
REG32(EDMA_CH_SAR_LO, 0x0c)
REG32(EDMA_CH_SAR_HI, 0x10)
REG32(EDMA_CH_DAR_LO, 0x14)
REG32(EDMA_CH_DAR_HI, 0x18)
REG32(EDMA_CH_LLP_LO, 0x1c)
REG32(EDMA_CH_LLP_HI, 0x20)

/* ctrl1.CS, as Linux reads it (dw_edma_v0_core_ch_status()) */
#define DW_EDMA_CS_IDLE         0       /* never started */
#define DW_EDMA_CS_RUNNING      1
#define DW_EDMA_CS_HALTED       2       /* aborted */
#define DW_EDMA_CS_STOPPED      3       /* done, or at an element not ours */

typedef struct DWEDMAChan {
    uint32_t ctrl1;
    uint32_t ctrl2;
    uint32_t size;          /* bytes left of the current element */
    uint64_t sar;
    uint64_t dar;
    uint64_t llp;           /* linked-list mode: the current element */
    uint32_t elem_ctrl;     /* the data element being moved, if loaded */
    bool elem_loaded;
    uint32_t pwr_en;
    uint8_t imwr_pending;   /* DW_EDMA_IMWR_*: for the next tick to send */
    uint32_t epoch;         /* bumped by anything that stops it */
} DWEDMAChan;

#define DW_EDMA_IMWR_DONE       1
#define DW_EDMA_IMWR_ABORT      2

typedef struct DWEDMADirRegs {
    uint32_t engine_en;
    uint32_t arb_weight[2];
    uint32_t int_status;
    uint32_t int_mask;
    uint32_t err_status[2];     /* write side: [0] only */
    uint64_t done_imwr;
    uint64_t abort_imwr;
    uint32_t imwr_data[DW_EDMA_MAX_CHANNELS / 2];
    uint32_t ll_err_en;
    uint32_t chgroup;
    uint32_t hshake_cnt[2];
} DWEDMADirRegs;

typedef struct DWEDMAOps {
    /*
     * How many of @len bytes at PCI address @addr one remote request may
     * move: all of them where the remote side is RAM we map, else what a
     * TLP may carry; 0 for a write while the link has no room for it.
     * May drop the BQL (to ask the peer what it maps).
     */
    unsigned (*remote_prepare)(void *opaque, uint64_t addr, unsigned len,
                               bool is_write);
    /*
     * Memory requests for @len bytes (one, as remote_prepare() allowed;
     * more, split as TLPs must be, otherwise) at PCI address @addr.  May
     * drop the BQL (a read waits for its completion).  MEMTX_DECODE_ERROR: an
     * Unsupported Request; MEMTX_ACCESS_ERROR: no completion (a timeout,
     * the link down); MEMTX_ERROR: any other failed completion.
     */
    MemTxResult (*remote_rw)(void *opaque, uint64_t addr, void *buf,
                             unsigned len, bool is_write);
} DWEDMAOps;

typedef struct DWEDMA {
    MemoryRegion mmio;
    DWEDMADirRegs dir[2];
    DWEDMAChan ch[2][DW_EDMA_MAX_CHANNELS];
    uint32_t arb_prior;
    uint32_t viewport_sel;
    bool emulated_irq;          /* the interrupt-emulation latch */
    bool stalled;               /* this tick found no room on the link */
    QEMUTimer *timer;
    qemu_irq irq[DW_EDMA_MAX_IRQS];
    uint8_t *bounce;

    /* Wiring, from the controller */
    const DWEDMAOps *ops;
    void *opaque;
    AddressSpace *local_as;
    MemTxAttrs local_attrs;

    /* Configuration, from the controller's properties */
    uint8_t num_ch[2];
    bool legacy;                /* the viewport map, before IP 5.40a */
    bool irq_per_channel;       /* dma0..N, else one "dma" line */
    uint32_t bandwidth_mib;     /* MiB/s; 0: as fast as possible */

    uint64_t aborts;            /* channels aborted, for any reason */
} DWEDMA;

extern const VMStateDescription vmstate_dw_edma;

bool dw_edma_check_config(DWEDMA *e, Error **errp);
void dw_edma_init(DWEDMA *e, Object *owner, const DWEDMAOps *ops,
                  void *opaque, AddressSpace *local_as, MemTxAttrs attrs);
void dw_edma_cleanup(DWEDMA *e);
void dw_edma_reset(DWEDMA *e);
/* How many IRQ lines the controller wires (dw_edma_irq_name() names) */
unsigned dw_edma_num_irqs(DWEDMA *e);
/* Channels of either direction with CS = running: traffic in flight */
unsigned dw_edma_running_channels(DWEDMA *e);
char *dw_edma_irq_name(DWEDMA *e, unsigned n);
/* The register block: at the controller's "dma" reg, or DBI + 0x970 */
static inline MemoryRegion *dw_edma_mmio(DWEDMA *e)
{
    return &e->mmio;
}

#endif
