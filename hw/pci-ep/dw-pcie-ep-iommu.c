/*
 * DesignWare PCIe endpoint controller: its bus-master side behind an SMMU
 *
 * With an "iommu" link, everything the controller masters on the SoC
 * (inbound TLPs after the iATU, the eDMA's local side and its linked
 * lists) goes through the SMMU with the controller's StreamID, as on
 * SoCs whose PCIe controller sits behind an SMMU or IPMMU.  A fault is
 * the SMMU's to report; what the transaction then does is the caller's
 * (an inbound write is dropped, a read completes as an Unsupported
 * Request, an eDMA channel aborts).
 *
 * The fast path may map, in the host, RAM that an inbound IOVA
 * translates to.  It learns such a translation by a lookup, which is no
 * transaction and records no fault, and exports it only where the SMMU
 * grants both reads and writes (the host maps what it gets for both):
 * a read-only or unmapped IOVA stays on the message path and faults
 * when the host really writes it.
 *
 * The host's mappings are to the SMMU what a PCIe function's ATC is:
 * translations kept outside it.  Every invalidation the SMMU tells its
 * notifiers about (TLBI, a configuration change, SMMUEN) that may touch
 * an exported IOVA sends the host a REVOKE and holds the SMMU's next
 * CMD_SYNC (and CR0ACK) until the host has confirmed it, as an ATC
 * invalidation holds it on hardware: once Linux sees its invalidation
 * complete, the host maps nothing stale.  Nothing waits in the notifier,
 * which runs in the SMMU's command queue with its lock held.  A host
 * that does not confirm within the link's timeout loses the link.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/range.h"
#include "hw/arm/smmu-common.h"
#include "dw-pcie-ep-internal.h"
#include "hw/pci-ep/pcie-ep-fastpath.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "trace.h"

/* The smallest translation granule an SMMU has */
#define DW_PCIE_EP_IOMMU_MIN_PAGE   0x1000

static IOMMUMemoryRegion *dma_iommu(DWPCIeEPState *s)
{
    return s->iommu ? memory_region_get_iommu(s->dma->root) : NULL;
}

static void iommu_hold_release(DWPCIeEPState *s)
{
    if (!s->iommu_holding) {
        return;
    }
    s->iommu_holding = false;
    timer_del(s->iommu_hold_timer);
    trace_dw_pcie_ep_iommu_sync_release();
    smmu_release_sync(s->iommu);
    if (s->iommu_refused) {
        /* The host keeps what MAP_RD refused meanwhile: it asks again */
        s->iommu_refused = false;
        pcie_ep_fastpath_revoke_nowait(&s->link);
    }
}

/*
 * The revoke is settled: the host confirmed it, or the connection it
 * went on has ended (the host maps nothing of a link that is down).
 * Then the SMMU completes the CMD_SYNC it holds.
 */
void dw_pcie_ep_iommu_hold_check(DWPCIeEPState *s)
{
    PCIeEPLink *link = &s->link;

    if (s->iommu_holding &&
        ((s->iommu_hold_seq && pcie_ep_link_revoke_done(link,
                                                        s->iommu_hold_seq)) ||
         !pcie_ep_link_is_up(link) ||
         pcie_ep_link_connection(link) != s->iommu_hold_conn)) {
        iommu_hold_release(s);
    }
}

static void iommu_revokes_done(void *opaque)
{
    dw_pcie_ep_iommu_hold_check(opaque);
}

/* No confirmation in time: the link goes down, and then the hold ends. */
static void iommu_hold_timeout(void *opaque)
{
    DWPCIeEPState *s = opaque;

    dw_pcie_ep_iommu_hold_check(s);
    if (s->iommu_holding) {
        s->iommu_hold_timeouts++;
        pcie_ep_link_fail(&s->link, "the link partner did not confirm in "
                          "time that it unmapped memory the SMMU no longer "
                          "maps");
        timer_mod(s->iommu_hold_timer,
                  qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 10);
    }
}

/* Until REVOKE @seq is confirmed (0: until the link is down) */
static void iommu_hold(DWPCIeEPState *s, uint32_t seq)
{
    if (!s->iommu_holding) {
        s->iommu_holding = true;
        s->iommu_hold_conn = pcie_ep_link_connection(&s->link);
        trace_dw_pcie_ep_iommu_sync_hold(seq);
        smmu_hold_sync(s->iommu);
        timer_mod(s->iommu_hold_timer,
                  qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                  MIN(s->link.timeout_ms, s->iommu_hold_max_ms));
    }
    s->iommu_hold_seq = seq;
    if (!seq && pcie_ep_link_is_up(&s->link)) {
        pcie_ep_link_fail(&s->link, "a REVOKE could not be sent: the link "
                          "partner may still map memory the SMMU no longer "
                          "maps");
    }
    /* It may have been confirmed already, from the IOThread. */
    dw_pcie_ep_iommu_hold_check(s);
}

/*
 * An invalidation: the host drops what it maps of ours, if any of it
 * may come from the invalidated IOVAs.  The exported range covers whole
 * pages and blocks, so a TLBI for any address in one of them (the SMMU
 * notifies a leaf TLBI as one page, even for a block) overlaps it.
 */
