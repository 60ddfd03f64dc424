/*
 * The link's shared-memory fast path
 *
 * See include/hw/pci-ep/pcie-ep-fastpath.h and docs/link-protocol.md.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/memfd.h"
#include "qemu/mmap-alloc.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "exec/cpu-common.h"
#include "hw/core/cpu.h"
#include "system/memory.h"
#include "system/ramblock.h"
#include "hw/pci-ep/pcie-ep-fastpath.h"
#include "trace.h"

#define PAGE_MASK_FP    ((uint64_t)PCIE_EP_LINK_PAGE_SIZE - 1)

/* One block of the peer's RAM: its fd, checked, not yet mapped */
typedef struct PeerBlock {
    int fd;
    uint64_t size;
} PeerBlock;

typedef struct PCIeEPFastPath {
    /*
     * Exports: our RAM blocks the peer was given, in SHM order, each
     * with a reference on its region, so that a block freed meanwhile
     * cannot come back at the same address under the same id.
     */
    RAMBlock *block[PCIE_EP_LINK_MAX_SHM];
    MemoryRegion *block_mr[PCIE_EP_LINK_MAX_SHM];
    unsigned nblocks;
    bool offered;           /* every block's SHM went out */
    bool exported;          /* the peer may hold translations of ours */
    unsigned revoke_waiters;    /* our vCPUs parked in a REVOKE wait */
    QemuMutex ack_lock;
    GSList *acks;               /* RevokeAcks awaiting an exclusive section */

    /* Imports: the peer's RAM blocks, and where we mapped them */
    PeerBlock shm[PCIE_EP_LINK_MAX_SHM];
    unsigned gen;
    bool broken;            /* the peer failed a MAP_RD: messages only */
    QLIST_HEAD(, PCIeEPFastWindow) windows;

    PCIeEPFastPathStats stats;
} PCIeEPFastPath;

/*
 * One mapping of the peer's RAM: the RAM region and the object that owns
 * it.  The region's users (flat views, an address_space_map() user, a
 * cache that keeps a flat view) hold references to its owner, so the
 * mapping, and the mmap() under it, lives until the last of them lets
 * go, long after we unmapped it.
 */
#define TYPE_PCIE_EP_PEER_RAM "pcie-ep-peer-ram"
OBJECT_DECLARE_SIMPLE_TYPE(PCIeEPPeerRam, PCIE_EP_PEER_RAM)

struct PCIeEPPeerRam {
    Object parent_obj;
    MemoryRegion mr;
};

static const TypeInfo pcie_ep_peer_ram_info = {
    .name = TYPE_PCIE_EP_PEER_RAM,
    .parent = TYPE_OBJECT,
    .instance_size = sizeof(PCIeEPPeerRam),
};

static void pcie_ep_fastpath_register_types(void)
{
    type_register_static(&pcie_ep_peer_ram_info);
}

type_init(pcie_ep_fastpath_register_types)

void pcie_ep_fastpath_init(PCIeEPLink *link)
{
    link->fp = g_new0(PCIeEPFastPath, 1);
    qemu_mutex_init(&link->fp->ack_lock);
    for (int i = 0; i < PCIE_EP_LINK_MAX_SHM; i++) {
        link->fp->shm[i].fd = -1;
    }
    QLIST_INIT(&link->fp->windows);
}

unsigned pcie_ep_fastpath_generation(PCIeEPLink *link)
{
    return link->fp ? link->fp->gen : 0;
}

PCIeEPFastPathStats pcie_ep_fastpath_stats(PCIeEPLink *link)
{
    PCIeEPFastPathStats none = { 0 };

    return link->fp ? link->fp->stats : none;
}

/*
 * Exports
 */

/*
 * The peer maps only a tmpfs memfd sealed against shrinking: a file that
 * can shrink under a mapping turns the next access into SIGBUS, and so
 * does a hole punched in hugetlbfs once its pool is empty (tmpfs fills a
 * hole with a fresh page).  memory-backend-memfd, whose seals are on by
 * default, without hugetlb=on.
 */
