/*
 * Synopsys DesignWare PCIe controller in endpoint mode
 *
 * The controller's local register spaces, as the endpoint's CPU sees them:
 *  - DBI: the function's configuration space and the port logic registers;
 *  - DBI2: the BAR masks behind the BAR registers;
 *  - ATU: the unrolled internal address translation unit (iATU), or the
 *    legacy viewport in DBI with atu-viewport=on;
 *  - addr_space: the outbound window that the iATU maps onto the link.
 *
 * The function's configuration space behind DBI and DBI2 is
 * dw-pcie-ep-config.c; here are the register spaces, the link state, the
 * data path and the device.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/range.h"
#include "qemu/units.h"
#include "hw/pci/pci.h"
#include "hw/pci/pcie_regs.h"
#include "hw/pci/pci_ids.h"
#include "hw/pci/pci_regs.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "hw/resettable.h"
#include "hw/core/sysbus-fdt.h"
#include "migration/vmstate.h"
#include "system/address-spaces.h"
#include "hw/arm/smmu-common.h"
#include "hw/pci-ep/dw-pcie-ep-fdt.h"
#include "dw-pcie-ep-internal.h"
#include "hw/pci-ep/pcie-ep-fastpath.h"
#include "trace.h"

/* Synopsys' PCI vendor ID, and the device ID of our model. */
#define DW_PCIE_EP_DEFAULT_VENDOR_ID  0x16c3
#define DW_PCIE_EP_DEFAULT_DEVICE_ID  0xabcd

#define BAR_REG(bar)  (PCI_BASE_ADDRESS_0 + 4 * (bar))

/*
 * Link state
 */

DWPCIeEPLinkState dw_pcie_ep_link_state(DWPCIeEPState *s)
{
    uint32_t plc = pci_get_long(&s->config[A_PORT_LINK_CONTROL]);
    uint32_t pipe = pci_get_long(&s->config[A_PIPE_LOOPBACK_CONTROL]);

    if (FIELD_EX32(plc, PORT_LINK_CONTROL, LOOPBACK_ENABLE) &&
        FIELD_EX32(pipe, PIPE_LOOPBACK_CONTROL, PIPE_LOOPBACK)) {
        return DW_PCIE_EP_LINK_LOOPBACK;
    }
    /* The LTSSM trains when enabled, with the DLL on and a partner there. */
    if (s->ltssm_enable && FIELD_EX32(plc, PORT_LINK_CONTROL, DLL_LINK_EN) &&
        pcie_ep_link_is_up(&s->link)) {
        return DW_PCIE_EP_LINK_UP;
    }
    return DW_PCIE_EP_LINK_DOWN;
}

/*
 * Tell the host when the link comes up (with the BARs) or goes down.
 * Only this bottom half sends UP and DOWN, always the latest state, so
 * two threads changing the state at once cannot reorder them; and no
 * caller (a reset, an MMIO handler) drops the BQL to send.
 */
static void link_notify_bh(void *opaque)
{
    DWPCIeEPState *s = opaque;
    DWPCIeEPLinkState now = s->link_state;
    unsigned conn = pcie_ep_link_connection(&s->link);
    PCIeEPLinkUp up;

    /* A new connection knows nothing yet: what was sent went elsewhere. */
    if (s->link_sent_conn != conn) {
        s->link_sent = DW_PCIE_EP_LINK_DOWN;
        s->link_sent_conn = conn;
    }
    for (int bar = 0; bar < DW_PCIE_EP_NUM_BARS; bar++) {
        up.bar_mask[bar] = cpu_to_le32(s->bar_mask[bar]);
        up.bar_flags[bar] = cpu_to_le32(s->bar_flags[bar]);
    }
    /*
     * UP again when the BARs changed while up (DBI2 masks, BAR flags, or
     * a link that came up at reset before the driver set them): the host
     * then plugs a function with the new BARs, as after a rescan.
     */
    if (now == DW_PCIE_EP_LINK_UP && (s->link_sent != DW_PCIE_EP_LINK_UP ||
                                      memcmp(&up, &s->up_sent, sizeof(up)))) {
        dw_pcie_ep_host_image_sync(s, true);
        pcie_ep_link_send_event(&s->link, PCIE_EP_LINK_UP, 0, &up,
                                sizeof(up));
        s->up_sent = up;
    } else if (now != DW_PCIE_EP_LINK_UP &&
               s->link_sent == DW_PCIE_EP_LINK_UP) {
        pcie_ep_link_send_event(&s->link, PCIE_EP_LINK_DOWN, 0, NULL, 0);
    }
    s->link_sent = now;
}

/* The BARs' sizes or flags changed: the host may need to hear of it. */
void dw_pcie_ep_bars_changed(DWPCIeEPState *s)
{
    if (s->link_notify_bh) {
        qemu_bh_schedule(s->link_notify_bh);
    }
}

/*
 * Fast path: the host's cache of our inbound translations, and ours of
 * the host's bus-master space, follow every change that affects them.
 * A change made by the EP's own CPU waits until the host has unmapped;
 * one made on the host's behalf (its CFG_WR) needs no wait, as the host
 * drops its mappings before it sends such a write.
 */
void dw_pcie_ep_inbound_changed(DWPCIeEPState *s, bool can_wait)
{
    pcie_ep_fastpath_revoke(&s->link, can_wait);
}

static void outbound_changed(DWPCIeEPState *s)
{
    pcie_ep_fastpath_drop_imports(&s->link);
}

/* No hot reset's pulse: on a link down, at our reset, after a load */
static void hot_reset_cancel(DWPCIeEPState *s)
{
    s->in_hot_reset = false;
    if (s->hot_reset_timer) {
        timer_del(s->hot_reset_timer);
    }
}

static void link_state_set(DWPCIeEPState *s, bool can_wait)
{
    DWPCIeEPLinkState now = dw_pcie_ep_link_state(s);

    dw_pcie_ep_update_link_status(s);
    dw_pcie_ep_host_image_sync(s, false);
    if (now == s->link_state) {
        return;
    }
    if (s->link_state == DW_PCIE_EP_LINK_UP) {
        dw_pcie_ep_inbound_changed(s, can_wait);
        outbound_changed(s);
        dw_pcie_ep_reset_non_sticky(s);
        /* A hot reset's pulse belongs to the link that has gone */
        hot_reset_cancel(s);
    }
    /* What the bridge holds was meant for the partner that has gone. */
    dw_posted_discard(&s->posted);
    s->link_state = now;
    trace_dw_pcie_ep_link_state(now);
    if (s->link_notify_bh) {
        qemu_bh_schedule(s->link_notify_bh);
    }
}

void dw_pcie_ep_link_state_changed(DWPCIeEPState *s)
{
    link_state_set(s, true);
}

static bool is_viewport_reg(DWPCIeEPState *s, hwaddr addr)
{
    return s->atu_viewport_mode && addr >= A_ATU_VIEWPORT &&
           addr < DW_PCIE_EP_VIEWPORT_END;
}

/*
 * Where the legacy eDMA viewport would be (DBI + 0x970): with the eDMA
 * unrolled it reads all ones, which Linux takes for "unrolled" on an IP
 * before 5.40a.  With edma-legacy, the eDMA's registers are mapped there.
 */
#define DW_PCIE_EP_EDMA_VIEWPORT    0x970

static bool is_edma_viewport_reg(DWPCIeEPState *s, hwaddr addr)
{
    return !s->edma.legacy && addr >= DW_PCIE_EP_EDMA_VIEWPORT &&
           addr < DW_PCIE_EP_EDMA_VIEWPORT + DW_EDMA_LEGACY_SIZE;
}

static void iatu_changed(DWPCIeEPState *s, DWiATUDir dir)
{
    if (dir == DW_IATU_INBOUND) {
        dw_pcie_ep_inbound_changed(s, true);
    } else {
        outbound_changed(s);
    }
}