static void iommu_unmap_notify(IOMMUNotifier *n, IOMMUTLBEntry *iotlb)
{
    DWPCIeEPState *s = container_of(n, DWPCIeEPState, iommu_notifier);
    Range inval = { .lob = iotlb->iova,
                    .upb = iotlb->iova + iotlb->addr_mask };
    int64_t seq;

    if (range_is_empty(&s->iommu_exported) ||
        !range_overlaps_range(&s->iommu_exported, &inval)) {
        return;
    }
    trace_dw_pcie_ep_iommu_revoke(inval.lob, inval.upb);
    range_make_empty(&s->iommu_exported);
    s->iommu_revokes++;
    seq = pcie_ep_fastpath_revoke_nowait(&s->link);
    if (seq) {
        iommu_hold(s, MAX(seq, 0));
    }
}

bool dw_pcie_ep_iommu_realize(DWPCIeEPState *s, Error **errp)
{
    IOMMUMemoryRegion *iommu;

    if (!s->iommu) {
        if (s->stream_id != DW_PCIE_EP_STREAM_ID_REQUESTER) {
            error_setg(errp, "%s: 'stream-id' needs 'iommu'", TYPE_DW_PCIE_EP);
            return false;
        }
        return true;
    }
    if (!s->iommu_hold_max_ms) {
        error_setg(errp, "%s: 'x-iommu-hold-max-ms' must be at least 1",
                   TYPE_DW_PCIE_EP);
        return false;
    }
    if (s->dma_mr) {
        error_setg(errp, "%s: 'memory' and 'iommu' exclude each other: the "
                   "SMMU's output is the system's memory", TYPE_DW_PCIE_EP);
        return false;
    }
    s->sid = s->stream_id == DW_PCIE_EP_STREAM_ID_REQUESTER ?
             s->requester_id : s->stream_id;
    s->dma = smmu_platform_address_space(s->iommu, s->sid, errp);
    if (!s->dma) {
        return false;
    }
    iommu = dma_iommu(s);
    range_make_empty(&s->iommu_exported);
    iommu_notifier_init(&s->iommu_notifier, iommu_unmap_notify,
                        IOMMU_NOTIFIER_UNMAP, 0, HWADDR_MAX,
                        memory_region_iommu_attrs_to_index(iommu,
                            dw_pcie_ep_master_attrs(s)));
    if (memory_region_register_iommu_notifier(MEMORY_REGION(iommu),
                                              &s->iommu_notifier, errp)) {
        s->dma = NULL;
        return false;
    }
    s->iommu_hold_timer = timer_new_ms(QEMU_CLOCK_REALTIME,
                                       iommu_hold_timeout, s);
    s->link.revokes_done_bh = qemu_bh_new(iommu_revokes_done, s);
    return true;
}

void dw_pcie_ep_iommu_unrealize(DWPCIeEPState *s)
{
    IOMMUMemoryRegion *iommu = dma_iommu(s);

    if (iommu && s->dma) {
        iommu_hold_release(s);
        memory_region_unregister_iommu_notifier(MEMORY_REGION(iommu),
                                                &s->iommu_notifier);
        g_clear_pointer(&s->iommu_hold_timer, timer_free);
        g_clear_pointer(&s->link.revokes_done_bh, qemu_bh_delete);
    }
}

/*
 * MAP_RD behind the SMMU: the page that @iova is in, looked up with
 * IOMMU_NONE (no transaction: no fault recorded), and what it maps to
 * exported if the SMMU grants reads and writes.  Returns the bytes
 * dealt with, at least 1.
 */
uint64_t dw_pcie_ep_iommu_add_extent(DWPCIeEPState *s, hwaddr iova,
                                     uint64_t size, uint64_t offset,
                                     PCIeEPExtents *ext)
{
    IOMMUMemoryRegion *iommu = dma_iommu(s);
    IOMMUMemoryRegionClass *imrc = memory_region_get_iommu_class_nocheck(iommu);
    IOMMUTLBEntry e;
    uint64_t in_page;

    e = imrc->translate(iommu, iova, IOMMU_NONE,
                        s->iommu_notifier.iommu_idx);
    if (e.perm == IOMMU_NONE) {
        /* Unmapped: its mask may span everything; the next page may map */
        e.addr_mask = DW_PCIE_EP_IOMMU_MIN_PAGE - 1;
    }
    in_page = MIN((e.addr_mask & ~iova) + 1, size);
    if (!in_page) {
        in_page = size;         /* a mapping that covers all of it */
    }
    /* Nothing is exported while the host has yet to confirm a revoke */
    s->iommu_refused |= s->iommu_holding;
    if (s->iommu_holding || (e.perm & IOMMU_RW) != IOMMU_RW ||
        e.target_as != &address_space_memory) {
        return MAX(in_page, 1);
    }
    /* What the host may map from now on, in whole pages or blocks */
    range_extend(&s->iommu_exported,
                 &(Range) { .lob = iova & ~e.addr_mask,
                            .upb = iova | e.addr_mask });
    return pcie_ep_fastpath_add_extent(&s->link, e.target_as,
                                       (e.translated_addr & ~e.addr_mask) |
                                       (iova & e.addr_mask),
                                       in_page, offset, ext);
}