static bool fd_mappable(int fd)
{
    int seals = fcntl(fd, F_GET_SEALS);

    return seals >= 0 && (seals & F_SEAL_SHRINK) &&
           qemu_fd_getfs(fd) == QEMU_FS_TYPE_TMPFS;
}

static bool shareable(MemoryRegion *mr)
{
    return memory_region_is_ram(mr) && !memory_region_is_ram_device(mr) &&
           !mr->readonly && !memory_region_is_rom(mr) && mr->ram_block &&
           qemu_ram_is_shared(mr->ram_block) &&
           memory_region_get_fd(mr) >= 0 &&
           fd_mappable(memory_region_get_fd(mr));
}

static bool collect_block(Int128 start, Int128 len, const MemoryRegion *cmr,
                          hwaddr offset_in_region, void *opaque)
{
    PCIeEPFastPath *fp = opaque;
    MemoryRegion *mr = (MemoryRegion *)cmr;

    if (!shareable(mr)) {
        return false;
    }
    for (unsigned i = 0; i < fp->nblocks; i++) {
        if (fp->block[i] == mr->ram_block) {
            return false;
        }
    }
    if (fp->nblocks < PCIE_EP_LINK_MAX_SHM) {
        memory_region_ref(mr);
        fp->block_mr[fp->nblocks] = mr;
        fp->block[fp->nblocks++] = mr->ram_block;
    }
    return false;
}

static void forget_exports(PCIeEPFastPath *fp)
{
    for (unsigned i = 0; i < fp->nblocks; i++) {
        memory_region_unref(fp->block_mr[i]);
    }
    fp->nblocks = 0;
    fp->offered = false;
    fp->exported = false;
}

/* Offer the peer every RAM block with a file descriptor in @as. */
static void export_ram(PCIeEPLink *link)
{
    PCIeEPFastPath *fp = link->fp;
    unsigned sent = 0;

    forget_exports(fp);
    if (link->shared_as) {
        RCU_READ_LOCK_GUARD();
        flatview_for_each_range(address_space_to_flatview(link->shared_as),
                                collect_block, fp);
    }
    for (unsigned i = 0; i < fp->nblocks; i++) {
        RAMBlock *rb = fp->block[i];
        PCIeEPLinkShm shm = {
            .id = cpu_to_le32(i),
            .size = cpu_to_le64(qemu_ram_get_fd_offset(rb) +
                                qemu_ram_get_used_length(rb)),
        };
        int fd = qemu_ram_get_fd(rb);

        if (pcie_ep_link_send_fds(link, PCIE_EP_LINK_SHM, &shm, sizeof(shm),
                                  &fd, 1)) {
            sent++;
        }
    }
    fp->offered = sent && sent == fp->nblocks;
    if (fp->offered) {
        info_report("%s: fast path: %u RAM block(s) of this VM shared with "
                    "the link partner", link->name, sent);
    } else {
        info_report("%s: message path for the partner's accesses to this VM: "
                    "its RAM is not a shared, sealed memfd (use "
                    "memory-backend-memfd with share=on)", link->name);
    }
}

static int block_index(PCIeEPFastPath *fp, RAMBlock *rb)
{
    for (unsigned i = 0; fp->offered && i < fp->nblocks; i++) {
        if (fp->block[i] == rb) {
            return i;
        }
    }
    return -1;
}