static DWiATUDir viewport_dir(DWPCIeEPState *s)
{
    return FIELD_EX32(s->atu_viewport, ATU_VIEWPORT, INBOUND) ?
           DW_IATU_INBOUND : DW_IATU_OUTBOUND;
}

static uint32_t viewport_read(DWPCIeEPState *s, hwaddr addr)
{
    if (addr == A_ATU_VIEWPORT) {
        return s->atu_viewport;
    }
    return dw_iatu_read(&s->iatu, viewport_dir(s),
                        FIELD_EX32(s->atu_viewport, ATU_VIEWPORT, INDEX),
                        addr - DW_PCIE_EP_VIEWPORT_REGS);
}

/*
 * The viewport index holds only as many bits as there are regions:
 * Linux writes 0xff and reads back the highest index.
 */
static void viewport_write(DWPCIeEPState *s, hwaddr addr, uint32_t val)
{
    uint32_t index;

    if (addr == A_ATU_VIEWPORT) {
        uint32_t max = MAX(s->iatu.num_regions[DW_IATU_OUTBOUND],
                           s->iatu.num_regions[DW_IATU_INBOUND]);

        index = MIN(FIELD_EX32(val, ATU_VIEWPORT, INDEX), max - 1);

        s->atu_viewport = FIELD_DP32(val & R_ATU_VIEWPORT_INBOUND_MASK,
                                     ATU_VIEWPORT, INDEX, index);
        return;
    }
    index = FIELD_EX32(s->atu_viewport, ATU_VIEWPORT, INDEX);
    dw_pcie_ep_iatu_hazard_check(s, viewport_dir(s), index,
                                 addr - DW_PCIE_EP_VIEWPORT_REGS);
    dw_iatu_write(&s->iatu, viewport_dir(s), index,
                  addr - DW_PCIE_EP_VIEWPORT_REGS, val);
    iatu_changed(s, viewport_dir(s));
}

/*
 * DBI and DBI2
 */

static uint64_t dbi_read(void *opaque, hwaddr addr, unsigned size)
{
    DWPCIeEPState *s = opaque;
    uint64_t val;

    if (is_viewport_reg(s, addr)) {
        val = size == 4 ? viewport_read(s, addr) : 0;
    } else if (is_edma_viewport_reg(s, addr)) {
        val = MAKE_64BIT_MASK(0, size * 8);
    } else {
        val = dw_pcie_ep_config_read(s, addr, size);
    }
    trace_dw_pcie_ep_dbi_read(addr, size, val);
    return val;
}

static void dbi_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    DWPCIeEPState *s = opaque;

    trace_dw_pcie_ep_dbi_write(addr, size, val);
    if (is_viewport_reg(s, addr)) {
        if (size != 4) {
            qemu_log_mask(LOG_GUEST_ERROR, "%s: %u-byte write to the iATU "
                          "viewport at 0x%" HWADDR_PRIx " ignored\n",
                          TYPE_DW_PCIE_EP, size, addr);
            return;
        }
        viewport_write(s, addr, val);
        return;
    }
    if (is_edma_viewport_reg(s, addr)) {
        return;
    }
    dw_pcie_ep_config_write(s, addr, val, size, true);
}

static const MemoryRegionOps dbi_ops = {
    .read = dbi_read,
    .write = dbi_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 4,
    },
};

static uint32_t *dbi2_reg(DWPCIeEPState *s, hwaddr addr)
{
    if (dw_pcie_ep_is_bar_reg(addr)) {
        return &s->bar_mask[(addr - PCI_BASE_ADDRESS_0) / 4];
    }
    if (addr == DW_PCIE_EP_DBI2_ROM) {
        return &s->rom_mask;
    }
    return NULL;
}

static uint64_t dbi2_read(void *opaque, hwaddr addr, unsigned size)
{
    DWPCIeEPState *s = opaque;
    uint32_t *reg = dbi2_reg(s, addr);

    return reg ? *reg : 0;
}

/*
 * A BAR mask write resizes (or, with bit 0 clear, disables) the BAR; the
 * address bits under the new mask read as zero.
 */
static void dbi2_write(void *opaque, hwaddr addr, uint64_t val,
                       unsigned size)
{
    DWPCIeEPState *s = opaque;
    uint32_t *reg = dbi2_reg(s, addr);

    trace_dw_pcie_ep_dbi2_write(addr, val);
    if (!reg) {
        qemu_log_mask(LOG_UNIMP, "%s: DBI2 register 0x%" HWADDR_PRIx
                      " is not modelled\n", TYPE_DW_PCIE_EP, addr);
        return;
    }
    if (dw_pcie_ep_is_bar_reg(addr)) {
        int bar = (addr - PCI_BASE_ADDRESS_0) / 4;

        /*
         * Disabling the lower half of a 64-bit BAR disables the pair: the
         * upper half's mask and address would otherwise make a stale
         * 32-bit BAR of it.
         */
        if (bar < DW_PCIE_EP_NUM_BARS - 1 && dw_pcie_ep_bar_is_64bit(s, bar) &&
            !dw_pcie_ep_bar_is_upper_half(s, bar) &&
            (*reg & DW_PCIE_EP_BAR_MASK_ENABLE) &&
            !(val & DW_PCIE_EP_BAR_MASK_ENABLE)) {
            s->bar_mask[bar + 1] = 0;
            s->bar_addr[bar + 1] = 0;
        }
        *reg = dw_pcie_ep_bar_mask_write(s, bar, val);
        /* A fixed or resizable BAR's upper half follows its enable */
        dw_pcie_ep_derive_bar_masks(s);
        dw_pcie_ep_inbound_changed(s, true);
    } else {
        *reg = val;
    }
    dw_pcie_ep_bars_changed(s);
    dw_pcie_ep_host_image_sync(s, false);
}

static const MemoryRegionOps dbi2_ops = {
    .read = dbi2_read,
    .write = dbi2_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

/*
 * Unrolled iATU space
 */

static uint64_t atu_read(void *opaque, hwaddr addr, unsigned size)
{
    DWPCIeEPState *s = opaque;

    if (s->atu_viewport_mode) {
        return 0;
    }
    return dw_iatu_unrolled_read(&s->iatu, addr);
}

static void atu_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    DWPCIeEPState *s = opaque;
    DWiATUDir dir;

    if (s->atu_viewport_mode) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: write to the unrolled iATU space "
                      "of a controller with the legacy viewport\n",
                      TYPE_DW_PCIE_EP);
        return;
    }
    dir = addr % DW_IATU_REGION_STRIDE >= DW_IATU_INBOUND_OFFSET ?
          DW_IATU_INBOUND : DW_IATU_OUTBOUND;
    dw_pcie_ep_iatu_hazard_check(s, dir, addr / DW_IATU_REGION_STRIDE,
                                 addr % DW_IATU_INBOUND_OFFSET);
    dw_iatu_unrolled_write(&s->iatu, addr, val);
    iatu_changed(s, dir);
}

/*
 * ELBI: the glue's LTSSM enable and link status
 */

static uint64_t elbi_read(void *opaque, hwaddr addr, unsigned size)
{
    DWPCIeEPState *s = opaque;

    switch (addr) {
    case A_APP_LTSSM_CONTROL:
        return s->ltssm_enable;
    case A_APP_LINK_STATUS:
        return dw_pcie_ep_link_is_up(s);
    default:
        return 0;
    }
}

static void elbi_write(void *opaque, hwaddr addr, uint64_t val,
                       unsigned size)
{
    DWPCIeEPState *s = opaque;

    if (addr != A_APP_LTSSM_CONTROL) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: write to read-only or reserved "
                      "ELBI register 0x%" HWADDR_PRIx "\n", TYPE_DW_PCIE_EP,
                      addr);
        return;
    }
    dw_pcie_ep_set_ltssm_enable(s, FIELD_EX32(val, APP_LTSSM_CONTROL,
                                              LTSSM_ENABLE));
}

