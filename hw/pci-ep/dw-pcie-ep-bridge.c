/*
 * DesignWare PCIe endpoint: the AXI bridge in front of the outbound iATU
 *
 * The EP's CPU writes to the window are posted: they wait in the bridge
 * (dw-pcie-ep-posted.c) and go on when they drain.  The databook says
 * that updating the iATU while traffic is in flight is not supported;
 * here is what the model does instead (property iatu-hazard):
 *  - every iATU region register written while something is in flight is
 *    a hazard, counted by what was in flight;
 *  - ignore: nothing more; log: a guest error line (at most one a
 *    second) and a trace event;
 *  - under both, a posted write goes out with the translation it was
 *    issued under;
 *  - corrupt: the bridge translates a write that was in flight at a
 *    hazard as it drains, with the iATU as it is then.  A write no
 *    enabled region covers by then goes out untranslated at its CPU
 *    address on the controller's master side:
 *    behind the EP's SMMU that is an IOVA, and faults there unless it is
 *    mapped; with no IOMMU it is dropped, with a guest error line.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qemu/log.h"
#include "qemu/timer.h"
#include "system/memory.h"
#include "dw-pcie-ep-internal.h"
#include "trace.h"

static const QEnumLookup hazard_policy_lookup = {
    .array = (const char *const[]) {
        [DW_IATU_HAZARD_IGNORE] = "ignore",
        [DW_IATU_HAZARD_LOG] = "log",
        [DW_IATU_HAZARD_CORRUPT] = "corrupt",
    },
    .size = DW_IATU_HAZARD__COUNT,
};

static const char *const in_flight_name[DW_IN_FLIGHT__COUNT] = {
    [DW_IN_FLIGHT_POSTED] = "posted",
    [DW_IN_FLIGHT_EDMA] = "edma",
    [DW_IN_FLIGHT_INBOUND] = "inbound",
};

/* True if a line may be logged now; *suppressed: how many were not */
static bool log_limit_allow(DWLogLimit *l, uint64_t *suppressed)
{
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

    if (now < l->next_ms) {
        l->suppressed++;
        return false;
    }
    *suppressed = l->suppressed;
    l->suppressed = 0;
    l->next_ms = now + 1000;
    return true;
}

static void in_flight(DWPCIeEPState *s, unsigned n[DW_IN_FLIGHT__COUNT])
{
    n[DW_IN_FLIGHT_POSTED] = dw_posted_in_flight(&s->posted);
    n[DW_IN_FLIGHT_EDMA] = dw_edma_running_channels(&s->edma);
    n[DW_IN_FLIGHT_INBOUND] = s->inbound_in_service;
}

void dw_pcie_ep_iatu_hazard_check(DWPCIeEPState *s, DWiATUDir dir,
                                  unsigned index, hwaddr reg)
{
    unsigned n[DW_IN_FLIGHT__COUNT];
    uint64_t suppressed;
    bool any = false;

    /*
     * Virtual time decides what has drained, not whether the timer has
     * run yet; nothing drains here, where a send must not wait.
     */
    in_flight(s, n);
    for (int i = 0; i < DW_IN_FLIGHT__COUNT; i++) {
        if (n[i]) {
            s->iatu_hazards_with[i]++;
            any = true;
        }
    }
    if (!any) {
        return;
    }
    /* Marked for corrupt as it is now: a later switch changes nothing */
    if (s->iatu_hazard == DW_IATU_HAZARD_CORRUPT) {
        dw_posted_mark_in_flight(&s->posted);
    }
    s->iatu_hazards++;
    trace_dw_pcie_ep_iatu_hazard(dir == DW_IATU_INBOUND ? "inbound" :
                                 "outbound", index, reg,
                                 n[DW_IN_FLIGHT_POSTED], n[DW_IN_FLIGHT_EDMA],
                                 n[DW_IN_FLIGHT_INBOUND]);
    if (s->iatu_hazard == DW_IATU_HAZARD_IGNORE ||
        !log_limit_allow(&s->hazard_log, &suppressed)) {
        return;
    }
    qemu_log_mask(LOG_GUEST_ERROR, "%s: %s iATU region %u register 0x%"
                  HWADDR_PRIx " written with traffic in flight (%u posted "
                  "writes, %u eDMA channels, %u inbound requests): not "
                  "supported by the controller; %" PRIu64 " hazards so "
                  "far, %" PRIu64 " not logged since the last line\n",
                  TYPE_DW_PCIE_EP,
                  dir == DW_IATU_INBOUND ? "inbound" : "outbound", index,
                  reg, n[DW_IN_FLIGHT_POSTED], n[DW_IN_FLIGHT_EDMA],
                  n[DW_IN_FLIGHT_INBOUND], s->iatu_hazards, suppressed);
}