static void append_extent(PCIeEPExtents *ext, uint64_t offset, uint64_t size,
                          unsigned id, uint64_t file_offset)
{
    PCIeEPLinkExtent *last = ext->n ? &ext->e[ext->n - 1] : NULL;

    if (last && le32_to_cpu(last->shm_id) == id &&
        le64_to_cpu(last->offset) + le64_to_cpu(last->size) == offset &&
        le64_to_cpu(last->shm_offset) + le64_to_cpu(last->size) ==
        file_offset) {
        last->size = cpu_to_le64(le64_to_cpu(last->size) + size);
        return;
    }
    if (ext->n == PCIE_EP_LINK_MAX_EXTENTS) {
        return;     /* the rest stays on the message path */
    }
    ext->e[ext->n++] = (PCIeEPLinkExtent) {
        .offset = cpu_to_le64(offset),
        .size = cpu_to_le64(size),
        .shm_offset = cpu_to_le64(file_offset),
        .shm_id = cpu_to_le32(id),
        .flags = cpu_to_le32(PCIE_EP_LINK_EXTENT_WRITE),
    };
}

typedef struct NextBoundary {
    hwaddr addr;
    Int128 next;
} NextBoundary;

static bool next_boundary(Int128 start, Int128 len, const MemoryRegion *mr,
                          hwaddr offset_in_region, void *opaque)
{
    NextBoundary *nb = opaque;
    Int128 addr = int128_make64(nb->addr), end = int128_add(start, len);

    if (int128_gt(start, addr)) {
        nb->next = int128_min(nb->next, start);
    } else if (int128_gt(end, addr)) {
        nb->next = int128_min(nb->next, end);
    }
    return false;
}

/*
 * How far from @addr the flat range that holds it goes (or, in a hole,
 * where the next one starts): address_space_translate() clamps the length
 * only for RAM, so a walk over MMIO needs this to find what comes next.
 */
static uint64_t range_left(AddressSpace *as, hwaddr addr, uint64_t size)
{
    NextBoundary nb = { .addr = addr, .next = int128_add(int128_make64(addr),
                                                         int128_make64(size)) };

    flatview_for_each_range(address_space_to_flatview(as), next_boundary, &nb);
    return int128_get64(int128_sub(nb.next, int128_make64(addr)));
}

uint64_t pcie_ep_fastpath_add_extent(PCIeEPLink *link, AddressSpace *as,
                                     hwaddr addr, uint64_t size,
                                     uint64_t offset, PCIeEPExtents *ext)
{
    PCIeEPFastPath *fp = link->fp;
    uint64_t page_left = PCIE_EP_LINK_PAGE_SIZE - (addr & PAGE_MASK_FP);
    hwaddr xlat, len = size;
    MemoryRegion *mr;
    int id;

    RCU_READ_LOCK_GUARD();
    mr = address_space_translate(as, addr, &xlat, &len, true,
                                 MEMTXATTRS_UNSPECIFIED);
    len = MAX(MIN(len, size), 1);
    id = shareable(mr) ? block_index(fp, mr->ram_block) : -1;
    if (id < 0) {
        /* Not RAM we shared: the message path, up to what comes next */
        return memory_region_is_ram(mr) ? len :
               MAX(MIN(range_left(as, addr, size), len), 1);
    }
    xlat += qemu_ram_get_fd_offset(mr->ram_block);
    /* Whole pages only, at the same offset within a page on both sides */
    if (((addr ^ offset) | (addr ^ xlat)) & PAGE_MASK_FP) {
        return len;
    }
    if (addr & PAGE_MASK_FP) {
        return MIN(page_left, len);
    }
    if (len < PCIE_EP_LINK_PAGE_SIZE) {
        return len;
    }
    len &= ~PAGE_MASK_FP;
    append_extent(ext, offset, len, id, xlat);
    fp->exported = true;
    return len;
}

void pcie_ep_fastpath_serve_map_rd(PCIeEPLink *link, uint16_t tag,
                                   uint64_t addr, uint64_t size)
{
    g_autofree PCIeEPExtents *ext = g_new0(PCIeEPExtents, 1);

    /*
     * Even an empty answer is a translation the peer may cache; an empty
     * range (pcie_ep_link_round_trip()) asks for none.
     */
    link->fp->exported |= size != 0;
    if (size && link->peer_shm && link->ops->map_read && link->fp->offered) {
        link->ops->map_read(link->opaque, addr, size, ext);
    }
    trace_pcie_ep_fastpath_map_rd(link->name, addr, size, ext->n);
    pcie_ep_link_complete(link, tag, MEMTX_OK, ext->e,
                          ext->n * sizeof(ext->e[0]));
}