void dw_pcie_ep_set_ltssm_enable(DWPCIeEPState *s, bool enable)
{
    s->ltssm_enable = enable;
    dw_pcie_ep_link_state_changed(s);
}

/* What the glue's status bits show: not up while in Hot Reset */
bool dw_pcie_ep_link_is_up(DWPCIeEPState *s)
{
    return s->link_state == DW_PCIE_EP_LINK_UP && !s->in_hot_reset;
}

static const MemoryRegionOps elbi_ops = {
    .read = elbi_read,
    .write = elbi_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

static const MemoryRegionOps atu_ops = {
    .read = atu_read,
    .write = atu_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

/*
 * Where an inbound TLP may land: RAM, our own eDMA's registers (the
 * embedded doorbell), and, where the platform routes inbound writes to
 * it (its-doorbell), an MSI doorbell such as the GIC ITS.
 */
static bool inbound_may_reach(DWPCIeEPState *s, hwaddr addr, unsigned len,
                              bool is_write, MemTxAttrs attrs)
{
    const MemoryRegion *mr;

    switch (pcie_ep_link_reach(s->dma, addr, len, is_write, attrs,
                               &mr)) {
    case PCIE_EP_REACH_RAM:
        return true;
    case PCIE_EP_REACH_MSI:
        return s->its_doorbell;
    default:
        return mr && mr == dw_edma_mmio(&s->edma);
    }
}

MemTxResult dw_pcie_ep_inbound(DWPCIeEPState *s, uint64_t pci_addr,
                               void *buf, unsigned len, bool is_write)
{
    MemTxAttrs attrs = dw_pcie_ep_master_attrs(s);
    DWiATUBarHit hit;
    DWiATUTranslation t;
    MemTxResult res;

    if (!dw_pcie_ep_bar_decode(s, pci_addr, &hit)) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: inbound %s of %u bytes at PCI "
                      "address 0x%" PRIx64 " hits no enabled BAR: "
                      "unsupported request\n", TYPE_DW_PCIE_EP,
                      is_write ? "write" : "read", len, pci_addr);
        goto unsupported;
    }
    if (!dw_iatu_translate_inbound(&s->iatu, pci_addr, &hit, &t)) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: inbound %s at PCI address 0x%"
                      PRIx64 " (BAR%u) matches no inbound iATU region: "
                      "unsupported request\n", TYPE_DW_PCIE_EP,
                      is_write ? "write" : "read", pci_addr, hit.bar);
        goto unsupported;
    }
    if (t.remaining < len) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: inbound %s of %u bytes at PCI "
                      "address 0x%" PRIx64 " crosses the end of inbound "
                      "region %d: unsupported request\n", TYPE_DW_PCIE_EP,
                      is_write ? "write" : "read", len, pci_addr, t.index);
        goto unsupported;
    }
    if (!inbound_may_reach(s, t.addr, len, is_write, attrs)) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: inbound %s of %u bytes at PCI "
                      "address 0x%" PRIx64 " lands at 0x%" PRIx64 ", which "
                      "inbound TLPs do not reach (RAM, the eDMA, and with "
                      "its-doorbell an MSI doorbell): unsupported "
                      "request\n",
                      TYPE_DW_PCIE_EP, is_write ? "write" : "read", len,
                      pci_addr, t.addr);
        goto unsupported;
    }
    trace_dw_pcie_ep_inbound(is_write, pci_addr, t.addr, len);
    s->inbound_in_service++;
    res = address_space_rw(s->dma, t.addr, attrs, buf, len, is_write);
    s->inbound_in_service--;
    return res;

unsupported:
    if (!is_write) {
        memset(buf, 0xff, len);
    }
    return MEMTX_DECODE_ERROR;
}

/*
 * The eDMA's remote side, as Linux sees its addresses: PCI addresses, not
 * translated by the outbound iATU.  Host RAM that the fast path maps
 * (one MAP_RD of the first 4 GiB of PCI space per import generation) is
 * reached directly; anything else is memory requests of at most
 * Max_Payload_Size (writes) or Max_Read_Request_Size (reads) bytes that
 * do not cross 4 KiB, as PCIe's rules for TLPs have it.
 */
#define EDMA_REMOTE_MAP_SIZE    (1ULL << 32)

static MemTxResult outbound_tlp(DWPCIeEPState *s, uint64_t pci_addr,
                                void *buf, unsigned len, bool is_write);

static unsigned edma_max_request(DWPCIeEPState *s, bool is_write)
{
    uint16_t devctl = pci_get_word(&s->config[DW_PCIE_EP_PCIE_CAP +
                                              PCI_EXP_DEVCTL]);
    unsigned shift = is_write ? extract32(devctl, 5, 3) :
                                extract32(devctl, 12, 3);

    return 128 << MIN(shift, 5);
}

static bool edma_remote_is_ram(DWPCIeEPState *s, uint64_t addr, unsigned len)
{
    hwaddr xlat, plen = len;
    MemoryRegion *mr;

    RCU_READ_LOCK_GUARD();
    mr = address_space_translate(&s->edma_remote_as, addr, &xlat, &plen,
                                 false, MEMTXATTRS_UNSPECIFIED);
    return memory_region_is_ram(mr) && plen >= len;
}

/* What one TLP of @len bytes at @addr may carry: MPS/MRRS, not past 4K */
static unsigned edma_tlp_len(DWPCIeEPState *s, uint64_t addr, unsigned len,
                             bool is_write)
{
    return MIN(len, MIN(edma_max_request(s, is_write),
                        0x1000 - (addr & 0xfff)));
}

static unsigned edma_remote_prepare(void *opaque, uint64_t addr,
                                    unsigned len, bool is_write)
{
    DWPCIeEPState *s = opaque;
    unsigned gen = pcie_ep_fastpath_generation(&s->link);

    if (dw_pcie_ep_link_state(s) != DW_PCIE_EP_LINK_UP) {
        return edma_tlp_len(s, addr, len, is_write);
    }
    if (pcie_ep_fast_window_wants_fill(s->edma_fast, gen)) {
        pcie_ep_fast_window_fill(s->edma_fast, 0, 0, EDMA_REMOTE_MAP_SIZE,
                                 gen);
    }
    if (edma_remote_is_ram(s, addr, len)) {
        return len;
    }
    if (is_write && !pcie_ep_link_has_room(&s->link)) {
        return 0;
    }
    return edma_tlp_len(s, addr, len, is_write);
}

static MemTxResult edma_remote_rw(void *opaque, uint64_t addr, void *buf,
                                  unsigned len, bool is_write)
{
    DWPCIeEPState *s = opaque;
    uint8_t *p = buf;

    switch (dw_pcie_ep_link_state(s)) {
    case DW_PCIE_EP_LINK_DOWN:
        return MEMTX_ACCESS_ERROR;
    case DW_PCIE_EP_LINK_UP:
        if (edma_remote_is_ram(s, addr, len)) {
            return address_space_rw(&s->edma_remote_as, addr,
                                    MEMTXATTRS_UNSPECIFIED, buf, len,
                                    is_write);
        }
        break;
    default:
        break;
    }
    /* A TLP does not cross 4 KiB */
    while (len) {
        unsigned n = MIN(len, 0x1000 - (addr & 0xfff));
        MemTxResult r = outbound_tlp(s, addr, p, n, is_write);

        if (r != MEMTX_OK) {
            return r;
        }
        addr += n;
        p += n;
        len -= n;
    }
    return MEMTX_OK;
}

static const DWEDMAOps dw_pcie_ep_edma_ops = {
    .remote_prepare = edma_remote_prepare,
    .remote_rw = edma_remote_rw,
};

