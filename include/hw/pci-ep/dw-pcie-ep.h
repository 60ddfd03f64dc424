/*
 * Synopsys DesignWare PCIe controller in endpoint mode
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCI_EP_DW_PCIE_EP_H
#define HW_PCI_EP_DW_PCIE_EP_H

#include "hw/sysbus.h"
#include "qom/object.h"
#include "qemu/range.h"
#include "system/memory.h"
#include "hw/pci-ep/dw-pcie-ep-iatu.h"
#include "hw/pci-ep/dw-edma.h"
#include "hw/pci-ep/dw-pcie-ep-regs.h"
#include "hw/pci-ep/pcie-ep-link.h"
#include "hw/pci-ep/dw-pcie-ep-posted.h"

#define TYPE_DW_PCIE_EP "dw-pcie-ep"
OBJECT_DECLARE_TYPE(DWPCIeEPState, DWPCIeEPClass, DW_PCIE_EP)

/* Sysbus MMIO indexes, in the order of the device tree's reg-names. */
enum {
    DW_PCIE_EP_MMIO_DBI,
    DW_PCIE_EP_MMIO_DBI2,
    DW_PCIE_EP_MMIO_ATU,
    DW_PCIE_EP_MMIO_ADDR_SPACE,
    DW_PCIE_EP_MMIO_ELBI,
    DW_PCIE_EP_MMIO_DMA,        /* the unrolled eDMA (not with edma-legacy) */
    DW_PCIE_EP_MMIO_COUNT,
};

#define DW_PCIE_EP_DBI_SIZE         0x1000
#define DW_PCIE_EP_DBI2_SIZE        0x1000
#define DW_PCIE_EP_ELBI_SIZE        0x1000

/*
 * What an iATU region register written while traffic is in flight does
 * (property iatu-hazard): the databook says only that it is not
 * supported.
 */
typedef enum DWiATUHazardPolicy {
    DW_IATU_HAZARD_IGNORE,      /* counted, nothing said */
    DW_IATU_HAZARD_LOG,         /* counted and logged; traffic unharmed */
    DW_IATU_HAZARD_CORRUPT,     /* posted writes translate when they drain */
    DW_IATU_HAZARD__COUNT,
} DWiATUHazardPolicy;

/* What was in flight at a hazard (x-iatu-hazards-*) */
typedef enum DWInFlight {
    DW_IN_FLIGHT_POSTED,        /* posted writes not yet drained */
    DW_IN_FLIGHT_EDMA,          /* eDMA channels running */
    DW_IN_FLIGHT_INBOUND,       /* inbound requests being served */
    DW_IN_FLIGHT__COUNT,
} DWInFlight;

/*
 * How a BAR's size is set, as the controller was built: by its DBI2
 * mask, fixed (the mask's size bits are read-only), or by the Resizable
 * BAR capability (the mask follows the selected size).
 */
typedef enum DWPCIeEPBarKind {
    DW_PCIE_EP_BAR_PROGRAMMABLE,
    DW_PCIE_EP_BAR_FIXED,
    DW_PCIE_EP_BAR_RESIZABLE,
} DWPCIeEPBarKind;

/* A register block of a SoC's glue; the MemoryRegionOps' opaque is us */
typedef struct DWPCIeEPGlueRegion {
    const char *name;                   /* its reg-name */
    const MemoryRegionOps *ops;
    hwaddr size;
} DWPCIeEPGlueRegion;

#define DW_PCIE_EP_MAX_EXTRA_REGIONS    2

/*
 * What a SoC's glue adds to the DesignWare core (the generic controller
 * has the ELBI registers and programmable BARs): its compatible strings,
 * its register block at DW_PCIE_EP_MMIO_ELBI, more blocks after the
 * core's (sysbus MMIO DW_PCIE_EP_MMIO_COUNT on), the reset of their
 * registers, and the BARs the SoC's controller was built with.
 */
struct DWPCIeEPClass {
    SysBusDeviceClass parent_class;

    const char *const *compatible;      /* most specific first, NULL */
    DWPCIeEPGlueRegion glue;
    const DWPCIeEPGlueRegion *extra_regions;    /* up to a NULL name */
    void (*glue_reset)(DWPCIeEPState *s);
    DWPCIeEPBarKind bar_kind[DW_PCIE_EP_NUM_BARS];
    uint64_t bar_fixed_size[DW_PCIE_EP_NUM_BARS];
};

