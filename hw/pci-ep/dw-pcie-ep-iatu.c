/*
 * DesignWare PCIe internal address translation unit (iATU)
 *
 * Register behaviour follows what Linux probes (drivers/pci/controller/
 * dwc/pcie-designware.c, dw_pcie_iatu_detect()):
 *  - LOWER_TARGET stores all 32 bits in every implemented region and
 *    reads zero beyond them, which is how Linux counts the regions;
 *  - the low bits of LIMIT read as ones: their number is the region
 *    alignment;
 *  - UPPER_LIMIT stores only the bits below the maximum region size;
 *  - CTRL2.REGION_EN reads back at once.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/log.h"
#include "qemu/units.h"
#include "migration/vmstate.h"
#include "hw/pci-ep/dw-pcie-ep-iatu.h"
#include "trace.h"

#define IATU_CTRL1_MASK (R_IATU_CTRL1_TYPE_MASK | R_IATU_CTRL1_TD_MASK | \
                         R_IATU_CTRL1_INCREASE_REGION_SIZE_MASK |           \
                         R_IATU_CTRL1_FUNC_NUM_MASK)
#define IATU_CTRL2_MASK (R_IATU_CTRL2_MSG_CODE_MASK |                       \
                         R_IATU_CTRL2_BAR_NUM_MASK |                        \
                         R_IATU_CTRL2_FUNC_NUM_MATCH_EN_MASK |              \
                         R_IATU_CTRL2_INHIBIT_PAYLOAD_MASK |                \
                         R_IATU_CTRL2_CFG_SHIFT_MODE_MASK |                 \
                         R_IATU_CTRL2_BAR_MODE_ENABLE_MASK |                \
                         R_IATU_CTRL2_REGION_EN_MASK)

static const char *const dir_name[] = { "outbound", "inbound" };

void dw_iatu_reset(DWiATU *iatu)
{
    /* Every region is disabled: Linux never clears CTRL2 at probe. */
    memset(iatu->region, 0, sizeof(iatu->region));
}

bool dw_iatu_check_config(const DWiATU *iatu, Error **errp)
{
    for (int dir = 0; dir < 2; dir++) {
        if (iatu->num_regions[dir] > DW_IATU_MAX_REGIONS) {
            error_setg(errp, "at most %d %s iATU regions, not %u",
                       DW_IATU_MAX_REGIONS, dir_name[dir],
                       iatu->num_regions[dir]);
            return false;
        }
    }
    /* Linux computes 1 << fls(LIMIT bits) in an int: 2 GiB at most */
    if (!is_power_of_2(iatu->region_align) || iatu->region_align < 4 * KiB ||
        iatu->region_align > 2 * GiB) {
        error_setg(errp, "the iATU region alignment must be a power of two "
                   "from 4 KiB to 2 GiB, not 0x%" PRIx64, iatu->region_align);
        return false;
    }
    if (!is_power_of_2(iatu->max_region_size) ||
        iatu->max_region_size < 4 * GiB) {
        error_setg(errp, "the maximum iATU region size must be a power of "
                   "two of at least 4 GiB, not 0x%" PRIx64,
                   iatu->max_region_size);
        return false;
    }
    return true;
}

/* Bits of LOWER_BASE and LIMIT below the region alignment */
static uint32_t iatu_align_bits(const DWiATU *iatu)
{
    return (uint32_t)(iatu->region_align - 1);
}

static uint32_t iatu_upper_limit_mask(const DWiATU *iatu)
{
    return (uint32_t)((iatu->max_region_size - 1) >> 32);
}

static DWiATURegion *iatu_region(DWiATU *iatu, DWiATUDir dir,
                                 unsigned index)
{
    if (index >= iatu->num_regions[dir]) {
        return NULL;
    }
    return &iatu->region[dir][index];
}

uint32_t dw_iatu_read(DWiATU *iatu, DWiATUDir dir, unsigned index,
                      hwaddr reg)
{
    DWiATURegion *r = iatu_region(iatu, dir, index);
    uint32_t val = 0;

    if (!r) {
        /* Not implemented: reads as zero, which ends Linux's count. */
        return 0;
    }
    switch (reg) {
    case A_IATU_CTRL1:
        val = r->ctrl1;
        break;
    case A_IATU_CTRL2:
        val = r->ctrl2;
        break;
    case A_IATU_LOWER_BASE:
        val = r->lower_base;
        break;
    case A_IATU_UPPER_BASE:
        val = r->upper_base;
        break;
    case A_IATU_LIMIT:
        val = r->limit | iatu_align_bits(iatu);
        break;
    case A_IATU_LOWER_TARGET:
        val = r->lower_target;
        break;
    case A_IATU_UPPER_TARGET:
        val = r->upper_target;
        break;
    case A_IATU_UPPER_LIMIT:
        val = r->upper_limit;
        break;
    case A_IATU_CTRL3:
    default:
        break;
    }
    trace_dw_iatu_read(dir_name[dir], index, reg, val);
    return val;
}