static bool acks_at_once(PCIeEPLink *link);
static void send_waiting_acks(PCIeEPFastPath *fp);

/*
 * A REVOKE is owed while the peer may hold translations of ours, and
 * while any REVOKE sent before is unconfirmed (nobody waited for it, or
 * another caller still waits): its change is not confirmed either.  The
 * peer serves REVOKEs in order, so the completion of ours covers all of
 * them.  A peer that does not confirm loses the link: past that point
 * we cannot tell what it still maps.  Returns the REVOKE's number, 0 if
 * none was needed, -1 if it did not go out.
 */
static int64_t fastpath_revoke(PCIeEPLink *link, bool wait, bool always)
{
    PCIeEPFastPath *fp = link->fp;
    MemTxResult res;
    uint32_t seq;

    if (!fp || !pcie_ep_link_is_up(link) ||
        !(always || fp->exported || pcie_ep_link_revokes_pending(link))) {
        return 0;
    }
    fp->exported = false;
    fp->stats.revokes_sent++;
    wait = wait && !pcie_ep_link_in_iothread(link);
    trace_pcie_ep_fastpath_revoke(link->name, wait);
    fp->revoke_waiters += wait;
    if (acks_at_once(link)) {
        send_waiting_acks(fp);
    }
    res = pcie_ep_link_revoke(link, wait, &seq);
    fp->revoke_waiters -= wait;
    if (res != MEMTX_OK && wait && pcie_ep_link_is_up(link)) {
        pcie_ep_link_fail(link, "the link partner did not confirm that it "
                          "unmapped this VM's memory");
    }
    return seq ? seq : -1;
}

void pcie_ep_fastpath_revoke(PCIeEPLink *link, bool wait)
{
    fastpath_revoke(link, wait, false);
}

int64_t pcie_ep_fastpath_revoke_nowait(PCIeEPLink *link)
{
    return fastpath_revoke(link, false, true);
}

/*
 * Imports
 */

/*
 * SHM: keep the peer's fd if it is one we can map without trusting the
 * peer to leave it alone: a regular file at least as large as it says,
 * sealed against shrinking.  Nothing is mapped until an extent asks.
 */
bool pcie_ep_fastpath_import_shm(PCIeEPLink *link, const PCIeEPLinkShm *shm,
                                 int fd)
{
    PCIeEPFastPath *fp = link->fp;
    uint32_t id = le32_to_cpu(shm->id);
    uint64_t size = le64_to_cpu(shm->size);
    struct stat st;

    if (id >= PCIE_EP_LINK_MAX_SHM || fp->shm[id].fd >= 0 || !size ||
        (size & PAGE_MASK_FP)) {
        close(fd);
        return false;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < size ||
        !fd_mappable(fd)) {
        warn_report("%s: the link partner's RAM block %u is not a tmpfs "
                    "memfd sealed against shrinking, of the size it says: "
                    "message path to it", link->name, id);
        close(fd);
        return true;
    }
    fp->shm[id] = (PeerBlock) { .fd = fd, .size = size };
    trace_pcie_ep_fastpath_shm(link->name, id, size);
    return true;
}

void pcie_ep_fast_window_init(PCIeEPFastWindow *w, PCIeEPLink *link,
                              MemoryRegion *container, const char *name)
{
    *w = (PCIeEPFastWindow) {
        .link = link,
        .container = container,
        .name = g_strdup(name),
        .maps = g_ptr_array_new(),
    };
    if (link->fp) {
        QLIST_INSERT_HEAD(&link->fp->windows, w, next);
    }
}

