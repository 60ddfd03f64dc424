/*
 * The host side of the endpoint link: dw-pcie-ep-link and the
 * dw-pcie-ep-function it hot-plugs
 *
 *   -chardev socket,id=link0,path=ep.sock,reconnect-ms=500
 *   -device pcie-root-port,id=rp0,chassis=1,slot=1
 *   -device dw-pcie-ep-link,chardev=link0,port=rp0
 *
 * dw-pcie-ep-link is a device without a bus: it has no registers of its
 * own, only the link and the slot it plugs the function into.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/timer.h"
#include "hw/qdev-properties-system.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_bridge.h"
#include "hw/pci/pcie.h"
#include "hw/qdev-core.h"
#include "hw/qdev-properties.h"
#include "system/dma.h"
#include "hw/pci-ep/dw-pcie-ep-host.h"
#include "hw/pci-ep/pcie-ep-fastpath.h"
#include "hw/resettable.h"
#include "system/address-spaces.h"
#include "system/runstate.h"
#include "migration/vmstate.h"
#include "trace.h"

#define PLUG_RETRY_MS   500

/*
 * The function: configuration space and BARs forwarded to the endpoint
 */

/*
 * Configuration space: a copy of the endpoint's (see CFG_IMAGE in
 * docs/link-protocol.md), so that no config access waits on the link.
 * QEMU keeps the Command register and the BARs itself, as it maps them;
 * our writes go to the endpoint too.
 */
static bool host_owned(unsigned off)
{
    return range_covers_byte(PCI_COMMAND, 2, off) ||
           range_covers_byte(PCI_BASE_ADDRESS_0, 6 * 4, off) ||
           range_covers_byte(PCI_ROM_ADDRESS, 4, off);
}

/*
 * Bytes [off, off + n) of the port's copy into the function's config
 * space, but for a dword we wrote that the endpoint has not yet seen
 * (its image has seen @seen of our writes).  With @all, everything: our
 * own writes are gone (a reset).  The masks are the peer's, so they are
 * made safe for QEMU's config writes: no bit both writable and W1C.
 */
/*
 * QEMU's PCI core walks the extended capability list (ARI at realize)
 * with asserts and no bound: cut the peer's list where a next pointer
 * does not go forward, inside the copy, to a dword.
 */
static void function_cut_ext_caps(PCIDevice *pdev)
{
    unsigned pos = PCI_CONFIG_SPACE_SIZE;

    for (int n = 0; n < 64; n++) {
        uint32_t hdr = pci_get_long(pdev->config + pos);
        unsigned next = PCI_EXT_CAP_NEXT(hdr);

        if (!next) {
            return;
        }
        if (next <= pos || next % 4 ||
            next > PCIE_EP_LINK_IMAGE_SIZE - 4 || n == 63) {
            pci_set_long(pdev->config + pos, hdr & 0xfffff);
            return;
        }
        pos = next;
    }
}

static void function_apply_image(DWPCIeEPFunction *fn, unsigned off,
                                 unsigned n, uint16_t seen, bool all)
{
    PCIDevice *pdev = PCI_DEVICE(fn);
    DWPCIeEPImage *img = &fn->port->image;

    for (unsigned i = off; i < off + n; i++) {
        unsigned dw = i / 4;

        if (host_owned(i)) {
            continue;
        }
        pdev->wmask[i] = img->wmask[i];
        pdev->w1cmask[i] = img->w1cmask[i] & ~img->wmask[i];
        if (fn->pending[dw] && !all &&
            (int16_t)(seen - fn->written[dw]) < 0) {
            continue;
        }
        pdev->config[i] = img->config[i];
        if (i % 4 == 3 || i == off + n - 1) {
            fn->pending[dw] = false;
        }
    }
    function_cut_ext_caps(pdev);
}