void dw_iatu_write(DWiATU *iatu, DWiATUDir dir, unsigned index, hwaddr reg,
                   uint32_t val)
{
    DWiATURegion *r = iatu_region(iatu, dir, index);

    trace_dw_iatu_write(dir_name[dir], index, reg, val);
    if (!r) {
        /* Linux writes here to count the regions: not an error. */
        return;
    }
    switch (reg) {
    case A_IATU_CTRL1:
        r->ctrl1 = val & IATU_CTRL1_MASK;
        break;
    case A_IATU_CTRL2:
        r->ctrl2 = val & IATU_CTRL2_MASK;
        break;
    case A_IATU_LOWER_BASE:
        r->lower_base = val & ~iatu_align_bits(iatu);
        break;
    case A_IATU_UPPER_BASE:
        r->upper_base = val;
        break;
    case A_IATU_LIMIT:
        r->limit = val & ~iatu_align_bits(iatu);
        break;
    case A_IATU_LOWER_TARGET:
        r->lower_target = val;
        break;
    case A_IATU_UPPER_TARGET:
        r->upper_target = val;
        break;
    case A_IATU_UPPER_LIMIT:
        r->upper_limit = val & iatu_upper_limit_mask(iatu);
        break;
    case A_IATU_CTRL3:
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "dw-pcie-ep: write to reserved "
                      "%s iATU register 0x%" HWADDR_PRIx " of region %u\n",
                      dir_name[dir], reg, index);
        break;
    }
}

static bool iatu_decode(hwaddr offset, DWiATUDir *dir, unsigned *index,
                        hwaddr *reg)
{
    hwaddr in_region = offset % DW_IATU_REGION_STRIDE;

    *index = offset / DW_IATU_REGION_STRIDE;
    *dir = in_region >= DW_IATU_INBOUND_OFFSET ? DW_IATU_INBOUND
                                               : DW_IATU_OUTBOUND;
    *reg = in_region % DW_IATU_INBOUND_OFFSET;
    return *reg < DW_IATU_REGS_SIZE;
}

uint32_t dw_iatu_unrolled_read(DWiATU *iatu, hwaddr offset)
{
    DWiATUDir dir;
    unsigned index;
    hwaddr reg;

    if (!iatu_decode(offset, &dir, &index, &reg)) {
        return 0;
    }
    return dw_iatu_read(iatu, dir, index, reg);
}

void dw_iatu_unrolled_write(DWiATU *iatu, hwaddr offset, uint32_t val)
{
    DWiATUDir dir;
    unsigned index;
    hwaddr reg;

    if (!iatu_decode(offset, &dir, &index, &reg)) {
        qemu_log_mask(LOG_GUEST_ERROR, "dw-pcie-ep: write to reserved iATU "
                      "offset 0x%" HWADDR_PRIx "\n", offset);
        return;
    }
    dw_iatu_write(iatu, dir, index, reg, val);
}

static uint64_t region_base(const DWiATURegion *r)
{
    return deposit64(r->lower_base, 32, 32, r->upper_base);
}

static uint64_t region_target(const DWiATURegion *r)
{
    return deposit64(r->lower_target, 32, 32, r->upper_target);
}

/*
 * Without INCREASE_REGION_SIZE a region ends within the 4 GiB block of its
 * base; with it, UPPER_LIMIT gives the bits of the limit's upper half
 * below the maximum region size, and the base gives the bits above.
 */
static uint64_t region_limit(const DWiATU *iatu, const DWiATURegion *r)
{
    uint32_t m = iatu_upper_limit_mask(iatu);
    uint32_t upper = r->upper_base;

    if (FIELD_EX32(r->ctrl1, IATU_CTRL1, INCREASE_REGION_SIZE)) {
        upper = (r->upper_base & ~m) | (r->upper_limit & m);
    }

    return deposit64(r->limit | iatu_align_bits(iatu), 32, 32, upper);
}

static bool region_enabled_for_mem(const DWiATURegion *r)
{
    return FIELD_EX32(r->ctrl2, IATU_CTRL2, REGION_EN) &&
           FIELD_EX32(r->ctrl1, IATU_CTRL1, TYPE) == DW_IATU_TYPE_MEM;
}

