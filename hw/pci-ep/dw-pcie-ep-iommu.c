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
 * when the host really writes it.  Every invalidation the SMMU tells
 * its notifiers about (TLBI, a configuration change, SMMUEN) that
 * touches an exported IOVA revokes the host's mappings before the
 * invalidating command completes.
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
#include "trace.h"

static IOMMUMemoryRegion *dma_iommu(DWPCIeEPState *s)
{
    return s->iommu ? memory_region_get_iommu(s->dma->root) : NULL;
}

/*
 * An invalidation: the host drops what it maps of ours, if any of it
 * may come from the invalidated IOVAs.  The SMMU invalidates its own
 * TLB right after its notifiers return, with the BQL still held: until
 * then, MAP_RDs (served under the BQL, while we wait here without it)
 * export nothing through the SMMU.
 */
static void iommu_unmap_notify(IOMMUNotifier *n, IOMMUTLBEntry *iotlb)
{
    DWPCIeEPState *s = container_of(n, DWPCIeEPState, iommu_notifier);
    Range inval = { .lob = iotlb->iova,
                    .upb = iotlb->iova + iotlb->addr_mask };

    if (range_is_empty(&s->iommu_exported) ||
        !range_overlaps_range(&s->iommu_exported, &inval)) {
        return;
    }
    trace_dw_pcie_ep_iommu_revoke(inval.lob, inval.upb);
    range_make_empty(&s->iommu_exported);
    s->iommu_notifying++;
    s->iommu_revokes++;
    dw_pcie_ep_inbound_changed(s, true);
    s->iommu_notifying--;
}

bool dw_pcie_ep_iommu_realize(DWPCIeEPState *s, Error **errp)
{
    IOMMUMemoryRegion *iommu;
    uint32_t sid = s->stream_id;

    if (!s->iommu) {
        return true;
    }
    if (s->dma_mr) {
        error_setg(errp, "%s: 'memory' and 'iommu' exclude each other: the "
                   "SMMU's output is the system's memory", TYPE_DW_PCIE_EP);
        return false;
    }
    s->dma = smmu_platform_address_space(s->iommu, sid, errp);
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
    return true;
}

void dw_pcie_ep_iommu_unrealize(DWPCIeEPState *s)
{
    IOMMUMemoryRegion *iommu = dma_iommu(s);

    if (iommu && s->dma) {
        memory_region_unregister_iommu_notifier(MEMORY_REGION(iommu),
                                                &s->iommu_notifier);
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
    in_page = MIN((e.addr_mask & ~iova) + 1, size);
    if (!in_page) {
        in_page = size;         /* a mapping that covers all of it */
    }
    if (s->iommu_notifying || (e.perm & IOMMU_RW) != IOMMU_RW ||
        e.target_as != &address_space_memory) {
        return MAX(in_page, 1);
    }
    /* What the host may map from now on: a superset is good enough. */
    range_extend(&s->iommu_exported,
                 &(Range) { .lob = iova, .upb = iova + in_page - 1 });
    return pcie_ep_fastpath_add_extent(&s->link, e.target_as,
                                       (e.translated_addr & ~e.addr_mask) |
                                       (iova & e.addr_mask),
                                       in_page, offset, ext);
}