/* Where the copy has capability @id; 0 (anywhere) if it has none */
static uint8_t image_find_cap(const DWPCIeEPImage *img, uint8_t id)
{
    uint8_t pos = img->config[PCI_CAPABILITY_LIST] & ~3;

    for (int n = 0; pos >= PCI_STD_HEADER_SIZEOF && n < 48; n++) {
        if (img->config[pos] == id) {
            /* Where QEMU can put its own (a lying peer's may not fit) */
            return pos <= PCI_CONFIG_SPACE_SIZE - PCI_EXP_VER2_SIZEOF ? pos : 0;
        }
        pos = img->config[pos + 1] & ~3;
    }
    return 0;
}

static uint32_t function_config_read(PCIDevice *pdev, uint32_t addr, int len)
{
    DWPCIeEPFunction *fn = DW_PCIE_EP_FUNCTION(pdev);

    /* After link down, as after a surprise removal */
    if (fn->down) {
        return extract32(~0u, 0, len * 8);
    }
    return pci_default_read_config(pdev, addr, len);
}

/*
 * The endpoint holds the configuration space; QEMU's copy is kept too, so
 * that it maps the BARs and enables bus mastering as the host asks.
 *
 * Fast path: a write to a BAR or to the Command register can change what
 * a BAR reaches at the endpoint, so what we mapped of the endpoint's RAM
 * goes first (the endpoint then needs no revocation from us); a change
 * of Bus Master Enable takes back what the endpoint mapped of our RAM
 * before the write completes.
 */
static void function_config_write(PCIDevice *pdev, uint32_t addr,
                                  uint32_t val, int len)
{
    DWPCIeEPFunction *fn = DW_PCIE_EP_FUNCTION(pdev);
    PCIeEPLink *link = &fn->port->link;
    uint32_t le = cpu_to_le32(val);
    bool master = pci_get_word(pdev->config + PCI_COMMAND) &
                  PCI_COMMAND_MASTER;

    if (ranges_overlap(addr, len, PCI_COMMAND, 1) ||
        ranges_overlap(addr, len, PCI_BASE_ADDRESS_0,
                       PCI_CARDBUS_CIS - PCI_BASE_ADDRESS_0)) {
        pcie_ep_fastpath_drop_imports(link);
    }
    pci_default_write_config(pdev, addr, val, len);
    if (master != !!(pci_get_word(pdev->config + PCI_COMMAND) &
                     PCI_COMMAND_MASTER)) {
        pcie_ep_fastpath_revoke(link, true);
    }
    if (!fn->down &&
        pcie_ep_link_write(link, PCIE_EP_LINK_CFG_WR, addr, &le, len)) {
        /*
         * Our copy holds these dwords until an image that has seen this
         * write comes back (the EP sends one for every CFG_WR).
         */
        fn->port->cfg_writes++;
        for (uint32_t i = addr / 4; i <= (addr + len - 1) / 4 &&
             i < ARRAY_SIZE(fn->written); i++) {
            fn->written[i] = fn->port->cfg_writes;
            fn->pending[i] = true;
        }
    }
}

static uint64_t bar_access_addr(DWPCIeEPFunctionBar *bar, hwaddr offset)
{
    return pci_get_bar_addr(PCI_DEVICE(bar->fn), bar->index) + offset;
}

/*
 * Fast path: after an access by message, map what the endpoint has of
 * the BAR in RAM straight under it (once, until a translation changes).
 */
static void function_bar_fill(DWPCIeEPFunctionBar *bar, uint64_t pci_base,
                              unsigned gen)
{
    uint64_t size = memory_region_size(&bar->mr);

    if (size >= PCIE_EP_LINK_PAGE_SIZE && !bar->fn->down) {
        pcie_ep_fast_window_fill(&bar->fast, 0, pci_base, size, gen);
    }
}

static uint64_t function_bar_read(void *opaque, hwaddr offset, unsigned size)
{
    DWPCIeEPFunctionBar *bar = opaque;
    PCIeEPLink *link = &bar->fn->port->link;
    unsigned gen = pcie_ep_fastpath_generation(link);
    uint64_t base = bar_access_addr(bar, 0);
    uint64_t val = ~0ull;

    if (!bar->fn->down) {
        pcie_ep_link_read(link, PCIE_EP_LINK_MEM_RD, base + offset, &val,
                          size);
        function_bar_fill(bar, base, gen);
    }
    return le64_to_cpu(val) & MAKE_64BIT_MASK(0, size * 8);
}

