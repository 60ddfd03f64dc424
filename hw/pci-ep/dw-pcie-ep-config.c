/*
 * Synopsys DesignWare PCIe controller in endpoint mode: the function's
 * configuration space
 *
 * Its layout and reset values, the write masks of the byte-mask engine
 * (what the host may write, what the local CPU may write under
 * DBI_RO_WR_EN), the BAR registers with their DBI2 masks and BAR
 * decode, the non-sticky registers, and the host's copy (CFG_IMAGE).
 * The device around it is dw-pcie-ep.c.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/range.h"
#include "qemu/units.h"
#include "qemu/log.h"
#include "hw/pci/pci.h"
#include "hw/pci/pcie_regs.h"
#include "hw/pci/pci_ids.h"
#include "hw/pci/pci_regs.h"
#include "dw-pcie-ep-internal.h"
#include "trace.h"

/*
 * Configuration space layout and masks
 */

static void set_ro(DWPCIeEPState *s, hwaddr addr, unsigned size,
                   uint32_t val)
{
    stn_le_p(&s->config[addr], size, val);
    stn_le_p(&s->romask[addr], size, MAKE_64BIT_MASK(0, 8 * size));
}

static void set_rw(DWPCIeEPState *s, hwaddr addr, unsigned size,
                   uint32_t val, uint32_t wmask)
{
    stn_le_p(&s->config[addr], size, val);
    stn_le_p(&s->wmask[addr], size, wmask);
}

static void add_cap(DWPCIeEPState *s, hwaddr at, uint8_t id, uint8_t next)
{
    s->config[at] = id;
    s->config[at + 1] = next;
}

static void add_ext_cap(DWPCIeEPState *s, hwaddr at, uint16_t id,
                        uint8_t version, uint16_t next)
{
    pci_set_long(&s->config[at], id | version << 16 | (uint32_t)next << 20);
}