/* A memory TLP out of the controller, onto the link */
static MemTxResult outbound_tlp(DWPCIeEPState *s, uint64_t pci_addr,
                                void *buf, unsigned len, bool is_write)
{
    switch (dw_pcie_ep_link_state(s)) {
    case DW_PCIE_EP_LINK_LOOPBACK:
        return dw_pcie_ep_inbound(s, pci_addr, buf, len, is_write);
    case DW_PCIE_EP_LINK_UP:
        if (!is_write) {
            return pcie_ep_link_read(&s->link, PCIE_EP_LINK_MEM_RD, pci_addr,
                                     buf, len);
        }
        pcie_ep_link_write(&s->link, PCIE_EP_LINK_MEM_WR, pci_addr, buf, len);
        return MEMTX_OK;
    case DW_PCIE_EP_LINK_DOWN:
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "%s: outbound %s at PCI address 0x%"
                      PRIx64 " while the link is down\n", TYPE_DW_PCIE_EP,
                      is_write ? "write" : "read", pci_addr);
        return MEMTX_ERROR;
    }
}

/*
 * Fast path, outbound: after a TLP through region @t, map what the host
 * has of the region's part of the window (as far as it translates the
 * same way) straight into the window.
 */
static void window_fill(DWPCIeEPState *s, hwaddr cpu_base, hwaddr cpu_addr,
                        const DWiATUTranslation *t, unsigned gen)
{
    uint64_t lo, hi;

    /* Every window access comes here: nothing more unless it asks. */
    if (!pcie_ep_fast_window_wants_fill(&s->ob_fast[t->index], gen)) {
        return;
    }
    dw_iatu_outbound_span(&s->iatu, cpu_addr, t, &lo, &hi);
    lo = MAX(lo, cpu_base);
    hi = MIN(hi, cpu_base + s->addr_space_size - 1);
    pcie_ep_fast_window_fill(&s->ob_fast[t->index], lo - cpu_base,
                             t->addr - (cpu_addr - lo), hi - lo + 1, gen);
}

/* The CPU address of the window: where the platform put it */
/*
 * Where the CPUs see the window: the iATU matches CPU addresses.  The
 * board maps it (the platform bus, at machine init); a listener on the
 * system address space follows it there, through any alias or container.
 */
static void window_region_add(MemoryListener *listener,
                              MemoryRegionSection *section)
{
    DWPCIeEPState *s = container_of(listener, DWPCIeEPState, window_listener);

    if (section->mr == &s->window_io) {
        s->window_base = section->offset_within_address_space -
                         section->offset_within_region;
    }
}

/*
 * With posted writes, host RAM is not mapped into the window, where the
 * CPU's writes would reach it before they drain.  The window's TLPs
 * reach it through the eDMA's view of PCI space instead, which maps it
 * in the same way (and is revoked with it).
 *
 * A write sent by message is only queued; one to mapped host RAM lands
 * at once.  So once a window write has gone by message, host RAM is
 * reached by message too, until a round trip sent after it (a read, a
 * MAP_RD) has come back: the host has then done the write.  Nothing
 * waits for such a round trip: a posted write must not wait for a
 * completion.  One goes out right after a write by message, and a
 * window access that finds it completed lifts the fence.
 */
static void window_round_trip_done(DWPCIeEPState *s, uint64_t sent_after)
{
    s->window_fenced = MAX(s->window_fenced, sent_after);
}

/*
 * Take what the round trip in flight says, once it has come back: the
 * host has done every write by message sent before it.  One that went
 * on an older connection, or that no completion answered within the
 * link's timeout, is lost; the next one covers all it would have.
 */
static void window_collect_round_trip(DWPCIeEPState *s)
{
    bool same_conn;

    if (!s->window_rt_seq) {
        return;
    }
    same_conn = s->window_rt_conn == pcie_ep_link_connection(&s->link);
    if (same_conn &&
        pcie_ep_link_round_trip_done(&s->link, s->window_rt_seq)) {
        window_round_trip_done(s, s->window_rt_after);
        s->window_rt_seq = 0;
    } else if (!same_conn ||
               qemu_clock_get_ms(QEMU_CLOCK_REALTIME) - s->window_rt_sent_ms >
               s->link.timeout_ms) {
        trace_dw_pcie_ep_window_round_trip_lost(s->window_rt_seq);
        s->window_rt_seq = 0;
    }
}

/*
 * After a write by message: a round trip behind it, unless one is in
 * flight.  Only here: one sent before a write by message would not
 * cover it, and the fence would never lift while writes keep coming.
 */
static void window_send_round_trip(DWPCIeEPState *s)
{
    window_collect_round_trip(s);
    if (s->window_rt_seq || !s->link.peer_shm) {
        return;
    }
    s->window_rt_seq = pcie_ep_link_round_trip(&s->link);
    s->window_rt_conn = pcie_ep_link_connection(&s->link);
    s->window_rt_after = s->window_msg_writes;
    s->window_rt_sent_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    s->window_round_trips += s->window_rt_seq != 0;
}

static bool window_fenced(DWPCIeEPState *s)
{
    if (s->window_fenced != s->window_msg_writes) {
        window_collect_round_trip(s);
    }
    return s->window_fenced == s->window_msg_writes;
}

static void remote_ram_refresh(DWPCIeEPState *s)
{
    unsigned gen = pcie_ep_fastpath_generation(&s->link);
    uint64_t seq = s->window_msg_writes;

    if (s->link_state == DW_PCIE_EP_LINK_UP &&
        pcie_ep_fast_window_wants_fill(s->edma_fast, gen) &&
        pcie_ep_fast_window_fill(s->edma_fast, 0, 0, EDMA_REMOTE_MAP_SIZE,
                                 gen)) {
        window_round_trip_done(s, seq);
    }
}

static bool window_direct(DWPCIeEPState *s, uint64_t pci_addr, unsigned len)
{
    return s->link_state == DW_PCIE_EP_LINK_UP && window_fenced(s) &&
           edma_remote_is_ram(s, pci_addr, len);
}

/* A read of the window's, with no posted write ahead of it */
static MemTxResult window_read_tlp(DWPCIeEPState *s, uint64_t pci_addr,
                                   void *buf, unsigned len)
{
    uint64_t seq = s->window_msg_writes;
    MemTxResult res;

    if (window_direct(s, pci_addr, len)) {
        return address_space_read(&s->edma_remote_as, pci_addr,
                                  MEMTXATTRS_UNSPECIFIED, buf, len);
    }
    res = outbound_tlp(s, pci_addr, buf, len, false);
    if (res == MEMTX_OK && s->link_state == DW_PCIE_EP_LINK_UP) {
        window_round_trip_done(s, seq);
    }
    return res;
}

/*
 * Before a vCPU takes on the buffer: room on the link (a drain does not
 * wait for it), and the map of host RAM.
 */
static void window_prepare(DWPCIeEPState *s)
{
    if (s->link_state != DW_PCIE_EP_LINK_UP) {
        return;
    }
    pcie_ep_link_wait_for_room(&s->link);
    remote_ram_refresh(s);
}

/* A drained write: never waits (see window_prepare()) */
void dw_pcie_ep_window_send(DWPCIeEPState *s, uint64_t pci_addr,
                            const uint8_t *buf, unsigned len)
{
    assert(len <= 8);
    if (window_direct(s, pci_addr, len)) {
        address_space_write(&s->edma_remote_as, pci_addr,
                            MEMTXATTRS_UNSPECIFIED, buf, len);
        return;
    }
    if (s->link_state != DW_PCIE_EP_LINK_UP) {
        /* Loopback, or a link down: as any TLP then */
        outbound_tlp(s, pci_addr, (void *)buf, len, true);
    } else {
        if (!pcie_ep_link_post(&s->link, pci_addr, buf, len)) {
            trace_dw_pcie_ep_posted_lost(pci_addr, len);
        }
        /*
         * Lost on a failing link or sent, no later write may land before
         * it would have: on PCIe a link loses every write after one lost.
         */
        s->window_msg_writes++;
        window_send_round_trip(s);
    }
}

