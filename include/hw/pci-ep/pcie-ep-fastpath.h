/*
 * The link's shared-memory fast path
 *
 * A cache of translations, not a second model.  Each end of a link
 * offers the peer the file descriptors of its RAM (SHM).  When a
 * translation that this end owns ends in that RAM (the EP: BAR decode,
 * inbound iATU, its DMA address space; the host: the function's
 * bus-master address space), the peer may ask for it (MAP_RD) and map
 * the RAM straight into its own memory map, so its CPUs reach it with no
 * message.  Every change to such a translation revokes what the peer
 * mapped (REVOKE) before the change completes.
 *
 * Exporter side: pcie_ep_fastpath_add_extent() builds a MAP_RD answer,
 * pcie_ep_fastpath_revoke() takes back everything the peer holds.
 * Importer side: a PCIeEPFastWindow is a container region whose parts
 * may be overlaid with the peer's RAM; it is filled after a message-path
 * access and emptied by a REVOKE or by pcie_ep_fastpath_drop_imports().
 *
 * Everything here runs with the BQL held.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCI_EP_PCIE_EP_FASTPATH_H
#define HW_PCI_EP_PCIE_EP_FASTPATH_H

#include "qemu/queue.h"
#include "hw/pci-ep/pcie-ep-link.h"

struct PCIeEPExtents {
    PCIeEPLinkExtent e[PCIE_EP_LINK_MAX_EXTENTS];
    unsigned n;
};

/* Where the peer's RAM may be mapped: a container region of ours */
typedef struct PCIeEPFastWindow {
    PCIeEPLink *link;
    MemoryRegion *container;
    char *name;
    GPtrArray *maps;        /* PCIeEPPeerRam objects overlaid on @container */
    unsigned gen;           /* the import generation it was filled in */
    bool filled;
    bool filling;
    QLIST_ENTRY(PCIeEPFastWindow) next;
} PCIeEPFastWindow;

/* Figures, for the benchmarks and the tests (info qtree does not show) */
typedef struct PCIeEPFastPathStats {
    uint64_t maps_installed;
    uint64_t map_requests;
    uint64_t revokes_sent;
    uint64_t revokes_served;
} PCIeEPFastPathStats;

/* Bounds the work one MAP_RD from the peer can cause */
#define PCIE_EP_FASTPATH_MAP_RD_MAX_SIZE    (1ULL << 32)
#define PCIE_EP_FASTPATH_MAP_RD_MAX_STEPS   4096

/*
 * Exporter: add to @ext the RAM that [addr, addr + size) of @as reaches,
 * at @offset in the answer.  Returns how many bytes from @addr it looked
 * at (at least one byte, at most @size), so a caller walks a range.
 */
uint64_t pcie_ep_fastpath_add_extent(PCIeEPLink *link, AddressSpace *as,
                                     hwaddr addr, uint64_t size,
                                     uint64_t offset, PCIeEPExtents *ext);
/*
 * Exporter: a translation the peer may have cached changed.  With @wait,
 * returns once the peer has dropped its mappings and none of its CPUs
 * can reach them any more (the BQL is dropped meanwhile); without, the
 * REVOKE is only sent.  Nothing is sent if the peer holds nothing and
 * no REVOKE is outstanding.  A peer that does not confirm within the
 * link's timeout loses the link.
 */
void pcie_ep_fastpath_revoke(PCIeEPLink *link, bool wait);
/*
 * Without waiting, and even if the peer maps nothing (it may have cached
 * an answer that mapped less): the REVOKE's number, for
 * pcie_ep_link_revoke_done(); 0 with the link down, -1 if it could not
 * be sent.
 */
int64_t pcie_ep_fastpath_revoke_nowait(PCIeEPLink *link);

/* Importer */
void pcie_ep_fast_window_init(PCIeEPFastWindow *w, PCIeEPLink *link,
                              MemoryRegion *container, const char *name);
void pcie_ep_fast_window_destroy(PCIeEPFastWindow *w);
/*
 * The import generation: it changes whenever our mappings are dropped.
 * Read it before translating an access whose window is then filled.
 */
unsigned pcie_ep_fastpath_generation(PCIeEPLink *link);
/*
 * After a message-path access translated in generation @gen: ask the
 * peer once per generation what [pci_addr, pci_addr + size) reaches,
 * and map the RAM parts at @offset of the container.  Waits for the
 * answer with the BQL dropped; nothing is mapped if a drop came since.
 * True if it asked and the answer came (a round trip behind everything
 * sent before it).
 */
bool pcie_ep_fast_window_fill(PCIeEPFastWindow *w, hwaddr offset,
                              uint64_t pci_addr, uint64_t size, unsigned gen);
/* Whether a fill would ask: cheap, for the access path to check first */
bool pcie_ep_fast_window_wants_fill(PCIeEPFastWindow *w, unsigned gen);
/* Our own translation changed: unmap everything, in every window */
void pcie_ep_fastpath_drop_imports(PCIeEPLink *link);

PCIeEPFastPathStats pcie_ep_fastpath_stats(PCIeEPLink *link);

/* For pcie-ep-link.c */
void pcie_ep_fastpath_init(PCIeEPLink *link);
void pcie_ep_fastpath_cleanup(PCIeEPLink *link);
void pcie_ep_fastpath_connected(PCIeEPLink *link);
void pcie_ep_fastpath_disconnected(PCIeEPLink *link);
bool pcie_ep_fastpath_import_shm(PCIeEPLink *link, const PCIeEPLinkShm *shm,
                                 int fd);
void pcie_ep_fastpath_serve_map_rd(PCIeEPLink *link, uint16_t tag,
                                   uint64_t addr, uint64_t size);
void pcie_ep_fastpath_serve_revoke(PCIeEPLink *link, uint16_t tag);

#endif