static void function_bar_write(void *opaque, hwaddr offset, uint64_t val,
                               unsigned size)
{
    DWPCIeEPFunctionBar *bar = opaque;
    PCIeEPLink *link = &bar->fn->port->link;
    unsigned gen = pcie_ep_fastpath_generation(link);
    uint64_t base = bar_access_addr(bar, 0);
    uint64_t le = cpu_to_le64(val);

    if (!bar->fn->down) {
        pcie_ep_link_write(link, PCIE_EP_LINK_MEM_WR, base + offset, &le,
                           size);
        function_bar_fill(bar, base, gen);
    }
}

static const MemoryRegionOps function_bar_ops = {
    .read = function_bar_read,
    .write = function_bar_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

/* The BARs the endpoint's DBI2 masks describe, sized as the host sees. */
static void function_register_bars(DWPCIeEPFunction *fn)
{
    PCIDevice *pdev = PCI_DEVICE(fn);
    uint32_t masks[PCIE_EP_LINK_NUM_BARS], types[PCIE_EP_LINK_NUM_BARS];

    for (int i = 0; i < PCIE_EP_LINK_NUM_BARS; i++) {
        masks[i] = le32_to_cpu(fn->bars.bar_mask[i]);
        types[i] = le32_to_cpu(fn->bars.bar_flags[i]);
    }
    for (int i = 0; i < PCIE_EP_LINK_NUM_BARS; i++) {
        uint32_t flags = types[i];
        uint64_t size_mask;
        bool io, is64;
        g_autofree char *name = NULL;

        if (!pcie_ep_bar_decode(masks, types, i, &size_mask, &io, &is64)) {
            continue;
        }
        flags &= io ? PCI_BASE_ADDRESS_SPACE_IO :
                 PCI_BASE_ADDRESS_MEM_PREFETCH |
                 (is64 ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0);
        /* The EP's guest writes the mask: it need not be a size - 1. */
        if (size_mask == UINT64_MAX || !is_power_of_2(size_mask + 1) ||
            (!is64 && size_mask > UINT32_MAX / 2)) {
            qemu_log_mask(LOG_GUEST_ERROR, "%s: the endpoint's BAR%d mask 0x%"
                          PRIx64 " is not a size the host can map; BAR%d "
                          "left out\n", TYPE_DW_PCIE_EP_FUNCTION, i,
                          size_mask, i);
            i += is64;
            continue;
        }
        name = g_strdup_printf("dw-pcie-ep-function.bar%d", i);
        fn->bar[i] = (DWPCIeEPFunctionBar) { .fn = fn, .index = i };
        /* Messages below, the endpoint's RAM (fast path) above */
        memory_region_init(&fn->bar[i].mr, OBJECT(fn), name, size_mask + 1);
        memory_region_init_io(&fn->bar[i].io, OBJECT(fn), &function_bar_ops,
                              &fn->bar[i], name, size_mask + 1);
        /*
         * A read waits for the endpoint with the BQL dropped, and QEMU's
         * per-device guard would fail every other vCPU's BAR access
         * meanwhile.  A BAR access cannot recurse into this device: the
         * link refuses requests from the thread that serves the peer.
         */
        fn->bar[i].io.disable_reentrancy_guard = true;
        memory_region_add_subregion_overlap(&fn->bar[i].mr, 0,
                                            &fn->bar[i].io, 0);
        pcie_ep_fast_window_init(&fn->bar[i].fast, &fn->port->link,
                                 &fn->bar[i].mr, name);
        pci_register_bar(pdev, i, flags, &fn->bar[i].mr);
        if (is64) {
            i++;
        }
    }
}

static void function_realize(PCIDevice *pdev, Error **errp)
{
    DWPCIeEPFunction *fn = DW_PCIE_EP_FUNCTION(pdev);

    if (!fn->port) {
        error_setg(errp, "%s is created by %s at link-up, not by hand",
                   TYPE_DW_PCIE_EP_FUNCTION, TYPE_DW_PCIE_EP_LINK);
        return;
    }
    /* The endpoint's PCIe capability, where its copy has it */
    if (pcie_endpoint_cap_init(pdev, image_find_cap(&fn->port->image,
                                                    PCI_CAP_ID_EXP)) < 0) {
        error_setg(errp, "could not add the PCIe capability");
        return;
    }
    function_register_bars(fn);
    /* Nothing above the copy is there: the EP ignores it too. */
    memset(pdev->wmask + PCIE_EP_LINK_IMAGE_SIZE, 0,
           PCIE_CONFIG_SPACE_SIZE - PCIE_EP_LINK_IMAGE_SIZE);
    memset(pdev->w1cmask + PCIE_EP_LINK_IMAGE_SIZE, 0,
           PCIE_CONFIG_SPACE_SIZE - PCIE_EP_LINK_IMAGE_SIZE);
    function_apply_image(fn, 0, PCIE_EP_LINK_IMAGE_SIZE, 0, true);
}

static void function_exit(PCIDevice *pdev)
{
    DWPCIeEPFunction *fn = DW_PCIE_EP_FUNCTION(pdev);

    for (int i = 0; i < PCIE_EP_LINK_NUM_BARS; i++) {
        pcie_ep_fast_window_destroy(&fn->bar[i].fast);
    }
    if (fn->port) {
        pcie_ep_fastpath_revoke(&fn->port->link, false);
    }
    /*
     * The capability list is the peer's copy: give pcie_cap_exit(), which
     * walks it, one with nothing but the PCIe capability QEMU added.
     */
    pdev->config[PCI_CAPABILITY_LIST] = pdev->exp.exp_cap;
    pdev->config[pdev->exp.exp_cap + PCI_CAP_LIST_NEXT] = 0;
    pcie_cap_exit(pdev);

    if (fn->port && fn->port->function == fn) {
        fn->port->function = NULL;
        /* The slot is free: plug again if the link came back meanwhile. */
        timer_mod(fn->port->sync_timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME));
    }
}