/*
 * This thread is inside a window access: the explicit re-entrancy guard
 * that replaces QEMU's per-device one on the window (see realize).
 */
static __thread bool window_busy;

/*
 * The window never signals an error to the CPU, which would take the
 * endpoint's kernel down: a read that cannot complete returns all ones
 * and a write that cannot be sent is discarded, as on a link that is down.
 */
static MemTxResult window_access(DWPCIeEPState *s, hwaddr offset,
                                 uint64_t *val, unsigned size, bool is_write)
{
    hwaddr cpu_base = s->window_base, cpu_addr = cpu_base + offset;
    unsigned gen = pcie_ep_fastpath_generation(&s->link);
    bool posted = dw_posted_enabled(&s->posted);
    uint8_t buf[8];
    DWiATUTranslation t;
    MemTxResult res;

    if (window_busy) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: outbound %s at 0x%" HWADDR_PRIx
                      " from inside another window access (a loopback TLP "
                      "that came back to the window): refused\n",
                      TYPE_DW_PCIE_EP, is_write ? "write" : "read", cpu_addr);
        if (!is_write) {
            *val = MAKE_64BIT_MASK(0, size * 8);
        }
        return MEMTX_OK;
    }
    window_busy = true;
    if (posted) {
        window_prepare(s);
    }
    if (posted && !is_write) {
        /* PCIe ordering: a read does not pass the posted writes */
        dw_posted_flush(&s->posted, DW_POSTED_DRAIN_READ);
    }
    if (!dw_iatu_translate_outbound(&s->iatu, cpu_addr, &t) ||
        t.remaining < size) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: outbound %s of %u bytes at 0x%"
                      HWADDR_PRIx " is not inside an enabled outbound iATU "
                      "region: %s\n", TYPE_DW_PCIE_EP,
                      is_write ? "write" : "read", size, cpu_addr,
                      is_write ? "discarded" : "all ones");
        if (!is_write) {
            *val = MAKE_64BIT_MASK(0, size * 8);
        }
        window_busy = false;
        return MEMTX_OK;
    }
    if (is_write && posted) {
        DWPostedWrite w = {
            .cpu_addr = cpu_addr, .pci_addr = t.addr, .data = *val,
            .size = size, .region = t.index,
        };

        dw_posted_push(&s->posted, &w);
        window_busy = false;
        return MEMTX_OK;
    }
    if (is_write) {
        stn_le_p(buf, size, *val);
    }
    res = posted ? window_read_tlp(s, t.addr, buf, size) :
                   outbound_tlp(s, t.addr, buf, size, is_write);
    window_busy = false;
    if (res != MEMTX_OK && !is_write) {
        memset(buf, 0xff, size);
    }
    if (!is_write) {
        *val = ldn_le_p(buf, size);
    }
    /* Host RAM mapped into the window would pass the posted writes */
    if (!posted && res == MEMTX_OK && s->link_state == DW_PCIE_EP_LINK_UP) {
        window_fill(s, cpu_base, cpu_addr, &t, gen);
    }
    return MEMTX_OK;
}

static MemTxResult window_read(void *opaque, hwaddr addr, uint64_t *val,
                               unsigned size, MemTxAttrs attrs)
{
    return window_access(opaque, addr, val, size, false);
}

static MemTxResult window_write(void *opaque, hwaddr addr, uint64_t val,
                                unsigned size, MemTxAttrs attrs)
{
    return window_access(opaque, addr, &val, size, true);
}