/* Within a memory transaction */
static void window_unmap(PCIeEPFastWindow *w)
{
    for (unsigned i = 0; i < w->maps->len; i++) {
        PCIeEPPeerRam *ram = g_ptr_array_index(w->maps, i);

        memory_region_del_subregion(w->container, &ram->mr);
        object_unref(OBJECT(ram));
    }
    g_ptr_array_set_size(w->maps, 0);
    w->filled = false;
}

void pcie_ep_fast_window_destroy(PCIeEPFastWindow *w)
{
    if (!w->maps) {
        return;
    }
    memory_region_transaction_begin();
    window_unmap(w);
    memory_region_transaction_commit();
    if (w->link->fp) {
        QLIST_REMOVE(w, next);
    }
    g_ptr_array_free(w->maps, true);
    w->maps = NULL;
    g_free(w->name);
}

void pcie_ep_fastpath_drop_imports(PCIeEPLink *link)
{
    PCIeEPFastPath *fp = link->fp;
    PCIeEPFastWindow *w;

    if (!fp) {
        return;
    }
    fp->gen++;
    memory_region_transaction_begin();
    QLIST_FOREACH(w, &fp->windows, next) {
        window_unmap(w);
    }
    memory_region_transaction_commit();
}

/* The peer's answer is untrusted: every extent must fit where it goes. */
static bool extent_ok(PCIeEPFastPath *fp, const PCIeEPLinkExtent *e,
                      uint64_t window_size, uint64_t prev_end)
{
    uint64_t off = le64_to_cpu(e->offset), size = le64_to_cpu(e->size);
    uint64_t shm_off = le64_to_cpu(e->shm_offset);
    uint32_t id = le32_to_cpu(e->shm_id);

    return id < PCIE_EP_LINK_MAX_SHM && fp->shm[id].fd >= 0 && size &&
           !((off | size | shm_off) & PAGE_MASK_FP) && off >= prev_end &&
           off < window_size && size <= window_size - off &&
           shm_off < fp->shm[id].size && size <= fp->shm[id].size - shm_off;
}

static void window_install(PCIeEPFastWindow *w, hwaddr offset, uint64_t size,
                           const PCIeEPLinkExtent *e, unsigned n)
{
    PCIeEPFastPath *fp = w->link->fp;
    uint64_t prev_end = 0;

    for (unsigned i = 0; i < n; i++) {
        if (!extent_ok(fp, &e[i], size, prev_end)) {
            qemu_log_mask(LOG_GUEST_ERROR, "%s: the link partner's map of "
                          "%s has a bad extent %u: left on the message "
                          "path\n", w->link->name, w->name, i);
            return;
        }
        prev_end = le64_to_cpu(e[i].offset) + le64_to_cpu(e[i].size);
    }
    memory_region_transaction_begin();
    for (unsigned i = 0; i < n; i++) {
        PeerBlock *blk = &fp->shm[le32_to_cpu(e[i].shm_id)];
        uint64_t off = offset + le64_to_cpu(e[i].offset);
        uint64_t len = le64_to_cpu(e[i].size);
        g_autofree char *name = NULL;
        PCIeEPPeerRam *ram;
        Error *err = NULL;
        int fd;

        if (!(le32_to_cpu(e[i].flags) & PCIE_EP_LINK_EXTENT_WRITE)) {
            continue;   /* read-only RAM stays on the message path */
        }
        fd = qemu_dup(blk->fd);
        ram = PCIE_EP_PEER_RAM(object_new(TYPE_PCIE_EP_PEER_RAM));
        name = g_strdup_printf("%s.fast%u", w->name, w->maps->len);
        /* Once mapped, the RAM block owns the dup()ed fd. */
        if (fd < 0 || !memory_region_init_ram_from_fd(&ram->mr, OBJECT(ram),
                name, len, RAM_SHARED, fd, le64_to_cpu(e[i].shm_offset),
                &err)) {
            error_reportf_err(err, "%s: cannot map the link partner's RAM "
                              "under %s (message path there): ",
                              w->link->name, w->name);
            if (fd >= 0) {
                close(fd);
            }
            object_unref(OBJECT(ram));
            continue;
        }
        memory_region_add_subregion_overlap(w->container, off, &ram->mr, 1);
        g_ptr_array_add(w->maps, ram);
        fp->stats.maps_installed++;
        trace_pcie_ep_fastpath_map(w->link->name, w->name, off, len);
    }
    memory_region_transaction_commit();
}