/* corrupt: the translation as the write leaves the bridge */
static bool translate_late(DWPCIeEPState *s, const DWPostedWrite *w,
                           uint64_t *pci_addr)
{
    DWiATUTranslation t;

    if (!dw_iatu_translate_outbound(&s->iatu, w->cpu_addr, &t) ||
        t.remaining < w->size) {
        return false;
    }
    *pci_addr = t.addr;
    return true;
}

static void send_untranslated(DWPCIeEPState *s, const DWPostedWrite *w,
                              const uint8_t *buf)
{
    MemTxResult res = MEMTX_DECODE_ERROR;
    uint64_t suppressed;

    s->posted_untranslated++;
    trace_dw_pcie_ep_posted_untranslated(w->cpu_addr, w->size, !!s->iommu);
    /*
     * Only RAM, as for an inbound TLP: not the window again, nor our own
     * or another device's registers.  The SMMU's translation for the
     * check records the fault, if there is one.
     */
    if (s->iommu &&
        pcie_ep_link_reach(s->dma, w->cpu_addr, w->size, true,
                           dw_pcie_ep_master_attrs(s), NULL) ==
        PCIE_EP_REACH_RAM) {
        res = address_space_write(s->dma, w->cpu_addr,
                                  dw_pcie_ep_master_attrs(s), buf, w->size);
    }
    if (!log_limit_allow(&s->untranslated_log, &suppressed)) {
        return;
    }
    qemu_log_mask(LOG_GUEST_ERROR, "%s: a posted write of %u bytes to 0x%"
                  PRIx64 " drained after outbound region %u was torn down "
                  "(iatu-hazard=corrupt): %s; %" PRIu64 " not logged since "
                  "the last line\n", TYPE_DW_PCIE_EP, w->size, w->cpu_addr,
                  w->region, !s->iommu ? "dropped, there is no IOMMU" :
                  res == MEMTX_OK ? "sent untranslated through the SMMU" :
                  "sent untranslated: the SMMU refused it, or it reached no "
                  "RAM", suppressed);
}

static void posted_drain(void *opaque, const DWPostedWrite *w,
                         DWPostedDrainCause cause)
{
    DWPCIeEPState *s = opaque;
    uint64_t pci_addr = w->pci_addr;
    uint8_t buf[8];

    stn_le_p(buf, w->size, w->data);
    if (s->iatu_hazard == DW_IATU_HAZARD_CORRUPT && w->hazard &&
        !translate_late(s, w, &pci_addr)) {
        send_untranslated(s, w, buf);
        return;
    }
    dw_pcie_ep_window_send(s, pci_addr, buf, w->size);
}

void dw_pcie_ep_bridge_init(DWPCIeEPState *s)
{
    dw_posted_init(&s->posted, posted_drain, s,
                   s->iatu.num_regions[DW_IATU_OUTBOUND]);
}

void dw_pcie_ep_bridge_cleanup(DWPCIeEPState *s)
{
    dw_posted_cleanup(&s->posted);
}

void dw_pcie_ep_bridge_reset(DWPCIeEPState *s)
{
    dw_posted_discard(&s->posted);
}