static const MemoryRegionOps window_ops = {
    .read_with_attrs = window_read,
    .write_with_attrs = window_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
    /* One CPU access is one TLP, up to 8 bytes (memcpy_toio) */
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

/*
 * Device
 */

/*
 * Requests from the host over the link (BQL held)
 */

/*
 * A hot reset from the host resets what a link down does (see
 * dw_pcie_ep_reset_non_sticky()).  The LTSSM shows Hot Reset and the
 * link-up bits drop for the Hot Reset state's 2 ms (PCIe 6.0, 4.2.7.11),
 * and then it is back in L0: with the LTSSM still enabled a DWC trains
 * again by itself.  The link carries on meanwhile, as the host's
 * function stays in its slot: the host's next request comes after its
 * own reset, which is what sent the hot reset.
 */
#define HOT_RESET_NS    (2 * SCALE_MS)

static void hot_reset_end(void *opaque)
{
    DWPCIeEPState *s = opaque;

    s->in_hot_reset = false;
    dw_pcie_ep_update_link_status(s);
}

/*
 * The host sends requests over a trained link only: one that comes while
 * the pulse is on (a host that was quicker than 2 ms, or a test whose
 * virtual clock stands still) ends it before it is served.
 */
static void hot_reset_trained(DWPCIeEPState *s)
{
    if (s->in_hot_reset) {
        timer_del(s->hot_reset_timer);
        hot_reset_end(s);
    }
}

static void hot_reset_begin(DWPCIeEPState *s)
{
    if (s->link_state != DW_PCIE_EP_LINK_UP) {
        return;
    }
    s->in_hot_reset = true;
    dw_pcie_ep_update_link_status(s);
    timer_mod(s->hot_reset_timer,
              qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + HOT_RESET_NS);
}

/*
 * Only a link in L0 carries the host's requests: with the LTSSM disabled
 * or in loopback, they are Unsupported Requests (a host that sends them
 * has missed a DOWN still on its way).
 */
static bool link_serves_host(DWPCIeEPState *s, const char *what)
{
    hot_reset_trained(s);
    if (s->link_state == DW_PCIE_EP_LINK_UP) {
        return true;
    }
    trace_dw_pcie_ep_request_link_down(what);
    return false;
}

static uint32_t link_cfg_read(void *opaque, uint32_t addr, unsigned size)
{
    if (!link_serves_host(opaque, "CFG_RD")) {
        return ~0u;
    }
    return dw_pcie_ep_host_config_read(opaque, addr, size);
}

static void link_cfg_write(void *opaque, uint32_t addr, uint32_t val,
                           unsigned size)
{
    DWPCIeEPState *s = opaque;

    s->host_cfg_writes++;       /* the images from now on have seen it */
    if (link_serves_host(s, "CFG_WR")) {
        dw_pcie_ep_host_config_write(s, addr, val, size);
    }
    dw_pcie_ep_host_image_confirm(s, addr, size);
}

static MemTxResult link_mem_read(void *opaque, uint64_t addr, void *buf,
                                 unsigned len)
{
    if (!link_serves_host(opaque, "MEM_RD")) {
        return MEMTX_DECODE_ERROR;
    }
    return dw_pcie_ep_inbound(opaque, addr, buf, len, false);
}

static MemTxResult link_mem_write(void *opaque, uint64_t addr,
                                  const void *buf, unsigned len)
{
    if (!link_serves_host(opaque, "MEM_WR")) {
        return MEMTX_DECODE_ERROR;
    }
    return dw_pcie_ep_inbound(opaque, addr, (void *)buf, len, true);
}

/*
 * MAP_RD: what the host's accesses to [addr, addr + size) reach, through
 * BAR decode, the inbound iATU and our DMA address space.
 */
static void link_map_read(void *opaque, uint64_t addr, uint64_t size,
                          PCIeEPExtents *ext)
{
    DWPCIeEPState *s = opaque;
    uint64_t off = 0;

    if (s->link_state != DW_PCIE_EP_LINK_UP) {
        return;
    }
    dw_pcie_ep_iommu_hold_check(s);
    size = MIN(size, PCIE_EP_FASTPATH_MAP_RD_MAX_SIZE);
    for (int steps = 0;
         off < size && steps < PCIE_EP_FASTPATH_MAP_RD_MAX_STEPS; steps++) {
        uint64_t pci = addr + off, step;
        DWiATUBarHit hit;
        DWiATUTranslation t;

        if (pci < addr) {
            break;      /* wrapped */
        }
        if (dw_pcie_ep_bar_decode(s, pci, &hit) &&
            dw_iatu_translate_inbound(&s->iatu, pci, &hit, &t)) {
            uint64_t in_bar = MIN(hit.bar_mask - (pci - hit.bar_base),
                                  UINT64_MAX - 1) + 1;

            uint64_t left = MIN(MIN(t.remaining, in_bar), size - off);

            step = s->iommu ?
                dw_pcie_ep_iommu_add_extent(s, t.addr, left, off, ext) :
                pcie_ep_fastpath_add_extent(&s->link, s->dma, t.addr, left,
                                            off, ext);
        } else {
            step = ROUND_UP(pci + 1, PCIE_EP_LINK_PAGE_SIZE) - pci;
        }
        off += step;
    }
}

static void link_event(void *opaque, PCIeEPLinkMsgType event,
                       uint64_t addr, const void *payload, unsigned len)
{
    DWPCIeEPState *s = opaque;

    /*
     * A hot reset travels over a trained link, like the host's requests:
     * one that finds the link down (or in loopback) has nothing to reset.
     */
    if (event == PCIE_EP_LINK_HOT_RESET &&
        s->link_state != DW_PCIE_EP_LINK_UP) {
        trace_dw_pcie_ep_hot_reset_ignored();
    } else if (event == PCIE_EP_LINK_HOT_RESET) {
        trace_dw_pcie_ep_hot_reset(addr);
        s->hot_resets++;
        dw_posted_discard(&s->posted);
        dw_pcie_ep_reset_non_sticky(s);
        if (addr & PCIE_EP_LINK_HOT_RESET_RETRAIN) {
            hot_reset_begin(s);
        }
        dw_pcie_ep_host_image_sync(s, false);
    }
}

static void link_connected(void *opaque, bool connected)
{
    DWPCIeEPState *s = opaque;

    s->host_cfg_writes = 0;     /* counted per connection */

    dw_pcie_ep_link_state_changed(s);
    dw_pcie_ep_iommu_hold_check(s);
    /* Even with no change seen: it may have gone down and back up. */
    if (s->link_notify_bh) {
        qemu_bh_schedule(s->link_notify_bh);
    }
}

static const PCIeEPLinkOps dw_pcie_ep_link_ops = {
    .cfg_read = link_cfg_read,
    .cfg_write = link_cfg_write,
    .mem_read = link_mem_read,
    .mem_write = link_mem_write,
    .link_event = link_event,
    .connected = link_connected,
    .map_read = link_map_read,
};

static void dw_pcie_ep_reset_hold(Object *obj, ResetType type)
{
    DWPCIeEPState *s = DW_PCIE_EP(obj);

    s->ltssm_enable = s->ltssm_enable_at_reset;
    hot_reset_cancel(s);
    dw_pcie_ep_init_config(s);
    dw_iatu_reset(&s->iatu);
    s->atu_viewport = 0;
    dw_edma_reset(&s->edma);
    dw_pcie_ep_bridge_reset(s);
    if (DW_PCIE_EP_GET_CLASS(s)->glue_reset) {
        DW_PCIE_EP_GET_CLASS(s)->glue_reset(s);
    }
    outbound_changed(s);
    trace_dw_pcie_ep_reset();
}

/*
 * What the host must hear of the reset goes in the exit phase, without
 * waiting for it: a reset must not drop the BQL.
 */
static void dw_pcie_ep_reset_exit(Object *obj, ResetType type)
{
    DWPCIeEPState *s = DW_PCIE_EP(obj);

    pcie_ep_fastpath_revoke(&s->link, false);
    link_state_set(s, false);
}

static bool check_properties(DWPCIeEPState *s, Error **errp)
{
    DWPCIeEPClass *dc = DW_PCIE_EP_GET_CLASS(s);
    uint32_t version;

    /* The glue's blocks come after the eDMA's in the reg entries */
    if (dc->extra_regions && s->edma.legacy) {
        error_setg(errp, "%s has no legacy eDMA viewport (edma-legacy)",
                   object_get_typename(OBJECT(s)));
        return false;
    }

    if (!dw_pcie_ep_parse_ip_version(s->ip_version, &version)) {
        error_setg(errp, "ip-version '%s' is not of the form X.YZa, "
                   "e.g. 5.40a", s->ip_version);
        return false;
    }
    if (s->addr_space_size < 4 * KiB || !is_power_of_2(s->addr_space_size)) {
        error_setg(errp, "addr-space-size must be a power of two of at "
                   "least 4 KiB, not 0x%" PRIx64, s->addr_space_size);
        return false;
    }
    if (s->max_link_speed < 1 || s->max_link_speed > 5) {
        error_setg(errp, "max-link-speed must be 1 to 5 (2.5 to 32 GT/s), "
                   "not %u", s->max_link_speed);
        return false;
    }
    if (!is_power_of_2(s->num_lanes) || s->num_lanes > 16) {
        error_setg(errp, "num-lanes must be 1, 2, 4, 8 or 16, not %u",
                   s->num_lanes);
        return false;
    }
    if (s->edma.legacy && version >= DW_PCIE_EP_VER_540A) {
        error_setg(errp, "edma-legacy needs an ip-version before 5.40a: "
                   "from 5.40a, Linux takes the eDMA to be unrolled");
        return false;
    }
    return pcie_ep_link_check_properties(&s->link, errp) &&
           dw_iatu_check_config(&s->iatu, errp) &&
           dw_posted_check_config(&s->posted, errp) &&
           dw_edma_check_config(&s->edma, errp);
}

/* Linux counts 512 bytes of unrolled iATU space per region pair. */
static uint64_t atu_space_size(DWPCIeEPState *s)
{
    uint32_t regions = MAX(s->iatu.num_regions[DW_IATU_OUTBOUND],
                           s->iatu.num_regions[DW_IATU_INBOUND]);

    return MAX(regions, 1) * DW_IATU_REGION_STRIDE;
}

static void dma_destroy(DWPCIeEPState *s)
{
    if (s->dma == &s->dma_as) {
        address_space_destroy(&s->dma_as);
    }
    dw_pcie_ep_iommu_unrealize(s);
    s->dma = NULL;
}

/* A block of the glue's, named "<type>.<reg-name>" in the memory tree */
static void glue_region_init(DWPCIeEPState *s, MemoryRegion *mr,
                             const DWPCIeEPGlueRegion *r)
{
    g_autofree char *name = g_strdup_printf("%s.%s",
                                            object_get_typename(OBJECT(s)),
                                            r->name);

    memory_region_init_io(mr, OBJECT(s), r->ops, s, name, r->size);
}

static void dw_pcie_ep_realize(DeviceState *dev, Error **errp)
{
    DWPCIeEPState *s = DW_PCIE_EP(dev);
    DWPCIeEPClass *dc = DW_PCIE_EP_GET_CLASS(s);
    SysBusDevice *sbd = SYS_BUS_DEVICE(dev);

    if (!check_properties(s, errp)) {
        return;
    }

    memory_region_init_io(&s->dbi, OBJECT(s), &dbi_ops, s,
                          "dw-pcie-ep.dbi", DW_PCIE_EP_DBI_SIZE);
    memory_region_init_io(&s->dbi2, OBJECT(s), &dbi2_ops, s,
                          "dw-pcie-ep.dbi2", DW_PCIE_EP_DBI2_SIZE);
    memory_region_init_io(&s->atu, OBJECT(s), &atu_ops, s,
                          "dw-pcie-ep.atu", atu_space_size(s));
    /*
     * The window: what the outbound iATU sends onto the link, under the
     * host RAM that the fast path maps in.
     */
    memory_region_init(&s->addr_space, OBJECT(s), "dw-pcie-ep.addr_space",
                       s->addr_space_size);
    memory_region_init_io(&s->window_io, OBJECT(s), &window_ops, s,
                          "dw-pcie-ep.addr_space.tlp", s->addr_space_size);
    memory_region_add_subregion_overlap(&s->addr_space, 0, &s->window_io, 0);
    glue_region_init(s, &s->elbi, &dc->glue);
    /*
     * A window read waits for the host with the BQL dropped: QEMU's
     * per-device re-entrancy guard would stay engaged meanwhile and fail
     * every other vCPU's access to any of our regions.  window_access()
     * has its own guard instead; the other regions keep QEMU's.
     */
    s->window_io.disable_reentrancy_guard = true;
    /* The order is DW_PCIE_EP_MMIO_*, the device tree's reg-names. */
    sysbus_init_mmio(sbd, &s->dbi);
    sysbus_init_mmio(sbd, &s->dbi2);
    sysbus_init_mmio(sbd, &s->atu);
    sysbus_init_mmio(sbd, &s->addr_space);
    sysbus_init_mmio(sbd, &s->elbi);
    for (int i = 0; dc->extra_regions && dc->extra_regions[i].name; i++) {
        assert(i < DW_PCIE_EP_MAX_EXTRA_REGIONS);
        glue_region_init(s, &s->extra_mmio[i], &dc->extra_regions[i]);
    }
    if (!dw_pcie_ep_iommu_realize(s, errp)) {
        return;
    }
    if (!s->dma) {
        address_space_init(&s->dma_as,
                           s->dma_mr ? s->dma_mr : get_system_memory(),
                           "dw-pcie-ep.dma");
        s->dma = &s->dma_as;
    }
    dw_edma_init(&s->edma, OBJECT(s), &dw_pcie_ep_edma_ops, s, s->dma,
                 dw_pcie_ep_master_attrs(s));
    if (s->edma.legacy) {
        memory_region_add_subregion(&s->dbi, DW_PCIE_EP_EDMA_VIEWPORT,
                                    dw_edma_mmio(&s->edma));
    } else {
        sysbus_init_mmio(sbd, dw_edma_mmio(&s->edma));
    }
    for (int i = 0; dc->extra_regions && dc->extra_regions[i].name; i++) {
        sysbus_init_mmio(sbd, &s->extra_mmio[i]);
    }
    for (unsigned i = 0; i < dw_edma_num_irqs(&s->edma); i++) {
        sysbus_init_irq(sbd, &s->edma.irq[i]);
    }
    s->window_listener = (MemoryListener) {
        .name = "dw-pcie-ep.addr_space",
        .region_add = window_region_add,
    };
    memory_listener_register(&s->window_listener, &address_space_memory);

    s->link_notify_bh = qemu_bh_new(link_notify_bh, s);
    s->hot_reset_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, hot_reset_end, s);
    /* Behind an SMMU, the RAM the fast path shares is the system's. */
    s->link.shared_as = s->iommu ? &address_space_memory : s->dma;
    if (!pcie_ep_link_init(&s->link, TYPE_DW_PCIE_EP, PCIE_EP_LINK_ROLE_EP,
                           &dw_pcie_ep_link_ops, s, errp)) {
        g_clear_pointer(&s->link_notify_bh, qemu_bh_delete);
        g_clear_pointer(&s->hot_reset_timer, timer_free);
        dma_destroy(s);
        memory_listener_unregister(&s->window_listener);
        dw_edma_cleanup(&s->edma);
        return;
    }
    s->ob_fast = g_new0(PCIeEPFastWindow,
                        s->iatu.num_regions[DW_IATU_OUTBOUND]);
    for (unsigned i = 0; i < s->iatu.num_regions[DW_IATU_OUTBOUND]; i++) {
        g_autofree char *name = g_strdup_printf("ob%u", i);

        pcie_ep_fast_window_init(&s->ob_fast[i], &s->link, &s->addr_space,
                                 name);
    }
    /* The eDMA's remote side: PCI space, where host RAM may be mapped */
    memory_region_init(&s->edma_remote, OBJECT(s), "dw-pcie-ep.edma-remote",
                       UINT64_MAX);
    address_space_init(&s->edma_remote_as, &s->edma_remote,
                       "dw-pcie-ep.edma-remote");
    s->edma_fast = g_new0(PCIeEPFastWindow, 1);
    pcie_ep_fast_window_init(s->edma_fast, &s->link, &s->edma_remote,
                             "edma");
    dw_pcie_ep_bridge_init(s);
}