static void init_header(DWPCIeEPState *s)
{
    /* IDs, class and subsystem are read-only from the link side. */
    set_ro(s, PCI_VENDOR_ID, 2, s->vendor_id);
    set_ro(s, PCI_DEVICE_ID, 2, s->device_id);
    set_ro(s, PCI_CLASS_REVISION, 4, PCI_CLASS_OTHERS << 24);
    set_ro(s, PCI_SUBSYSTEM_VENDOR_ID, 2, 0);
    set_ro(s, PCI_SUBSYSTEM_ID, 2, 0);
    set_ro(s, PCI_INTERRUPT_PIN, 1, 0);
    /* The header type is 0 even for the local CPU: EP mode. */
    s->config[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
    set_rw(s, PCI_COMMAND, 2, 0, PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
           PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | PCI_COMMAND_SERR |
           PCI_COMMAND_INTX_DISABLE);
    pci_set_word(&s->config[PCI_STATUS], PCI_STATUS_CAP_LIST);
    pci_set_word(&s->w1cmask[PCI_STATUS], PCI_STATUS_PARITY |
                 PCI_STATUS_SIG_TARGET_ABORT | PCI_STATUS_REC_TARGET_ABORT |
                 PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_SIG_SYSTEM_ERROR |
                 PCI_STATUS_DETECTED_PARITY);
    set_rw(s, PCI_CACHE_LINE_SIZE, 1, 0, 0xff);
    set_rw(s, PCI_INTERRUPT_LINE, 1, 0, 0xff);
    s->config[PCI_CAPABILITY_LIST] = DW_PCIE_EP_PM_CAP;
}

static void init_pm_cap(DWPCIeEPState *s)
{
    add_cap(s, DW_PCIE_EP_PM_CAP, PCI_CAP_ID_PM, DW_PCIE_EP_MSI_CAP);
    set_ro(s, DW_PCIE_EP_PM_CAP + PCI_PM_PMC, 2, 0x0003); /* version 3 */
    set_rw(s, DW_PCIE_EP_PM_CAP + PCI_PM_CTRL, 2, PCI_PM_CTRL_NO_SOFT_RESET,
           PCI_PM_CTRL_STATE_MASK);
}

/*
 * MSI: 64-bit, without per-vector masking.  Multiple Message Capable is
 * set by the endpoint's driver (under DBI_RO_WR_EN), Enable and Multiple
 * Message Enable by the host.
 */
static void init_msi_cap(DWPCIeEPState *s)
{
    hwaddr msi = DW_PCIE_EP_MSI_CAP;

    add_cap(s, msi, PCI_CAP_ID_MSI, DW_PCIE_EP_PCIE_CAP);
    pci_set_word(&s->config[msi + PCI_MSI_FLAGS], PCI_MSI_FLAGS_64BIT);
    pci_set_word(&s->wmask[msi + PCI_MSI_FLAGS],
                 PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
    pci_set_word(&s->romask[msi + PCI_MSI_FLAGS], PCI_MSI_FLAGS_QMASK);
    set_rw(s, msi + PCI_MSI_ADDRESS_LO, 4, 0, 0xfffffffc);
    set_rw(s, msi + PCI_MSI_ADDRESS_HI, 4, 0, 0xffffffff);
    set_rw(s, msi + PCI_MSI_DATA_64, 2, 0, 0xffff);
}

static void init_pcie_cap(DWPCIeEPState *s)
{
    hwaddr cap = DW_PCIE_EP_PCIE_CAP;
    uint32_t speeds = MAKE_64BIT_MASK(1, s->max_link_speed);

    add_cap(s, cap, PCI_CAP_ID_EXP, DW_PCIE_EP_MSIX_CAP);
    set_ro(s, cap + PCI_EXP_FLAGS, 2,
           PCI_EXP_FLAGS_VER2 | PCI_EXP_TYPE_ENDPOINT << 4);
    /* Max_Payload_Size supported: 256 bytes */
    set_ro(s, cap + PCI_EXP_DEVCAP, 4, PCI_EXP_DEVCAP_RBER | 0x1);
    set_rw(s, cap + PCI_EXP_DEVCTL, 2,
           PCI_EXP_DEVCTL_RELAX_EN | PCI_EXP_DEVCTL_NOSNOOP_EN |
           PCI_EXP_DEVCTL_READRQ_512B,
           (uint16_t)~PCI_EXP_DEVCTL_BCR_FLR);
    pci_set_word(&s->w1cmask[cap + PCI_EXP_DEVSTA],
                 PCI_EXP_DEVSTA_CED | PCI_EXP_DEVSTA_NFED |
                 PCI_EXP_DEVSTA_FED | PCI_EXP_DEVSTA_URD);
    set_ro(s, cap + PCI_EXP_LNKCAP, 4,
           s->max_link_speed | s->num_lanes << 4);
    set_rw(s, cap + PCI_EXP_LNKCTL, 2, 0,
           PCI_EXP_LNKCTL_ASPMC | PCI_EXP_LNKCTL_RCB | PCI_EXP_LNKCTL_CCC |
           PCI_EXP_LNKCTL_ES | PCI_EXP_LNKCTL_CLKREQ_EN |
           PCI_EXP_LNKCTL_HAWD | PCI_EXP_LNKCTL_LBMIE |
           PCI_EXP_LNKCTL_LABIE);
    /* Completion timeout ranges A to D, and its disable */
    set_ro(s, cap + PCI_EXP_DEVCAP2, 4, PCI_EXP_DEVCAP2_COMP_TMOUT_DIS | 0xf);
    set_rw(s, cap + PCI_EXP_DEVCTL2, 2, 0,
           PCI_EXP_DEVCTL2_COMP_TIMEOUT | PCI_EXP_DEVCTL2_COMP_TMOUT_DIS);
    set_ro(s, cap + PCI_EXP_LNKCAP2, 4, speeds);
    /* Target speed to Compliance SOS: bits 10:0 */
    set_rw(s, cap + PCI_EXP_LNKCTL2, 2, s->max_link_speed,
           MAKE_64BIT_MASK(0, 11));
}

/* MSI-X: table size and locations are set by the endpoint's driver. */
static void init_msix_cap(DWPCIeEPState *s)
{
    hwaddr msix = DW_PCIE_EP_MSIX_CAP;

    add_cap(s, msix, PCI_CAP_ID_MSIX, 0);
    pci_set_word(&s->wmask[msix + PCI_MSIX_FLAGS],
                 PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    pci_set_word(&s->romask[msix + PCI_MSIX_FLAGS], PCI_MSIX_FLAGS_QSIZE);
    set_ro(s, msix + PCI_MSIX_TABLE, 4, 0);
    set_ro(s, msix + PCI_MSIX_PBA, 4, 0);
}

/*
 * PTM: the controller's PTM capability is shared with RC mode, so it
 * claims responder and root capability at reset; Linux clears those
 * bits for an endpoint (under DBI_RO_WR_EN).
 */
static DWPCIeEPBarKind bar_kind(DWPCIeEPState *s, int bar)
{
    return DW_PCIE_EP_GET_CLASS(s)->bar_kind[bar];
}

static unsigned num_resizable_bars(DWPCIeEPState *s)
{
    unsigned n = 0;

    for (int bar = 0; bar < DW_PCIE_EP_NUM_BARS; bar++) {
        n += bar_kind(s, bar) == DW_PCIE_EP_BAR_RESIZABLE;
    }
    return n;
}

static void init_ptm_cap(DWPCIeEPState *s)
{
    hwaddr ptm = DW_PCIE_EP_PTM_CAP;

    add_ext_cap(s, ptm, PCI_EXT_CAP_ID_PTM, 1,
                num_resizable_bars(s) ? DW_PCIE_EP_REBAR_CAP : 0);
    set_ro(s, ptm + PCI_PTM_CAP, 4, PCI_PTM_CAP_REQ | PCI_PTM_CAP_RES |
           PCI_PTM_CAP_ROOT | 0x0a << 8);
    set_rw(s, ptm + PCI_PTM_CTRL, 4, 0, PCI_PTM_CTRL_ENABLE |
           PCI_PTM_CTRL_ROOT | PCI_PTM_GRANULARITY_MASK);
}

/*
 * Resizable BAR: a Capability and a Control register per resizable BAR,
 * in BAR order.  The supported sizes (1 MB at reset) are read-only to
 * the host and written by the local CPU under DBI_RO_WR_EN; such a write
 * selects the smallest size it supports, as Linux's
 * dw_pcie_ep_set_bar_resizable() expects of the controller.  The host
 * may select another size.  The BAR's DBI2 mask follows the selection.
 */
static hwaddr rebar_entry(int i)
{
    return DW_PCIE_EP_REBAR_CAP + PCI_REBAR_CAP + i * PCI_REBAR_CTRL;
}

static void init_rebar_cap(DWPCIeEPState *s)
{
    unsigned n = num_resizable_bars(s);
    int i = 0;

    if (!n) {
        return;
    }
    add_ext_cap(s, DW_PCIE_EP_REBAR_CAP, PCI_EXT_CAP_ID_REBAR, 1, 0);
    for (int bar = 0; bar < DW_PCIE_EP_NUM_BARS; bar++) {
        hwaddr cap = rebar_entry(i), ctrl = cap + PCI_REBAR_CAP;

        if (bar_kind(s, bar) != DW_PCIE_EP_BAR_RESIZABLE) {
            continue;
        }
        set_ro(s, cap, 4, PCI_REBAR_CAP_SIZES & BIT(4));
        pci_set_long(&s->romask[cap], PCI_REBAR_CAP_SIZES);
        set_ro(s, ctrl, 4, bar | (i ? 0 : n << R_REBAR_CTRL_NBAR_SHIFT));
        /* The host selects a size; the sizes above 128 TB are RO_WR_EN. */
        pci_set_long(&s->romask[ctrl], R_REBAR_CTRL_SIZES_MASK);
        pci_set_long(&s->wmask[ctrl], R_REBAR_CTRL_BAR_SIZE_MASK);
        i++;
    }
}

/* The size a resizable BAR's Control register selects */
static uint64_t rebar_size(DWPCIeEPState *s, int bar)
{
    for (int i = 0; i < num_resizable_bars(s); i++) {
        uint32_t ctrl = pci_get_long(&s->config[rebar_entry(i) +
                                                PCI_REBAR_CAP]);

        if (FIELD_EX32(ctrl, REBAR_CTRL, BAR_IDX) == bar) {
            /* 2^63 at most: what a host selects above is unsupported */
            return MiB << MIN(FIELD_EX32(ctrl, REBAR_CTRL, BAR_SIZE), 43);
        }
    }
    return MiB;
}

/* The size a fixed or resizable BAR has; 0 for a programmable one */
static uint64_t bar_hw_size(DWPCIeEPState *s, int bar)
{
    switch (bar_kind(s, bar)) {
    case DW_PCIE_EP_BAR_FIXED:
        return DW_PCIE_EP_GET_CLASS(s)->bar_fixed_size[bar];
    case DW_PCIE_EP_BAR_RESIZABLE:
        return rebar_size(s, bar);
    default:
        return 0;
    }
}

/*
 * What a DBI2 write of @val to BAR @bar's mask leaves there: all of it
 * for a programmable BAR; the enable bit, and the size bits the hardware
 * keeps, for a fixed or resizable one; and for the upper half of a
 * 64-bit fixed or resizable BAR, the upper bits of its size.
 */
uint32_t dw_pcie_ep_bar_mask_write(DWPCIeEPState *s, int bar, uint32_t val)
{
    uint64_t size;

    if (dw_pcie_ep_bar_is_upper_half(s, bar)) {
        size = bar_hw_size(s, bar - 1);
        return size ? (size - 1) >> 32 : val;
    }
    size = bar_hw_size(s, bar);
    if (!size) {
        return val;
    }
    return ((uint32_t)(size - 1) & ~DW_PCIE_EP_BAR_MASK_ENABLE) |
           (val & DW_PCIE_EP_BAR_MASK_ENABLE);
}

/*
 * The masks the hardware derives (fixed and resizable BARs, and their
 * upper halves) after a size or a type changed, and what they leave of
 * the BARs' addresses; true if a mask changed.
 */
bool dw_pcie_ep_derive_bar_masks(DWPCIeEPState *s)
{
    bool changed = false;

    for (int bar = 0; bar < DW_PCIE_EP_NUM_BARS; bar++) {
        uint32_t old = s->bar_mask[bar];

        if (dw_pcie_ep_bar_is_upper_half(s, bar) ? bar_hw_size(s, bar - 1) != 0
                                      : bar_hw_size(s, bar) != 0) {
            s->bar_mask[bar] = dw_pcie_ep_bar_mask_write(s, bar, old);
        }
        changed |= s->bar_mask[bar] != old;
    }
    for (int bar = 0; bar < DW_PCIE_EP_NUM_BARS; bar++) {
        s->bar_addr[bar] &= dw_pcie_ep_bar_writable_bits(s, bar);
    }
    return changed;
}

/* The smallest of a resizable BAR's supported sizes is selected */
static void rebar_select_smallest(DWPCIeEPState *s, int i)
{
    hwaddr cap = rebar_entry(i), ctrl = cap + PCI_REBAR_CAP;
    uint32_t sizes = pci_get_long(&s->config[cap]) & PCI_REBAR_CAP_SIZES;

    if (sizes) {
        pci_set_long(&s->config[ctrl],
                     FIELD_DP32(pci_get_long(&s->config[ctrl]), REBAR_CTRL,
                                BAR_SIZE, ctz32(sizes) - 4));
    }
}

/* After a write to [@addr, @addr + @size): the capabilities' side effects */
static void rebar_written(DWPCIeEPState *s, hwaddr addr, unsigned size,
                          bool local, bool ro_writable)
{
    unsigned n = num_resizable_bars(s);
    bool touched = false;

    /* Most writes are elsewhere; a controller without one has no entry */
    if (!ranges_overlap(addr, size, DW_PCIE_EP_REBAR_CAP,
                        PCI_REBAR_CAP + n * PCI_REBAR_CTRL)) {
        return;
    }
    for (int i = 0; i < n; i++) {
        hwaddr cap = rebar_entry(i);

        /* Only a write the sizes take (under DBI_RO_WR_EN) selects one */
        if (ro_writable && ranges_overlap(addr, size, cap, 4)) {
            rebar_select_smallest(s, i);
        }
        touched |= ranges_overlap(addr, size, cap, 8);
    }
    if (touched && dw_pcie_ep_derive_bar_masks(s)) {
        if (!local) {
            qemu_log_mask(LOG_UNIMP, "%s: the host resized a BAR: the link "
                          "plugs the function in again, and the hot reset "
                          "that follows selects the smallest size again\n",
                          object_get_typename(OBJECT(s)));
        }
        dw_pcie_ep_inbound_changed(s, local);
        dw_pcie_ep_bars_changed(s);
    }
}

/*
 * A directed speed change completes at once on a link that is up, as
 * R-Car's glue driver waits for; with no partner it stays pending until
 * the link comes up.
 */
static void speed_change_complete(DWPCIeEPState *s)
{
    uint32_t v = pci_get_long(&s->config[A_LINK_WIDTH_SPEED_CONTROL]);

    if (dw_pcie_ep_link_state(s) == DW_PCIE_EP_LINK_UP) {
        pci_set_long(&s->config[A_LINK_WIDTH_SPEED_CONTROL],
                     FIELD_DP32(v, LINK_WIDTH_SPEED_CONTROL, SPEED_CHANGE, 0));
    }
}

/*
 * "5.40a" -> 0x3534302a: the three digits in ASCII followed by '*', the
 * encoding of the VERSION_NUMBER register that Linux compares against.
 */
bool dw_pcie_ep_parse_ip_version(const char *str, uint32_t *val)
{
    if (strlen(str) != 5 || !g_ascii_isdigit(str[0]) || str[1] != '.' ||
        !g_ascii_isdigit(str[2]) || !g_ascii_isdigit(str[3]) ||
        !g_ascii_islower(str[4])) {
        return false;
    }
    *val = (uint32_t)str[0] << 24 | (uint32_t)str[2] << 16 |
           (uint32_t)str[3] << 8 | '*';
    return true;
}

static uint32_t link_mode_bits(uint8_t lanes)
{
    return (1u << ctz32(lanes) << 1) - 1;   /* x1 1, x2 3, x4 7, ... */
}

static void init_port_logic(DWPCIeEPState *s)
{
    uint32_t version = 0;

    set_rw(s, A_PORT_ACK_LATENCY, 4, 0, 0xffffffff);
    set_rw(s, A_PORT_VENDOR_DLLP, 4, 0, 0xffffffff);
    set_rw(s, A_PORT_FORCE, 4, 0, DW_PCIE_EP_PORT_FORCE_RW);
    set_rw(s, A_PORT_AFR, 4,
           0x1b << R_PORT_AFR_N_FTS_SHIFT | 0x1b << R_PORT_AFR_CC_N_FTS_SHIFT,
           DW_PCIE_EP_PORT_AFR_RW);
    set_rw(s, A_PORT_LINK_CONTROL, 4,
           R_PORT_LINK_CONTROL_DLL_LINK_EN_MASK |
           link_mode_bits(s->num_lanes) << R_PORT_LINK_CONTROL_LINK_MODE_SHIFT,
           DW_PCIE_EP_PORT_LINK_CONTROL_RW);
    set_rw(s, A_PORT_LANE_SKEW, 4, 0, 0xffffffff);
    set_rw(s, A_PORT_TIMER_CTRL, 4, 0, 0xffffffff);
    set_rw(s, A_PORT_SYMBOL_TIMER, 4, 0, 0xffffffff);
    set_rw(s, A_LINK_WIDTH_SPEED_CONTROL, 4,
           0x2c << R_LINK_WIDTH_SPEED_CONTROL_N_FTS_SHIFT |
           s->num_lanes << R_LINK_WIDTH_SPEED_CONTROL_NUM_LANES_SHIFT,
           DW_PCIE_EP_LINK_WIDTH_SPEED_CONTROL_RW);
    set_rw(s, A_PIPE_LOOPBACK_CONTROL, 4, 0,
           R_PIPE_LOOPBACK_CONTROL_PIPE_LOOPBACK_MASK);
    set_rw(s, A_MISC_CONTROL_1, 4, 0, R_MISC_CONTROL_1_DBI_RO_WR_EN_MASK);
    dw_pcie_ep_parse_ip_version(s->ip_version, &version);
    pci_set_long(&s->config[A_VERSION_NUMBER], version);
    pci_set_long(&s->config[A_VERSION_TYPE], 0x67612a2a); /* "ga**" */
    /*
     * Without a legacy eDMA, its viewport control reads as all ones:
     * Linux then looks for an unrolled eDMA only.
     */
    pci_set_long(&s->config[A_DMA_VIEWPORT_CTRL], 0xffffffff);
    if (!s->atu_viewport_mode) {
        pci_set_long(&s->config[A_ATU_VIEWPORT], DW_PCIE_EP_ATU_UNROLLED);
    }
    set_rw(s, A_PL_CHK_REG_CONTROL_STATUS, 4, 0,
           DW_PCIE_EP_PL_CHK_REG_CONTROL_RW);
}

void dw_pcie_ep_init_config(DWPCIeEPState *s)
{
    memset(s->config, 0, sizeof(s->config));
    memset(s->wmask, 0, sizeof(s->wmask));
    memset(s->w1cmask, 0, sizeof(s->w1cmask));
    memset(s->romask, 0, sizeof(s->romask));
    memset(s->bar_mask, 0, sizeof(s->bar_mask));
    memset(s->bar_addr, 0, sizeof(s->bar_addr));
    memset(s->bar_flags, 0, sizeof(s->bar_flags));
    s->rom_mask = 0;

    init_header(s);
    init_pm_cap(s);
    init_msi_cap(s);
    init_pcie_cap(s);
    init_msix_cap(s);
    init_ptm_cap(s);
    init_rebar_cap(s);
    init_port_logic(s);
    /* Fixed and resizable BARs have their sizes, if not their enables */
    dw_pcie_ep_derive_bar_masks(s);
    dw_pcie_ep_update_link_status(s);
    memcpy(s->config_reset, s->config, sizeof(s->config_reset));
}

/* LTSSM, link-up and the PCIe Link Status follow the link state. */
void dw_pcie_ep_update_link_status(DWPCIeEPState *s)
{
    DWPCIeEPLinkState state = dw_pcie_ep_link_state(s);
    hwaddr cap = DW_PCIE_EP_PCIE_CAP;
    uint32_t ltssm = DW_LTSSM_DETECT_QUIET, debug1 = 0;
    uint16_t lnksta = PCI_EXP_LNKSTA_SLC;

    if (state != DW_PCIE_EP_LINK_DOWN) {
        uint16_t tls = pci_get_word(&s->config[cap + PCI_EXP_LNKCTL2]) &
                       PCI_EXP_LNKCTL2_TLS;
        uint32_t lnkcap = pci_get_long(&s->config[cap + PCI_EXP_LNKCAP]);
        /*
         * What Linux programmed (LNKCAP under DBI_RO_WR_EN, the target
         * speed), within what the lanes and the partner can do (the
         * properties).
         */
        unsigned speed = MIN(MIN(MAX(tls, 1), s->max_link_speed),
                             MAX(lnkcap & PCI_EXP_LNKCAP_SLS, 1));
        unsigned width = MIN(MAX(FIELD_EX32(lnkcap, LNKCAP, MLW), 1),
                             s->num_lanes);

        ltssm = state == DW_PCIE_EP_LINK_UP ? DW_LTSSM_L0
                                            : DW_LTSSM_LPBK_ACTIVE;
        debug1 = R_PORT_DEBUG1_LINK_UP_MASK;
        lnksta |= speed | width << PCI_EXP_LNKSTA_NLW_SHIFT;
    }
    if (state == DW_PCIE_EP_LINK_UP && s->in_hot_reset) {
        /*
         * Hot Reset, then Detect and training, as the controller's own
         * debug registers show it; the host's copy of Link Status, which
         * the host reads after its reset, keeps the trained link's.
         */
        ltssm = DW_LTSSM_HOT_RESET;
        debug1 = 0;
    }
    speed_change_complete(s);
    pci_set_long(&s->config[A_PORT_DEBUG0], ltssm);
    pci_set_long(&s->config[A_PORT_DEBUG1], debug1);
    pci_set_word(&s->config[cap + PCI_EXP_LNKSTA], lnksta);
}

/*
 * Link down (or a hot reset): the function's non-sticky registers go back
 * to their reset values, as Linux's dw_pcie_ep_linkdown() expects.  Here
 * those are the bits the host may write (Command, Status, the BARs'
 * addresses, the MSI and MSI-X controls and messages, the PCIe control
 * registers, ...); what the EP's driver programmed through DBI (IDs,
 * class, capabilities, DBI2 masks) stays.
 */
void dw_pcie_ep_reset_non_sticky(DWPCIeEPState *s)
{
    for (unsigned i = 0; i < PCIE_EP_LINK_IMAGE_SIZE; i++) {
        uint8_t host = s->wmask[i] | s->w1cmask[i];

        /* Link Control 2 is sticky (RWS), and where max-link-speed is */
        if (range_covers_byte(DW_PCIE_EP_PCIE_CAP + PCI_EXP_LNKCTL2, 2, i)) {
            continue;
        }
        s->config[i] = (s->config[i] & ~host) | (s->config_reset[i] & host);
    }
    memset(s->bar_addr, 0, sizeof(s->bar_addr));
    /*
     * The selected sizes are non-sticky: back to the smallest supported
     * one (Linux offers one size), and the masks follow.
     */
    for (int i = 0; i < num_resizable_bars(s); i++) {
        rebar_select_smallest(s, i);
    }
    if (dw_pcie_ep_derive_bar_masks(s)) {
        dw_pcie_ep_bars_changed(s);
    }
    dw_pcie_ep_update_link_status(s);
    trace_dw_pcie_ep_reset_non_sticky();
}

/*
 * BARs: DBI2 masks decide the sizes, the BAR registers the addresses
 */

bool dw_pcie_ep_bar_is_64bit(DWPCIeEPState *s, int bar)
{
    return (s->bar_flags[bar] & (PCI_BASE_ADDRESS_SPACE_IO |
                                 PCI_BASE_ADDRESS_MEM_TYPE_MASK)) ==
           PCI_BASE_ADDRESS_MEM_TYPE_64;
}

/* The local CPU may write the fields that are read-only to the host. */
static bool dbi_ro_writable(DWPCIeEPState *s)
{
    return FIELD_EX32(pci_get_long(&s->config[A_MISC_CONTROL_1]),
                      MISC_CONTROL_1, DBI_RO_WR_EN);
}

/* BAR @bar is the upper half of the 64-bit BAR below it */
/*
 * BAR @bar is the upper half of the enabled 64-bit BAR below it (which
 * is no upper half itself, whatever type bits it had before)
 */
bool dw_pcie_ep_bar_is_upper_half(DWPCIeEPState *s, int bar)
{
    return bar > 0 && dw_pcie_ep_bar_is_64bit(s, bar - 1) &&
           (s->bar_mask[bar - 1] & DW_PCIE_EP_BAR_MASK_ENABLE) &&
           !dw_pcie_ep_bar_is_upper_half(s, bar - 1);
}

static uint32_t bar_flag_bits(DWPCIeEPState *s, int bar)
{
    return s->bar_flags[bar] & PCI_BASE_ADDRESS_SPACE_IO ? 0x3 : 0xf;
}

/* The bits of BAR register @bar that the host may write */
uint32_t dw_pcie_ep_bar_writable_bits(DWPCIeEPState *s, int bar)
{
    if (dw_pcie_ep_bar_is_upper_half(s, bar)) {
        return ~s->bar_mask[bar];
    }
    if (!(s->bar_mask[bar] & DW_PCIE_EP_BAR_MASK_ENABLE)) {
        return 0;
    }
    return ~(s->bar_mask[bar] | bar_flag_bits(s, bar));
}

static uint32_t bar_read(DWPCIeEPState *s, int bar)
{
    if (dw_pcie_ep_bar_is_upper_half(s, bar)) {
        return s->bar_addr[bar] & dw_pcie_ep_bar_writable_bits(s, bar);
    }
    if (!(s->bar_mask[bar] & DW_PCIE_EP_BAR_MASK_ENABLE)) {
        return 0;   /* a disabled BAR is not implemented */
    }
    return (s->bar_addr[bar] & dw_pcie_ep_bar_writable_bits(s, bar)) |
           (s->bar_flags[bar] & bar_flag_bits(s, bar));
}

/*
 * The address bits follow the mask; the type bits are read-only from the
 * link and written by the local CPU under DBI_RO_WR_EN.
 */
static void bar_write(DWPCIeEPState *s, int bar, uint32_t val, bool local)
{
    bool ro_writable = local && dbi_ro_writable(s);

    if (ro_writable && !dw_pcie_ep_bar_is_upper_half(s, bar) &&
        s->bar_flags[bar] != (val & 0xf)) {
        bool was_pair = bar + 1 < DW_PCIE_EP_NUM_BARS &&
                        dw_pcie_ep_bar_is_upper_half(s, bar + 1);

        s->bar_flags[bar] = val & 0xf;
        /*
         * The upper half of a fixed or resizable BAR had the mask the
         * hardware gave it, and a fixed or resizable upper half had what
         * was written for the pair: alone, neither is a BAR.
         */
        if (was_pair && !dw_pcie_ep_bar_is_upper_half(s, bar + 1) &&
            (bar_hw_size(s, bar) || bar_hw_size(s, bar + 1))) {
            s->bar_mask[bar + 1] = 0;
            s->bar_addr[bar + 1] = 0;
        }
        dw_pcie_ep_derive_bar_masks(s);
    }
    s->bar_addr[bar] = val & dw_pcie_ep_bar_writable_bits(s, bar);
    trace_dw_pcie_ep_bar_write(bar, val, bar_read(s, bar));
}

/*
 * The DBI2 mask holds size - 1, over both halves of a 64-bit BAR.  Kept
 * as size - 1: an all-ones 64-bit mask has no size that fits.
 */
static uint64_t bar_size_mask(DWPCIeEPState *s, int bar)
{
    uint64_t mask;
    bool io, is64;

    pcie_ep_bar_decode(s->bar_mask, s->bar_flags, bar, &mask, &io, &is64);
    return mask;
}

static uint64_t bar_base(DWPCIeEPState *s, int bar)
{
    uint64_t base = bar_read(s, bar) & ~(uint64_t)bar_flag_bits(s, bar);

    if (dw_pcie_ep_bar_is_64bit(s, bar) && bar + 1 < DW_PCIE_EP_NUM_BARS) {
        base = deposit64(base, 32, 32, bar_read(s, bar + 1));
    }
    return base;
}

/* Which enabled memory BAR decodes @pci_addr, if any */
bool dw_pcie_ep_bar_decode(DWPCIeEPState *s, uint64_t pci_addr,
                           DWiATUBarHit *hit)
{
    if (!(pci_get_word(&s->config[PCI_COMMAND]) & PCI_COMMAND_MEMORY)) {
        return false;
    }
    for (int bar = 0; bar < DW_PCIE_EP_NUM_BARS; bar++) {
        uint64_t base, mask;

        if (!(s->bar_mask[bar] & DW_PCIE_EP_BAR_MASK_ENABLE) ||
            dw_pcie_ep_bar_is_upper_half(s, bar) ||
            (s->bar_flags[bar] & PCI_BASE_ADDRESS_SPACE_IO)) {
            continue;
        }
        base = bar_base(s, bar);
        mask = bar_size_mask(s, bar);
        /* A BAR at PCI address 0 decodes there too, as on hardware */
        if (pci_addr >= base && pci_addr - base <= mask) {
            *hit = (DWiATUBarHit) {
                .func = 0, .bar = bar, .bar_base = base, .bar_mask = mask,
            };
            return true;
        }
    }
    return false;
}

bool dw_pcie_ep_is_bar_reg(hwaddr addr)
{
    return addr >= PCI_BASE_ADDRESS_0 && addr < PCI_CARDBUS_CIS;
}

uint32_t dw_pcie_ep_config_read(DWPCIeEPState *s, hwaddr addr,
                                unsigned size)
{
    if (dw_pcie_ep_is_bar_reg(addr)) {
        int bar = (addr - PCI_BASE_ADDRESS_0) / 4;

        return extract32(bar_read(s, bar), (addr & 3) * 8, size * 8);
    }
    return ldn_le_p(&s->config[addr], size);
}

static void config_write_bytes(DWPCIeEPState *s, hwaddr addr, uint32_t val,
                               unsigned size, bool ro_writable)
{
    for (unsigned i = 0; i < size; i++, val >>= 8) {
        uint8_t wmask = s->wmask[addr + i];
        uint8_t w1c = s->w1cmask[addr + i];

        if (ro_writable) {
            wmask |= s->romask[addr + i];
        }
        s->config[addr + i] = (s->config[addr + i] & ~wmask) | (val & wmask);
        s->config[addr + i] &= ~(val & w1c);
    }
}

/*
 * The host's copy of our configuration space
 *
 * The host answers its config reads from a copy, so that none of them
 * waits on the link (and so on another VM).  After every change of what
 * the host sees, the dwords that changed go to it in CFG_IMAGE messages;
 * a full copy goes before every UP.  Each says how many of the host's
 * config writes it has seen, so that the host keeps its own newer ones.
 */
static void host_image_view(DWPCIeEPState *s, uint8_t *view)
{
    memcpy(view, s->config, PCIE_EP_LINK_IMAGE_SIZE);
    for (int bar = 0; bar < DW_PCIE_EP_NUM_BARS; bar++) {
        stl_le_p(view + PCI_BASE_ADDRESS_0 + 4 * bar, bar_read(s, bar));
    }
}

static bool host_image_changed(DWPCIeEPState *s, const uint8_t *view,
                               unsigned off)
{
    return memcmp(view + off, s->image_sent[0] + off, 4) ||
           memcmp(s->wmask + off, s->image_sent[1] + off, 4) ||
           memcmp(s->w1cmask + off, s->image_sent[2] + off, 4);
}

static void host_image_send(DWPCIeEPState *s, const uint8_t *view,
                            unsigned off, unsigned n)
{
    const uint8_t *part[3] = { view, s->wmask, s->w1cmask };
    uint8_t msg[3 * PCIE_EP_LINK_IMAGE_CHUNK];

    for (int i = 0; i < 3; i++) {
        memcpy(msg + i * n, part[i] + off, n);
        memcpy(s->image_sent[i] + off, part[i] + off, n);
    }
    pcie_ep_link_send_image(&s->link, s->host_cfg_writes, off, msg, 3 * n);
}

/*
 * The dwords a host CFG_WR touched, changed or not: the image that has
 * seen the write must reach the host, which holds its own value of them
 * until then.
 */
void dw_pcie_ep_host_image_confirm(DWPCIeEPState *s, hwaddr addr,
                                   unsigned size)
{
    uint8_t view[PCIE_EP_LINK_IMAGE_SIZE];
    unsigned off = addr & ~3, end = MIN(addr + size, PCIE_EP_LINK_IMAGE_SIZE);

    if (!pcie_ep_link_is_up(&s->link) || off >= end) {
        return;
    }
    host_image_view(s, view);
    host_image_send(s, view, off, ROUND_UP(end, 4) - off);
}

/* Send the host what changed of its view; everything with @all. */
void dw_pcie_ep_host_image_sync(DWPCIeEPState *s, bool all)
{
    uint8_t view[PCIE_EP_LINK_IMAGE_SIZE];
    unsigned off = 0, end;

    if (!pcie_ep_link_is_up(&s->link)) {
        return;     /* a new connection gets all of it before UP */
    }
    host_image_view(s, view);
    while (off < PCIE_EP_LINK_IMAGE_SIZE) {
        if (!all && !host_image_changed(s, view, off)) {
            off += 4;
            continue;
        }
        end = off + 4;
        while (end < PCIE_EP_LINK_IMAGE_SIZE &&
               end - off < PCIE_EP_LINK_IMAGE_CHUNK &&
               (all || host_image_changed(s, view, end))) {
            end += 4;
        }
        host_image_send(s, view, off, end - off);
        off = end;
    }
}

void dw_pcie_ep_config_write(DWPCIeEPState *s, hwaddr addr, uint32_t val,
                             unsigned size, bool local)
{
    bool ro_writable = local && dbi_ro_writable(s);

    if (dw_pcie_ep_is_bar_reg(addr)) {
        int bar = (addr - PCI_BASE_ADDRESS_0) / 4;
        uint32_t old = bar_read(s, bar);
        unsigned shift = (addr & 3) * 8;

        bar_write(s, bar, deposit32(old, shift, size * 8, val), local);
        if (local) {
            dw_pcie_ep_inbound_changed(s, true);
            dw_pcie_ep_bars_changed(s);
        }
        dw_pcie_ep_host_image_sync(s, false);
        return;
    }
    config_write_bytes(s, addr, val, size, ro_writable);
    if (local && ranges_overlap(addr, size, PCI_COMMAND, 1)) {
        dw_pcie_ep_inbound_changed(s, true);
    }
    rebar_written(s, addr, size, local, ro_writable);
    if (ranges_overlap(addr, size, A_LINK_WIDTH_SPEED_CONTROL, 4)) {
        speed_change_complete(s);
    }
    if (ranges_overlap(addr, size, A_PORT_LINK_CONTROL, 4) ||
        ranges_overlap(addr, size, A_PIPE_LOOPBACK_CONTROL, 4) ||
        ranges_overlap(addr, size, DW_PCIE_EP_PCIE_CAP + PCI_EXP_LNKCAP, 4) ||
        ranges_overlap(addr, size, DW_PCIE_EP_PCIE_CAP + PCI_EXP_LNKCTL2, 2)) {
        dw_pcie_ep_link_state_changed(s);
    }
    dw_pcie_ep_host_image_sync(s, false);
}

/*
 * The host sees the function's configuration space, not port logic, in
 * naturally aligned accesses of 1, 2 or 4 bytes.
 */
static bool host_config_access_ok(hwaddr addr, unsigned size)
{
    return (size == 1 || size == 2 || size == 4) && !(addr & (size - 1)) &&
           addr + size <= A_PORT_ACK_LATENCY;
}

uint32_t dw_pcie_ep_host_config_read(DWPCIeEPState *s, hwaddr addr,
                                     unsigned size)
{
    uint32_t val = 0;

    if (host_config_access_ok(addr, size)) {
        val = dw_pcie_ep_config_read(s, addr, size);
    }
    trace_dw_pcie_ep_host_config_read(addr, size, val);
    return val;
}

void dw_pcie_ep_host_config_write(DWPCIeEPState *s, hwaddr addr,
                                  uint32_t val, unsigned size)
{
    trace_dw_pcie_ep_host_config_write(addr, size, val);
    if (!host_config_access_ok(addr, size)) {
        return;
    }
    dw_pcie_ep_config_write(s, addr, val, size, false);
    /*
     * The host dropped what it mapped before it sent this; a MAP_RD it
     * sent meanwhile was answered from the old decode, and this REVOKE,
     * behind that answer on the stream, takes it back.
     */
    if (dw_pcie_ep_is_bar_reg(addr) ||
        ranges_overlap(addr, size, PCI_COMMAND, 1)) {
        dw_pcie_ep_inbound_changed(s, false);
    }
}