/* A reset clears Bus Master Enable: what the endpoint mapped goes. */
static ResettablePhases function_parent_phases;

static void function_reset_hold(Object *obj, ResetType type)
{
    DWPCIeEPFunction *fn = DW_PCIE_EP_FUNCTION(obj);

    if (function_parent_phases.hold) {
        function_parent_phases.hold(obj, type);
    }
    if (fn->port) {
        pcie_ep_fastpath_drop_imports(&fn->port->link);
    }
}

/*
 * Whether this reset of the function takes the link through Hot Reset:
 * a secondary bus reset or a reset of the host does.  QEMU also resets
 * a function when its slot's power goes off or on (pci_set_enabled());
 * that is no hot reset, as a slot powered on trains a new link.
 */
static bool function_reset_retrains(DWPCIeEPFunction *fn)
{
    bool powered = PCI_DEVICE(fn)->enabled, was = fn->powered;

    fn->powered = powered;
    return powered && was;
}

/*
 * Messages to the endpoint go in the exit phase.  The reset of a function
 * the host has had (a secondary bus reset, a host reset) is a hot reset
 * for the endpoint; the one at hot-plug, before realize ends, is not.
 */
static void function_reset_exit(Object *obj, ResetType type)
{
    DWPCIeEPFunction *fn = DW_PCIE_EP_FUNCTION(obj);
    bool retrain;

    if (function_parent_phases.exit) {
        function_parent_phases.exit(obj, type);
    }
    if (!fn->port) {
        return;
    }
    /* QEMU's reset cleared fields of the copy: the EP's values again */
    memset(fn->pending, 0, sizeof(fn->pending));
    function_apply_image(fn, 0, PCIE_EP_LINK_IMAGE_SIZE, 0, true);
    pcie_ep_fastpath_revoke(&fn->port->link, false);
    retrain = function_reset_retrains(fn);
    if (DEVICE(fn)->realized && !fn->down) {
        pcie_ep_link_send_event(&fn->port->link, PCIE_EP_LINK_HOT_RESET,
                                retrain ? PCIE_EP_LINK_HOT_RESET_RETRAIN : 0,
                                NULL, 0);
    }
}