/* Properties and counters (qom-get) */

static int get_hazard_policy(Object *obj, Error **errp)
{
    return DW_PCIE_EP(obj)->iatu_hazard;
}

static void set_hazard_policy(Object *obj, int value, Error **errp)
{
    DW_PCIE_EP(obj)->iatu_hazard = value;
}

static void get_edma_running(Object *obj, Visitor *v, const char *name,
                             void *opaque, Error **errp)
{
    uint32_t n = dw_edma_running_channels(&DW_PCIE_EP(obj)->edma);

    visit_type_uint32(v, name, &n, errp);
}

static void get_posted_pending(Object *obj, Visitor *v, const char *name,
                               void *opaque, Error **errp)
{
    uint32_t n = dw_posted_pending(&DW_PCIE_EP(obj)->posted);

    visit_type_uint32(v, name, &n, errp);
}

static void get_inbound_in_service(Object *obj, Visitor *v,
                                   const char *name, void *opaque,
                                   Error **errp)
{
    uint32_t n = DW_PCIE_EP(obj)->inbound_in_service;

    visit_type_uint32(v, name, &n, errp);
}

void dw_pcie_ep_bridge_class_init(ObjectClass *oc)
{
    object_class_property_add_enum(oc, "iatu-hazard",
                                        "DWiATUHazardPolicy",
                                        &hazard_policy_lookup,
                                        get_hazard_policy,
                                        set_hazard_policy);
    object_class_property_set_description(oc, "iatu-hazard",
        "an iATU update with traffic in flight: ignore, log (default), or "
        "corrupt (posted writes translate as they drain); may be changed "
        "at run time");
    object_class_property_add(oc, "x-edma-running", "uint32",
                              get_edma_running, NULL, NULL, NULL);
    object_class_property_add(oc, "x-posted-pending", "uint32",
                              get_posted_pending, NULL, NULL, NULL);
    object_class_property_add(oc, "x-inbound-in-service", "uint32",
                              get_inbound_in_service, NULL, NULL, NULL);
}

void dw_pcie_ep_bridge_instance_init(Object *obj)
{
    DWPCIeEPState *s = DW_PCIE_EP(obj);
    static const char *const drain_prop[DW_POSTED_DRAIN__COUNT] = {
        [DW_POSTED_DRAIN_LATENCY] = "x-posted-drains-latency",
        [DW_POSTED_DRAIN_READ] = "x-posted-drains-read",
        [DW_POSTED_DRAIN_FULL] = "x-posted-drains-full",
    };

    s->iatu_hazard = DW_IATU_HAZARD_LOG;
    object_property_add_uint64_ptr(obj, "x-iatu-hazards", &s->iatu_hazards,
                                   OBJ_PROP_FLAG_READ);
    for (int i = 0; i < DW_IN_FLIGHT__COUNT; i++) {
        g_autofree char *name = g_strdup_printf("x-iatu-hazards-%s",
                                                in_flight_name[i]);

        object_property_add_uint64_ptr(obj, name, &s->iatu_hazards_with[i],
                                       OBJ_PROP_FLAG_READ);
    }
    for (int i = 0; i < DW_POSTED_DRAIN__COUNT; i++) {
        object_property_add_uint64_ptr(obj, drain_prop[i],
                                       &s->posted.drains[i],
                                       OBJ_PROP_FLAG_READ);
    }
    object_property_add_uint64_ptr(obj, "x-posted-writes", &s->posted.writes,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "x-posted-discarded",
                                   &s->posted.discarded, OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "x-window-msg-writes",
                                   &s->window_msg_writes, OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "x-edma-aborts", &s->edma.aborts,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "x-hot-resets", &s->hot_resets,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "x-window-round-trips",
                                   &s->window_round_trips,
                                   OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(obj, "x-posted-untranslated",
                                   &s->posted_untranslated,
                                   OBJ_PROP_FLAG_READ);
}