bool pcie_ep_fast_window_wants_fill(PCIeEPFastWindow *w, unsigned gen)
{
    PCIeEPLink *link = w->link;
    PCIeEPFastPath *fp = link->fp;

    /* A translation made before the last drop is not asked about. */
    return fp && link->peer_shm && !fp->broken && !w->filling &&
           gen == fp->gen && !(w->filled && w->gen == gen) &&
           !pcie_ep_link_in_iothread(link);
}

bool pcie_ep_fast_window_fill(PCIeEPFastWindow *w, hwaddr offset,
                              uint64_t pci_addr, uint64_t size, unsigned gen)
{
    PCIeEPLink *link = w->link;
    PCIeEPFastPath *fp = link->fp;
    PCIeEPLinkMapRd rd = { .size = cpu_to_le64(size) };
    g_autofree PCIeEPLinkExtent *e = NULL;
    unsigned len = 0;
    MemTxResult res;

    if (!pcie_ep_fast_window_wants_fill(w, gen)) {
        return false;
    }
    w->filling = true;
    fp->stats.map_requests++;
    e = g_new(PCIeEPLinkExtent, PCIE_EP_LINK_MAX_EXTENTS);
    res = pcie_ep_link_request(link, PCIE_EP_LINK_MAP_RD, pci_addr, &rd,
                               sizeof(rd), e, PCIE_EP_LINK_MAX_PAYLOAD, &len);
    w->filling = false;
    if (res != MEMTX_OK && pcie_ep_link_is_up(link) && !fp->broken) {
        /* Asking again would stall every access: messages from now on. */
        fp->broken = true;
        warn_report("%s: the link partner did not answer a MAP_RD: message "
                    "path only until it reconnects", link->name);
    }
    /* A translation that changed while we asked is not installed. */
    if (res != MEMTX_OK || fp->gen != gen || !w->maps) {
        return res == MEMTX_OK;
    }
    window_unmap(w);
    w->filled = true;
    w->gen = gen;
    window_install(w, offset, size, e, len / sizeof(*e));
    return true;
}

/*
 * REVOKE: unmap, then answer once no vCPU can still reach the old RAM.
 * The memory transaction queues a TLB flush on every vCPU; exclusive
 * work runs only when every vCPU is out of guest code, and each one
 * runs its queued flush before it enters guest code again.
 */
/*
 * A REVOKE served, whose completion waits for the exclusive section.
 * The exclusive work owns it; @sent (under @ack_lock) says whether the
 * completion already went.
 */
typedef struct RevokeAck {
    PCIeEPLink *link;
    unsigned connection;
    uint16_t tag;
    bool sent;
} RevokeAck;

typedef struct AckSend {
    PCIeEPLink *link;
    unsigned connection;
    uint16_t tag;
} AckSend;

/* The IOThread sends the completion: no vCPU waits on the socket. */
static void ack_send_bh(void *opaque)
{
    AckSend *a = opaque;

    if (pcie_ep_link_connection(a->link) == a->connection) {
        pcie_ep_link_complete(a->link, a->tag, MEMTX_OK, NULL, 0);
    }
    g_free(a);
}

/* With ack_lock held */
static void ack_send(RevokeAck *ack)
{
    AckSend *a = g_new(AckSend, 1);

    *a = (AckSend) {
        .link = ack->link, .connection = ack->connection, .tag = ack->tag,
    };
    ack->sent = true;
    pcie_ep_link_run_in_iothread(ack->link, ack_send_bh, a);
}