/*
 * Between resets the slot's power is what its last reset left: QEMU
 * resets a realized function whenever that power changes.
 */
static int function_post_load(void *opaque, int version_id)
{
    DWPCIeEPFunction *fn = opaque;

    fn->powered = PCI_DEVICE(fn)->enabled;
    return 0;
}

/* For completeness: the link's migration blocker keeps the VM here. */
static const VMStateDescription vmstate_function = {
    .name = TYPE_DW_PCIE_EP_FUNCTION,
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = function_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, DWPCIeEPFunction),
        VMSTATE_BOOL(down, DWPCIeEPFunction),
        VMSTATE_BUFFER_UNSAFE(bars, DWPCIeEPFunction, 0,
                              sizeof(PCIeEPLinkUp)),
        VMSTATE_END_OF_LIST()
    },
};

static void function_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);

    resettable_class_set_parent_phases(rc, NULL, function_reset_hold,
                                       function_reset_exit,
                                       &function_parent_phases);
    k->realize = function_realize;
    k->exit = function_exit;
    k->config_read = function_config_read;
    k->config_write = function_config_write;
    dc->desc = "The endpoint's function, as seen over a dw-pcie-ep link";
    dc->vmsd = &vmstate_function;
    dc->user_creatable = false;
    dc->hotpluggable = true;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

/*
 * The link port: plugs and unplugs the function
 */

static PCIBus *port_secondary_bus(DWPCIeEPLinkPort *lp, Error **errp)
{
    Object *port = object_resolve_path_component(
        machine_get_container("peripheral"), lp->port);

    if (!port || !object_dynamic_cast(port, TYPE_PCI_BRIDGE)) {
        error_setg(errp, "%s: port '%s' is not a PCIe port device",
                   TYPE_DW_PCIE_EP_LINK, lp->port);
        return NULL;
    }
    return pci_bridge_get_sec_bus(PCI_BRIDGE(port));
}

static void port_plug_function(DWPCIeEPLinkPort *lp)
{
    Error *err = NULL;
    PCIBus *bus;
    DeviceState *dev;

    bus = port_secondary_bus(lp, &err);
    if (!bus) {
        error_report_err(err);
        return;
    }
    dev = qdev_new(TYPE_DW_PCIE_EP_FUNCTION);
    DW_PCIE_EP_FUNCTION(dev)->port = lp;
    DW_PCIE_EP_FUNCTION(dev)->bars = lp->up;
    qdev_prop_set_int32(dev, "addr", PCI_DEVFN(0, 0));
    lp->function = DW_PCIE_EP_FUNCTION(dev);
    if (!qdev_realize_and_unref(dev, BUS(bus), &err)) {
        lp->function = NULL;
        error_reportf_err(err, "%s: could not plug the endpoint's function "
                          "(trying again): ", TYPE_DW_PCIE_EP_LINK);
        timer_mod(lp->sync_timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                  PLUG_RETRY_MS);
        return;
    }
    /*
     * The slot's power as the plug left it: realize ran before QEMU powered
     * the function on, and the slot's power control came after its reset.
     */
    lp->function->powered = PCI_DEVICE(dev)->enabled;
    info_report("%s: endpoint function plugged into %s", TYPE_DW_PCIE_EP_LINK,
                lp->port);
    /*
     * A new function, as after a reset: so for the EP too (a re-plug).
     * The link stays in L0: nothing reset the host's port.
     */
    pcie_ep_link_send_event(&lp->link, PCIE_EP_LINK_HOT_RESET, 0, NULL, 0);
}