static void dw_pcie_ep_unrealize(DeviceState *dev)
{
    DWPCIeEPState *s = DW_PCIE_EP(dev);

    dw_pcie_ep_bridge_cleanup(s);
    for (unsigned i = 0; s->ob_fast &&
         i < s->iatu.num_regions[DW_IATU_OUTBOUND]; i++) {
        pcie_ep_fast_window_destroy(&s->ob_fast[i]);
    }
    g_free(s->ob_fast);
    s->ob_fast = NULL;
    if (s->edma_fast) {
        pcie_ep_fast_window_destroy(s->edma_fast);
        g_clear_pointer(&s->edma_fast, g_free);
        address_space_destroy(&s->edma_remote_as);
    }
    dw_edma_cleanup(&s->edma);
    pcie_ep_link_cleanup(&s->link);
    qemu_bh_delete(s->link_notify_bh);
    s->link_notify_bh = NULL;
    g_clear_pointer(&s->hot_reset_timer, timer_free);
    dma_destroy(s);
    memory_listener_unregister(&s->window_listener);
}

/* What follows from the registers: the link's state and the status bits */
static int dw_pcie_ep_post_load(void *opaque, int version_id)
{
    DWPCIeEPState *s = opaque;

    s->link_state = dw_pcie_ep_link_state(s);
    if (s->link_state != DW_PCIE_EP_LINK_UP) {
        /* A pulse only exists on a trained link */
        hot_reset_cancel(s);
    }
    dw_pcie_ep_update_link_status(s);
    if (s->link_notify_bh) {
        qemu_bh_schedule(s->link_notify_bh);
    }
    return 0;
}

static bool posted_needed(void *opaque)
{
    DWPCIeEPState *s = opaque;

    return dw_posted_pending(&s->posted) != 0;
}

static const VMStateDescription vmstate_dw_pcie_ep_posted = {
    .name = TYPE_DW_PCIE_EP "/posted",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = posted_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(posted, DWPCIeEPState, 1, vmstate_dw_posted,
                       DWPostedBuffer),
        VMSTATE_END_OF_LIST()
    },
};

static int hazard_policy_post_load(void *opaque, int version_id)
{
    return DW_PCIE_EP(opaque)->iatu_hazard < DW_IATU_HAZARD__COUNT ?
           0 : -EINVAL;
}

static bool hot_reset_needed(void *opaque)
{
    return DW_PCIE_EP(opaque)->in_hot_reset;
}

static const VMStateDescription vmstate_dw_pcie_ep_hot_reset = {
    .name = TYPE_DW_PCIE_EP "/hot-reset",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = hot_reset_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_BOOL(in_hot_reset, DWPCIeEPState),
        VMSTATE_TIMER_PTR(hot_reset_timer, DWPCIeEPState),
        VMSTATE_END_OF_LIST()
    },
};

/*
 * iatu-hazard may be changed at run time: it goes with the VM, always
 * (no .needed), as the destination's own setting is not the source's.
 */
static const VMStateDescription vmstate_dw_pcie_ep_hazard_policy = {
    .name = TYPE_DW_PCIE_EP "/iatu-hazard",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = hazard_policy_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(iatu_hazard, DWPCIeEPState),
        VMSTATE_END_OF_LIST()
    },
};