static void revoke_ack_work(CPUState *cpu, run_on_cpu_data data)
{
    RevokeAck *ack = data.host_ptr;
    PCIeEPFastPath *fp = ack->link->fp;

    qemu_mutex_lock(&fp->ack_lock);
    fp->acks = g_slist_remove(fp->acks, ack);
    if (!ack->sent) {
        ack_send(ack);
    }
    qemu_mutex_unlock(&fp->ack_lock);
    g_free(ack);
}

/*
 * Crossed REVOKEs: a vCPU of ours parked in a REVOKE wait keeps an
 * exclusive section from running, and the peer's parked vCPU keeps its
 * own from completing ours.  So the host end, when one of its vCPUs
 * starts such a wait, completes every REVOKE of the EP's still waiting
 * for an exclusive section, and completes new ones at once while it
 * waits: its vCPUs were kicked to flush their TLBs, and one still
 * inside a translation block may finish it on the old mapping.  The EP
 * end keeps the full wait, so one of the two always completes.
 */
static bool acks_at_once(PCIeEPLink *link)
{
    return link->role == PCIE_EP_LINK_ROLE_HOST && link->fp->revoke_waiters;
}

static void send_waiting_acks(PCIeEPFastPath *fp)
{
    qemu_mutex_lock(&fp->ack_lock);
    for (GSList *l = fp->acks; l; l = l->next) {
        RevokeAck *ack = l->data;

        if (!ack->sent) {
            ack_send(ack);
        }
    }
    qemu_mutex_unlock(&fp->ack_lock);
}

void pcie_ep_fastpath_serve_revoke(PCIeEPLink *link, uint16_t tag)
{
    PCIeEPFastPath *fp = link->fp;
    RevokeAck *ack;

    pcie_ep_fastpath_drop_imports(link);
    fp->stats.revokes_served++;
    ack = g_new(RevokeAck, 1);
    *ack = (RevokeAck) {
        .link = link, .connection = pcie_ep_link_connection(link), .tag = tag,
    };
    qemu_mutex_lock(&fp->ack_lock);
    if (!first_cpu || acks_at_once(link)) {
        ack_send(ack);
        qemu_mutex_unlock(&fp->ack_lock);
        g_free(ack);
        return;
    }
    fp->acks = g_slist_prepend(fp->acks, ack);
    qemu_mutex_unlock(&fp->ack_lock);
    async_safe_run_on_cpu(first_cpu, revoke_ack_work,
                          RUN_ON_CPU_HOST_PTR(ack));
}

/*
 * Connection lifecycle
 */

/* The mappings made from them hold their own dup()s of the fds. */
static void forget_shm(PCIeEPFastPath *fp)
{
    for (unsigned i = 0; i < PCIE_EP_LINK_MAX_SHM; i++) {
        if (fp->shm[i].fd >= 0) {
            close(fp->shm[i].fd);
            fp->shm[i].fd = -1;
        }
    }
}

void pcie_ep_fastpath_connected(PCIeEPLink *link)
{
    PCIeEPFastPath *fp = link->fp;

    pcie_ep_fastpath_drop_imports(link);
    forget_shm(fp);
    fp->broken = false;
    if (link->peer_shm) {
        export_ram(link);
    } else {
        forget_exports(fp);
    }
}

void pcie_ep_fastpath_disconnected(PCIeEPLink *link)
{
    PCIeEPFastPath *fp = link->fp;

    if (!fp) {
        return;
    }
    pcie_ep_fastpath_drop_imports(link);
    forget_shm(fp);
    forget_exports(fp);
}

void pcie_ep_fastpath_cleanup(PCIeEPLink *link)
{
    if (!link->fp) {
        return;
    }
    pcie_ep_fastpath_disconnected(link);
    qemu_mutex_destroy(&link->fp->ack_lock);
    g_free(link->fp);
    link->fp = NULL;
}