/*
 * Whether QEMU will keep the function after its unplug request: a PCIe
 * slot of its own port removes it only once the slot's power controller
 * is written off (pcie_cap_slot_write_config()), and Linux's pciehp
 * writes none in a slot that has no power controller.
 */
static bool port_slot_keeps_function(DWPCIeEPLinkPort *lp)
{
    DeviceState *dev = DEVICE(lp->function);
    PCIDevice *port = pci_bridge_get_device(pci_get_bus(PCI_DEVICE(dev)));
    uint32_t sltcap;

    if (OBJECT(qdev_get_hotplug_handler(dev)) != OBJECT(port) ||
        !pci_is_express(port) || !port->exp.exp_cap) {
        return false;
    }
    sltcap = pci_get_long(port->config + port->exp.exp_cap + PCI_EXP_SLTCAP);
    return (sltcap & PCI_EXP_SLTCAP_HPC) && !(sltcap & PCI_EXP_SLTCAP_PCP);
}

/*
 * Link down: the guest is asked to remove the function, which has already
 * stopped answering (all ones), as after a surprise removal.
 */
static void port_unplug_function(DWPCIeEPLinkPort *lp)
{
    Error *err = NULL;
    bool kept;

    if (lp->unplug_requested) {
        return;
    }
    /* Before the request: a slot that is off removes the function at once */
    kept = port_slot_keeps_function(lp);
    lp->unplug_requested = true;
    qdev_unplug(DEVICE(lp->function), &err);
    if (err) {
        /* e.g. the guest is still powering the slot on: try again */
        error_reportf_err(err, "%s: could not unplug the endpoint's "
                          "function (trying again): ", TYPE_DW_PCIE_EP_LINK);
        lp->unplug_requested = false;
        timer_mod(lp->sync_timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                  PLUG_RETRY_MS);
    } else if (kept) {
        warn_report("%s: %s has no power controller: QEMU keeps the "
                    "endpoint's old function there (reading all ones) "
                    "until its guest writes the power controller off, "
                    "which Linux does not, and the link's next function "
                    "cannot be plugged meanwhile",
                    TYPE_DW_PCIE_EP_LINK, lp->port);
    }
}

/* Make the slot follow the link, from the main loop. */
static void port_sync(void *opaque)
{
    DWPCIeEPLinkPort *lp = opaque;

    /* An incoming migration is loading the slot's devices: not now. */
    if (runstate_check(RUN_STATE_INMIGRATE)) {
        timer_mod(lp->sync_timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                  PLUG_RETRY_MS);
        return;
    }
    if (lp->function && (!lp->link_up || lp->function->down)) {
        port_unplug_function(lp);
        if (lp->link_up) {
            /* An old function is still going away: try again later. */
            timer_mod(lp->sync_timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                      PLUG_RETRY_MS);
        }
        return;
    }
    if (lp->link_up && !lp->function) {
        lp->unplug_requested = false;
        port_plug_function(lp);
    }
}

static void port_set_link(DWPCIeEPLinkPort *lp, bool up)
{
    if (!up) {
        pcie_ep_fastpath_drop_imports(&lp->link);
    }
    lp->link_up = up;
    if (lp->function && !up) {
        lp->function->down = true;
    }
    timer_mod(lp->sync_timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME));
}

static void port_link_event(void *opaque, PCIeEPLinkMsgType event,
                            uint64_t addr, const void *payload, unsigned len)
{
    DWPCIeEPLinkPort *lp = opaque;

    switch (event) {
    case PCIE_EP_LINK_UP:
        memcpy(&lp->up, payload, sizeof(lp->up));
        info_report("%s: endpoint link up", TYPE_DW_PCIE_EP_LINK);
        if (lp->function) {
            lp->function->down = true;  /* a new link: a new function */
        }
        port_set_link(lp, true);
        break;
    case PCIE_EP_LINK_DOWN:
        info_report("%s: endpoint link down", TYPE_DW_PCIE_EP_LINK);
        port_set_link(lp, false);
        break;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "%s: unexpected link event %u\n",
                      TYPE_DW_PCIE_EP_LINK, event);
        break;
    }
}