/* Version 2: the eDMA */
const VMStateDescription vmstate_dw_pcie_ep = {
    .name = TYPE_DW_PCIE_EP,
    .version_id = 2,
    .minimum_version_id = 2,
    .post_load = dw_pcie_ep_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8_ARRAY(config, DWPCIeEPState, DW_PCIE_EP_DBI_SIZE),
        VMSTATE_UINT32_ARRAY(bar_mask, DWPCIeEPState, DW_PCIE_EP_NUM_BARS),
        VMSTATE_UINT32_ARRAY(bar_addr, DWPCIeEPState, DW_PCIE_EP_NUM_BARS),
        VMSTATE_UINT32_ARRAY(bar_flags, DWPCIeEPState, DW_PCIE_EP_NUM_BARS),
        VMSTATE_UINT32(rom_mask, DWPCIeEPState),
        VMSTATE_STRUCT(iatu, DWPCIeEPState, 1, vmstate_dw_iatu, DWiATU),
        VMSTATE_UINT32(atu_viewport, DWPCIeEPState),
        VMSTATE_BOOL(ltssm_enable, DWPCIeEPState),
        VMSTATE_STRUCT(edma, DWPCIeEPState, 1, vmstate_dw_edma, DWEDMA),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription * const []) {
        &vmstate_dw_pcie_ep_posted,
        &vmstate_dw_pcie_ep_hazard_policy,
        &vmstate_dw_pcie_ep_hot_reset,
        NULL
    },
};

static const Property dw_pcie_ep_properties[] = {
    DEFINE_PROP_UINT16("vendor-id", DWPCIeEPState, vendor_id,
                       DW_PCIE_EP_DEFAULT_VENDOR_ID),
    DEFINE_PROP_UINT16("device-id", DWPCIeEPState, device_id,
                       DW_PCIE_EP_DEFAULT_DEVICE_ID),
    DEFINE_PROP_STRING("ip-version", DWPCIeEPState, ip_version),
    DEFINE_PROP_UINT32("num-ob-regions", DWPCIeEPState,
                       iatu.num_regions[DW_IATU_OUTBOUND], 8),
    DEFINE_PROP_UINT32("num-ib-regions", DWPCIeEPState,
                       iatu.num_regions[DW_IATU_INBOUND], 8),
    DEFINE_PROP_UINT64("atu-region-align", DWPCIeEPState, iatu.region_align,
                       4 * KiB),
    DEFINE_PROP_UINT64("atu-max-region-size", DWPCIeEPState,
                       iatu.max_region_size, 4 * GiB),
    DEFINE_PROP_BOOL("atu-viewport", DWPCIeEPState, atu_viewport_mode, false),
    DEFINE_PROP_UINT64("addr-space-size", DWPCIeEPState, addr_space_size,
                       16 * MiB),
    DEFINE_PROP_UINT8("max-link-speed", DWPCIeEPState, max_link_speed, 3),
    DEFINE_PROP_UINT8("num-lanes", DWPCIeEPState, num_lanes, 4),
    DEFINE_PROP_LINK("memory", DWPCIeEPState, dma_mr, TYPE_MEMORY_REGION,
                     MemoryRegion *),
    DEFINE_PROP_LINK("iommu", DWPCIeEPState, iommu, TYPE_ARM_SMMU,
                     SMMUState *),
    DEFINE_PROP_UINT32("stream-id", DWPCIeEPState, stream_id,
                       DW_PCIE_EP_STREAM_ID_REQUESTER),
    DEFINE_PROP_UINT32("x-iommu-hold-max-ms", DWPCIeEPState,
                       iommu_hold_max_ms, DW_PCIE_EP_IOMMU_HOLD_MAX_MS),
    DEFINE_PROP_CHR("chardev", DWPCIeEPState, link.chr),
    DEFINE_PROP_UINT32("link-timeout-ms", DWPCIeEPState, link.timeout_ms,
                       PCIE_EP_LINK_DEFAULT_TIMEOUT_MS),
    DEFINE_PROP_BOOL("fast-path", DWPCIeEPState, link.fast_path, true),
    DEFINE_PROP_UINT32("posted-write-latency-ns", DWPCIeEPState,
                       posted.latency_ns, DW_PCIE_EP_POSTED_LATENCY_NS),
    DEFINE_PROP_UINT32("posted-write-depth", DWPCIeEPState, posted.depth,
                       DW_PCIE_EP_POSTED_DEPTH),
    DEFINE_PROP_BOOL("ltssm-enable", DWPCIeEPState, ltssm_enable_at_reset,
                     false),
    DEFINE_PROP_UINT16("requester-id", DWPCIeEPState, requester_id,
                       DW_PCIE_EP_DEFAULT_REQUESTER_ID),
    DEFINE_PROP_BOOL("its-doorbell", DWPCIeEPState, its_doorbell, true),
    DEFINE_PROP_UINT8("edma-wr-channels", DWPCIeEPState,
                      edma.num_ch[DW_EDMA_WRITE], 2),
    DEFINE_PROP_UINT8("edma-rd-channels", DWPCIeEPState,
                      edma.num_ch[DW_EDMA_READ], 2),
    DEFINE_PROP_UINT32("edma-bandwidth", DWPCIeEPState, edma.bandwidth_mib,
                       2000),
    DEFINE_PROP_BOOL("edma-irq-per-channel", DWPCIeEPState,
                     edma.irq_per_channel, false),
    DEFINE_PROP_BOOL("edma-legacy", DWPCIeEPState, edma.legacy, false),
};

static void dw_pcie_ep_instance_init(Object *obj)
{
    DWPCIeEPState *s = DW_PCIE_EP(obj);

    s->ip_version = g_strdup("5.40a");
    dw_pcie_ep_bridge_instance_init(obj);
    object_property_add_uint64_ptr(obj, "x-iommu-revokes", &s->iommu_revokes,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "x-iommu-hold-timeouts",
                                   &s->iommu_hold_timeouts,
                                   OBJ_PROP_FLAG_READ);
}

static const char *const dw_pcie_ep_compatible[] = {
    "snps,dw-pcie-ep", NULL
};

static void dw_pcie_ep_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    DWPCIeEPClass *epc = DW_PCIE_EP_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);
    SysBusFDTNodeProviderClass *fdtc = SYSBUS_FDT_NODE_PROVIDER_CLASS(klass);

    dc->desc = "Synopsys DesignWare PCIe controller, endpoint mode";
    dc->realize = dw_pcie_ep_realize;
    dc->unrealize = dw_pcie_ep_unrealize;
    dc->vmsd = &vmstate_dw_pcie_ep;
    device_class_set_props(dc, dw_pcie_ep_properties);
    set_bit(DEVICE_CATEGORY_BRIDGE, dc->categories);
    rc->phases.hold = dw_pcie_ep_reset_hold;
    rc->phases.exit = dw_pcie_ep_reset_exit;
    fdtc->add_fdt_node = dw_pcie_ep_add_fdt_node;
    epc->compatible = dw_pcie_ep_compatible;
    epc->glue = (DWPCIeEPGlueRegion) {
        .name = "elbi", .ops = &elbi_ops, .size = DW_PCIE_EP_ELBI_SIZE,
    };
    dw_pcie_ep_bridge_class_init(klass);
}

static const TypeInfo dw_pcie_ep_types[] = {
    {
        .name = TYPE_DW_PCIE_EP,
        .parent = TYPE_DYNAMIC_SYS_BUS_DEVICE,
        .instance_size = sizeof(DWPCIeEPState),
        .instance_init = dw_pcie_ep_instance_init,
        .class_size = sizeof(DWPCIeEPClass),
        .class_init = dw_pcie_ep_class_init,
        .interfaces = (const InterfaceInfo[]) {
            { TYPE_SYSBUS_FDT_NODE_PROVIDER },
            { }
        },
    },
};

DEFINE_TYPES(dw_pcie_ep_types)