/* At most one guest error line per second for a repeated event */
typedef struct DWLogLimit {
    int64_t next_ms;
    uint64_t suppressed;
} DWLogLimit;

/* The state of the link, as the LTSSM would report it */
typedef enum DWPCIeEPLinkState {
    DW_PCIE_EP_LINK_DOWN,
    DW_PCIE_EP_LINK_LOOPBACK,   /* PIPE loopback: TLPs come back in */
    DW_PCIE_EP_LINK_UP,
} DWPCIeEPLinkState;

struct DWPCIeEPState {
    SysBusDevice parent_obj;

    MemoryRegion dbi;
    MemoryRegion dbi2;
    MemoryRegion atu;
    MemoryRegion addr_space;    /* container: window_io, host RAM above */
    MemoryRegion window_io;
    MemoryListener window_listener; /* where the CPUs see the window */
    hwaddr window_base;
    MemoryRegion elbi;          /* the glue's registers: ELBI, or a SoC's */
    MemoryRegion extra_mmio[DW_PCIE_EP_MAX_EXTRA_REGIONS];
    /*
     * Where inbound TLPs land: the EP's DMA address space, dma_as on
     * "memory" (the system's by default), or the SMMU's for stream-id.
     */
    AddressSpace *dma;
    AddressSpace dma_as;
    MemoryRegion *dma_mr;
    struct SMMUState *iommu;
    uint32_t stream_id;         /* the property */
    uint32_t sid;               /* the StreamID used */
    IOMMUNotifier iommu_notifier;
    Range iommu_exported;       /* IOVAs the host may map through MAP_RD */
    uint64_t iommu_revokes;     /* revokes the SMMU's invalidations caused */
    /* The SMMU's CMD_SYNC waits until the host confirms a revoke */
    bool iommu_holding;
    bool iommu_refused;         /* a MAP_RD got less meanwhile */
    uint32_t iommu_hold_seq;    /* this REVOKE; 0: until the link is down */
    unsigned iommu_hold_conn;   /* on this connection */
    QEMUTimer *iommu_hold_timer;    /* the host never confirms */
    uint32_t iommu_hold_max_ms;     /* property: then the link goes */
    uint64_t iommu_hold_timeouts;

    /*
     * DBI: the function's configuration space and port logic, with the
     * bits writable from both sides (wmask), write-one-to-clear bits
     * (w1cmask) and the bits only the local CPU may write, and only while
     * MISC_CONTROL_1.DBI_RO_WR_EN is set (romask).  BAR registers are
     * kept apart, below.
     */
    uint8_t config[DW_PCIE_EP_DBI_SIZE];
    uint8_t wmask[DW_PCIE_EP_DBI_SIZE];
    uint8_t w1cmask[DW_PCIE_EP_DBI_SIZE];
    uint8_t romask[DW_PCIE_EP_DBI_SIZE];
    /* The host-visible part as at reset: what non-sticky bits go back to */
    uint8_t config_reset[PCIE_EP_LINK_IMAGE_SIZE];

    /* BARs: the DBI2 masks, and the BAR registers' address bits and flags */
    uint32_t bar_mask[DW_PCIE_EP_NUM_BARS];
    uint32_t bar_addr[DW_PCIE_EP_NUM_BARS];
    uint32_t bar_flags[DW_PCIE_EP_NUM_BARS];
    uint32_t rom_mask;

    DWiATU iatu;
    uint32_t atu_viewport;

    /* The eDMA, and its remote side's view of host RAM (fast path) */
    DWEDMA edma;
    MemoryRegion edma_remote;
    AddressSpace edma_remote_as;
    struct PCIeEPFastWindow *edma_fast;

    /* The link to the host, and the glue's LTSSM enable (ELBI) */
    PCIeEPLink link;
    /* Fast path: host RAM mapped into the window, per outbound region */
    struct PCIeEPFastWindow *ob_fast;
    bool ltssm_enable;
    DWPCIeEPLinkState link_state;
    DWPCIeEPLinkState link_sent;    /* what the host was told last */
    unsigned link_sent_conn;        /* on this connection of the link */
    PCIeEPLinkUp up_sent;           /* the BARs it was told of at UP */
    /* The host's copy of our config space, masks (CFG_IMAGE) */
    uint8_t image_sent[3][PCIE_EP_LINK_IMAGE_SIZE];
    uint16_t host_cfg_writes;       /* its CFG_WRs seen, this connection */
    QEMUBH *link_notify_bh;