/* CFG_IMAGE: the endpoint's config space changed, or a full copy */
static void port_cfg_image(void *opaque, uint16_t seen, uint32_t offset,
                           const uint8_t *payload, unsigned len)
{
    DWPCIeEPLinkPort *lp = opaque;
    unsigned n = len / 3;

    memcpy(lp->image.config + offset, payload, n);
    memcpy(lp->image.wmask + offset, payload + n, n);
    memcpy(lp->image.w1cmask + offset, payload + 2 * n, n);
    lp->image_seen = seen;
    if (lp->function && !lp->function->down) {
        function_apply_image(lp->function, offset, n, seen, false);
    }
}

static void port_connected(void *opaque, bool connected)
{
    DWPCIeEPLinkPort *lp = opaque;

    if (connected) {
        /* A new connection: a new copy comes, and writes count from 0 */
        memset(&lp->image, 0, sizeof(lp->image));
        lp->cfg_writes = lp->image_seen = 0;
    }

    if (!connected && lp->link_up) {
        port_set_link(lp, false);
    }
}

/*
 * MAP_RD: what the endpoint's requests to [addr, addr + size) reach on
 * the function's bus-master address space.  Behind a vIOMMU, bus
 * addresses are IOVAs whose mappings we do not follow: messages only.
 */
static void port_map_read(void *opaque, uint64_t addr, uint64_t size,
                          PCIeEPExtents *ext)
{
    DWPCIeEPLinkPort *lp = opaque;
    PCIDevice *pdev = lp->function ? PCI_DEVICE(lp->function) : NULL;
    AddressSpace *as;
    uint64_t off = 0;

    if (!pdev || lp->function->down || !(pci_get_word(pdev->config +
        PCI_COMMAND) & PCI_COMMAND_MASTER) ||
        pci_device_iommu_address_space(pdev) != &address_space_memory) {
        return;
    }
    as = pci_get_address_space(pdev);
    size = MIN(size, PCIE_EP_FASTPATH_MAP_RD_MAX_SIZE);
    for (int steps = 0;
         off < size && steps < PCIE_EP_FASTPATH_MAP_RD_MAX_STEPS; steps++) {
        if (addr + off < addr) {
            break;
        }
        off += pcie_ep_fastpath_add_extent(&lp->link, as, addr + off,
                                           size - off, off, ext);
    }
}

/* The endpoint's memory requests run on the function's bus-master AS. */
static MemTxResult port_mem_access(DWPCIeEPLinkPort *lp, uint64_t addr,
                                   void *buf, unsigned len,
                                   DMADirection dir)
{
    PCIDevice *pdev = lp->function ? PCI_DEVICE(lp->function) : NULL;
    MemTxAttrs attrs;

    if (!pdev || lp->function->down) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: endpoint request at 0x%" PRIx64
                      " with no function plugged\n", TYPE_DW_PCIE_EP_LINK,
                      addr);
        return MEMTX_DECODE_ERROR;
    }
    attrs = (MemTxAttrs) { .requester_id = pci_requester_id(pdev) };
    if (!pcie_ep_link_may_reach(pci_get_address_space(pdev), addr, len,
                                dir == DMA_DIRECTION_FROM_DEVICE, attrs)) {
        qemu_log_mask(LOG_GUEST_ERROR, "%s: endpoint %s of %u bytes at 0x%"
                      PRIx64 " reaches neither RAM nor an MSI doorbell: "
                      "unsupported request\n", TYPE_DW_PCIE_EP_LINK,
                      dir == DMA_DIRECTION_FROM_DEVICE ? "write" : "read",
                      len, addr);
        return MEMTX_DECODE_ERROR;
    }
    return pci_dma_rw(pdev, addr, buf, len, dir, attrs);
}