/* Address match: @addr in [base, limit] of @r */
static bool region_covers(const DWiATU *iatu, const DWiATURegion *r,
                          uint64_t addr, DWiATUTranslation *out)
{
    uint64_t base = region_base(r), limit = region_limit(iatu, r);

    if (addr < base || addr > limit) {
        return false;
    }
    out->addr = region_target(r) + (addr - base);
    out->remaining = MIN(limit - addr, UINT64_MAX - 1) + 1;
    return true;
}

bool dw_iatu_translate_outbound(const DWiATU *iatu, uint64_t cpu_addr,
                                DWiATUTranslation *out)
{
    for (unsigned i = 0; i < iatu->num_regions[DW_IATU_OUTBOUND]; i++) {
        const DWiATURegion *r = &iatu->region[DW_IATU_OUTBOUND][i];

        if (region_enabled_for_mem(r) &&
            region_covers(iatu, r, cpu_addr, out)) {
            out->index = i;
            out->func = FIELD_EX32(r->ctrl1, IATU_CTRL1, FUNC_NUM);
            trace_dw_iatu_translate("outbound", i, cpu_addr, out->addr);
            return true;
        }
    }
    return false;
}

void dw_iatu_outbound_span(const DWiATU *iatu, uint64_t cpu_addr,
                           const DWiATUTranslation *t, uint64_t *lo,
                           uint64_t *hi)
{
    const DWiATURegion *r = &iatu->region[DW_IATU_OUTBOUND][t->index];

    *lo = region_base(r);
    *hi = region_limit(iatu, r);
    /* A lower region, where it overlaps, wins: it does not hold cpu_addr. */
    for (int i = 0; i < t->index; i++) {
        const DWiATURegion *o = &iatu->region[DW_IATU_OUTBOUND][i];

        if (!region_enabled_for_mem(o)) {
            continue;
        }
        if (region_limit(iatu, o) < cpu_addr) {
            *lo = MAX(*lo, region_limit(iatu, o) + 1);
        } else if (region_base(o) > cpu_addr) {
            *hi = MIN(*hi, region_base(o) - 1);
        }
    }
}

static bool region_matches_bar(const DWiATURegion *r, uint64_t pci_addr,
                               const DWiATUBarHit *hit,
                               DWiATUTranslation *out)
{
    uint64_t offset = pci_addr - hit->bar_base;

    if (FIELD_EX32(r->ctrl2, IATU_CTRL2, BAR_NUM) != hit->bar) {
        return false;
    }
    if (FIELD_EX32(r->ctrl2, IATU_CTRL2, FUNC_NUM_MATCH_EN) &&
        FIELD_EX32(r->ctrl1, IATU_CTRL1, FUNC_NUM) != hit->func) {
        return false;
    }
    out->addr = region_target(r) + offset;
    out->remaining = MIN(hit->bar_mask - offset, UINT64_MAX - 1) + 1;
    return true;
}

bool dw_iatu_translate_inbound(const DWiATU *iatu, uint64_t pci_addr,
                               const DWiATUBarHit *hit,
                               DWiATUTranslation *out)
{
    for (unsigned i = 0; i < iatu->num_regions[DW_IATU_INBOUND]; i++) {
        const DWiATURegion *r = &iatu->region[DW_IATU_INBOUND][i];
        bool match;

        if (!region_enabled_for_mem(r)) {
            continue;
        }
        if (FIELD_EX32(r->ctrl2, IATU_CTRL2, BAR_MODE_ENABLE)) {
            match = region_matches_bar(r, pci_addr, hit, out);
        } else {
            match = region_covers(iatu, r, pci_addr, out);
        }
        if (match) {
            out->index = i;
            out->func = hit->func;
            trace_dw_iatu_translate("inbound", i, pci_addr, out->addr);
            return true;
        }
    }
    return false;
}

static const VMStateDescription vmstate_dw_iatu_region = {
    .name = "dw-iatu-region",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(ctrl1, DWiATURegion),
        VMSTATE_UINT32(ctrl2, DWiATURegion),
        VMSTATE_UINT32(lower_base, DWiATURegion),
        VMSTATE_UINT32(upper_base, DWiATURegion),
        VMSTATE_UINT32(limit, DWiATURegion),
        VMSTATE_UINT32(lower_target, DWiATURegion),
        VMSTATE_UINT32(upper_target, DWiATURegion),
        VMSTATE_UINT32(upper_limit, DWiATURegion),
        VMSTATE_END_OF_LIST()
    },
};

const VMStateDescription vmstate_dw_iatu = {
    .name = "dw-iatu",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT_2DARRAY(region, DWiATU, 2, DW_IATU_MAX_REGIONS, 1,
                               vmstate_dw_iatu_region, DWiATURegion),
        VMSTATE_END_OF_LIST()
    },
};