    /*
     * The AXI bridge: the window's posted writes, and what an iATU
     * update does to traffic in flight (dw-pcie-ep-bridge.c)
     */
    DWPostedBuffer posted;
    uint32_t iatu_hazard;           /* DWiATUHazardPolicy */
    unsigned inbound_in_service;
    uint64_t iatu_hazards;
    uint64_t iatu_hazards_with[DW_IN_FLIGHT__COUNT];
    uint64_t posted_untranslated;   /* corrupt: sent at the CPU address */
    uint64_t window_msg_writes;     /* window writes by message (or lost) */
    uint64_t window_fenced;         /* of those, done by the host for sure */
    /* The round trip that lifts the fence: its number, 0 if none */
    uint32_t window_rt_seq;
    unsigned window_rt_conn;        /* the connection it went on */
    uint64_t window_rt_after;       /* window_msg_writes when it went */
    int64_t window_rt_sent_ms;      /* QEMU_CLOCK_REALTIME, when it went */
    uint64_t window_round_trips;    /* sent so far */
    uint64_t hot_resets;            /* from the host, so far */
    bool in_hot_reset;              /* the LTSSM shows Hot Reset */
    QEMUTimer *hot_reset_timer;     /* ... until it has trained again */
    DWLogLimit hazard_log;
    DWLogLimit untranslated_log;

    /* Properties */
    uint16_t vendor_id;
    uint16_t device_id;
    char *ip_version;
    bool atu_viewport_mode;
    uint64_t addr_space_size;
    uint8_t max_link_speed;
    uint8_t num_lanes;
    bool ltssm_enable_at_reset;
    uint16_t requester_id;
    bool its_doorbell;
};

/*
 * requester-id by default: above every RID the EP VM's own PCIe root
 * complex can give its functions on buses 0 to 0xf, as virt's msi-map
 * and iommu-map make RIDs DeviceIDs and StreamIDs.
 */
#define DW_PCIE_EP_DEFAULT_REQUESTER_ID 0x1000
/* stream-id by default: the requester-id */
#define DW_PCIE_EP_STREAM_ID_REQUESTER  UINT32_MAX
/*
 * Linux polls a CMD_SYNC or CR0ACK for 1 s: a hold of the SMMU's ends
 * well before that, with the link if need be.
 */
#define DW_PCIE_EP_IOMMU_HOLD_MAX_MS    500

/*
 * posted-write-latency-ns by default: a TCG vCPU runs tens of times
 * slower than the SoC's cores, and 100 us of virtual time is what a few
 * microseconds of a loaded AXI bridge are to a guest at that speed.
 */
#define DW_PCIE_EP_POSTED_LATENCY_NS    100000
/* posted-write-depth by default: writes the bridge holds */
#define DW_PCIE_EP_POSTED_DEPTH         16

extern const VMStateDescription vmstate_dw_pcie_ep;

/* For a SoC's glue: the LTSSM enable it controls, and the link's state */
void dw_pcie_ep_set_ltssm_enable(DWPCIeEPState *s, bool enable);
bool dw_pcie_ep_link_is_up(DWPCIeEPState *s);

/* The function's configuration space as the host sees it (the link). */
uint32_t dw_pcie_ep_host_config_read(DWPCIeEPState *s, hwaddr addr,
                                     unsigned size);
void dw_pcie_ep_host_config_write(DWPCIeEPState *s, hwaddr addr,
                                  uint32_t val, unsigned size);

/*
 * An inbound memory TLP from the link: BAR decode, inbound iATU, then
 * the EP's DMA address space.  A TLP that hits no BAR or no region is an
 * Unsupported Request: reads return all ones, writes are dropped.
 */
MemTxResult dw_pcie_ep_inbound(DWPCIeEPState *s, uint64_t pci_addr,
                               void *buf, unsigned len, bool is_write);

DWPCIeEPLinkState dw_pcie_ep_link_state(DWPCIeEPState *s);

/*
 * The controller's own accesses as a bus master on the SoC (inbound TLPs
 * after the iATU, the eDMA's local side): they carry its requester-id,
 * which the GIC ITS takes as the DeviceID.  Behind an SMMU they also
 * carry stream-id, by the address space they go through.
 */
static inline MemTxAttrs dw_pcie_ep_master_attrs(DWPCIeEPState *s)
{
    return (MemTxAttrs) { .requester_id = s->requester_id };
}

#endif