static MemTxResult port_mem_read(void *opaque, uint64_t addr, void *buf,
                                 unsigned len)
{
    return port_mem_access(opaque, addr, buf, len, DMA_DIRECTION_TO_DEVICE);
}

static MemTxResult port_mem_write(void *opaque, uint64_t addr,
                                  const void *buf, unsigned len)
{
    return port_mem_access(opaque, addr, (void *)buf, len,
                           DMA_DIRECTION_FROM_DEVICE);
}

static const PCIeEPLinkOps port_link_ops = {
    .mem_read = port_mem_read,
    .mem_write = port_mem_write,
    .link_event = port_link_event,
    .cfg_image = port_cfg_image,
    .connected = port_connected,
    .map_read = port_map_read,
};

static void port_realize(DeviceState *dev, Error **errp)
{
    DWPCIeEPLinkPort *lp = DW_PCIE_EP_LINK(dev);

    if (!qemu_chr_fe_backend_connected(&lp->link.chr) || !lp->port) {
        error_setg(errp, "%s needs chardev= and port=", TYPE_DW_PCIE_EP_LINK);
        return;
    }
    if (!pcie_ep_link_check_properties(&lp->link, errp)) {
        return;
    }
    /* The port must exist already (create it first on the command line) */
    if (!port_secondary_bus(lp, errp)) {
        return;
    }
    lp->sync_timer = timer_new_ms(QEMU_CLOCK_REALTIME, port_sync, lp);
    lp->link.shared_as = &address_space_memory;
    if (!pcie_ep_link_init(&lp->link, TYPE_DW_PCIE_EP_LINK,
                           PCIE_EP_LINK_ROLE_HOST, &port_link_ops, lp, errp)) {
        g_clear_pointer(&lp->sync_timer, timer_free);
    }
}

static void port_unrealize(DeviceState *dev)
{
    DWPCIeEPLinkPort *lp = DW_PCIE_EP_LINK(dev);

    pcie_ep_link_cleanup(&lp->link);
    if (lp->sync_timer) {
        timer_free(lp->sync_timer);
        lp->sync_timer = NULL;
    }
}

static const Property port_properties[] = {
    DEFINE_PROP_CHR("chardev", DWPCIeEPLinkPort, link.chr),
    DEFINE_PROP_STRING("port", DWPCIeEPLinkPort, port),
    DEFINE_PROP_UINT32("link-timeout-ms", DWPCIeEPLinkPort, link.timeout_ms,
                       PCIE_EP_LINK_DEFAULT_TIMEOUT_MS),
    DEFINE_PROP_BOOL("fast-path", DWPCIeEPLinkPort, link.fast_path, true),
};

/* The name the host end had first, for command lines that use it */
static void port_instance_init(Object *obj)
{
    object_property_add_alias(obj, "timeout-ms", obj, "link-timeout-ms");
}

static void port_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);

    dc->desc = "Host side of a link to a dw-pcie-ep endpoint controller";
    /* Its IOThread serves the chardev until QEMU exits. */
    dc->hotpluggable = false;
    dc->realize = port_realize;
    dc->unrealize = port_unrealize;
    device_class_set_props(dc, port_properties);
    set_bit(DEVICE_CATEGORY_BRIDGE, dc->categories);
}

static const TypeInfo dw_pcie_ep_host_types[] = {
    {
        .name = TYPE_DW_PCIE_EP_FUNCTION,
        .parent = TYPE_PCI_DEVICE,
        .instance_size = sizeof(DWPCIeEPFunction),
        .class_init = function_class_init,
        .interfaces = (const InterfaceInfo[]) {
            { INTERFACE_PCIE_DEVICE },
            { }
        },
    },
    {
        .name = TYPE_DW_PCIE_EP_LINK,
        .parent = TYPE_DEVICE,
        .instance_size = sizeof(DWPCIeEPLinkPort),
        .instance_init = port_instance_init,
        .class_init = port_class_init,
    },
};

DEFINE_TYPES(dw_pcie_ep_host_types)
