/*
 * The link between an endpoint controller and a host-side PCIe function
 *
 * See docs/link-protocol.md for the messages and include/hw/pci-ep/
 * pcie-ep-link.h for the threading rules.
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
#include "qemu/timer.h"
#include "chardev/char-fe.h"
#include "chardev/char.h"
#include "chardev/char-socket.h"
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include "system/iothread.h"
#include "hw/core/cpu.h"
#include "migration/blocker.h"
#include "system/memory.h"
#include "hw/intc/arm_gicv3_its_common.h"
#include "system/runstate.h"
#include "system/runstate-action.h"
#include "system/qtest.h"
#include "hw/pci-ep/pcie-ep-link.h"
#include "hw/pci-ep/pcie-ep-fastpath.h"
#include "trace.h"

typedef struct PCIeEPLinkWaiter {
    bool busy;
    bool done;
    bool detached;      /* nobody waits: the completion just frees it */
    int64_t sent_ms;
    uint32_t revoke_seq;    /* a REVOKE: its number; else 0 */
    uint32_t round_trip_seq;    /* a round trip's number; else 0 */
    uint16_t tag;       /* index in the low bits, a generation above */
    uint8_t status;
    uint32_t len;
    uint8_t data[PCIE_EP_LINK_MAX_PAYLOAD];
} PCIeEPLinkWaiter;

/* What the owner of the link need not see */
typedef struct PCIeEPLinkPriv {
    /*
     * Receive state: the IOThread only.  The IOThread resets it when the
     * next connection's first bytes come in under a new conn_gen.
     */
    uint8_t rxbuf[sizeof(PCIeEPLinkHdr) + PCIE_EP_LINK_MAX_PAYLOAD];
    size_t rxlen;
    bool hello_seen;
    int rx_fds[PCIE_EP_LINK_MAX_SHM];
    unsigned rx_nfds;
    unsigned rx_gen;

    /* Our own outstanding requests, under the link's lock */
    PCIeEPLinkWaiter waiter[PCIE_EP_LINK_NUM_TAGS];
    uint16_t tag_gen;

    /*
     * The IOThread: queued messages gathered into one socket write, small
     * enough that a peer reading slowly frees one often (tx_unread())
     */
    uint8_t txbuf[16 * 1024];
} PCIeEPLinkPriv;

static const char *const msg_name[PCIE_EP_LINK_MSG_MAX] = {
    [PCIE_EP_LINK_HELLO] = "HELLO",
    [PCIE_EP_LINK_CFG_RD] = "CFG_RD",
    [PCIE_EP_LINK_CFG_WR] = "CFG_WR",
    [PCIE_EP_LINK_MEM_RD] = "MEM_RD",
    [PCIE_EP_LINK_MEM_WR] = "MEM_WR",
    [PCIE_EP_LINK_CPL] = "CPL",
    [PCIE_EP_LINK_UP] = "UP",
    [PCIE_EP_LINK_DOWN] = "DOWN",
    [PCIE_EP_LINK_HOT_RESET] = "HOT_RESET",
    [PCIE_EP_LINK_SHM] = "SHM",
    [PCIE_EP_LINK_MAP_RD] = "MAP_RD",
    [PCIE_EP_LINK_REVOKE] = "REVOKE",
    [PCIE_EP_LINK_CFG_IMAGE] = "CFG_IMAGE",
};

/*
 * Sending
 */

/*
 * The peer serves REVOKEs in order: the completion of the one numbered
 * @seq confirms every one before it.  With @link->lock held.
 */
static void revoke_confirmed(PCIeEPLink *link, uint32_t seq)
{
    if (seq && (int32_t)(seq - link->revokes_done) > 0) {
        link->revokes_done = seq;
        if (link->revokes_done_bh) {
            qemu_bh_schedule(link->revokes_done_bh);
        }
    }
}

/*
 * The peer serves requests in order: any completion of the round trip
 * numbered @seq, whatever its status, says that it has served all that
 * was sent before.  With @link->lock held.
 */
static void round_trip_confirmed(PCIeEPLink *link, uint32_t seq)
{
    if (seq && (int32_t)(seq - link->round_trips_done) > 0) {
        link->round_trips_done = seq;
    }
}

/* The next number of a counter whose 0 numbers nothing */
static uint32_t next_seq(uint32_t *counter)
{
    *counter += *counter == UINT32_MAX ? 2 : 1;
    return *counter;
}

/*
 * True while this thread serves one of the partner's requests: its memory
 * access came back to this end's own BAR or window.  A request to the
 * partner from here would wait on itself (a read) or could bounce between
 * the two VMs for ever (a write), so the callers refuse it.
 */
static bool serving_partner(PCIeEPLink *link, PCIeEPLinkMsgType type,
                            uint64_t addr)
{
    if (!link->iothread || qemu_get_current_aio_context() !=
        iothread_get_aio_context(link->iothread)) {
        return false;
    }
    qemu_log_mask(LOG_GUEST_ERROR, "%s: %s at 0x%" PRIx64 " while serving "
                  "the link partner's request: refused\n", link->name,
                  msg_name[type], addr);
    return true;
}

/*
 * What a memory request from the link reaches, as a PCIe function's
 * would: RAM, and (writes only) an MSI doorbell, the GICv3 ITS's
 * translation register or a GICv2m frame.  Registers of anything else
 * (a GIC CPU interface with no current CPU, ECAM, virtio) are not a
 * bus master's business: an Unsupported Request.  With @target, also
 * says which region it is (for identity only: not to be dereferenced).
 */
PCIeEPReach pcie_ep_link_reach(AddressSpace *as, hwaddr addr, unsigned len,
                               bool is_write, MemTxAttrs attrs,
                               const MemoryRegion **target)
{
    hwaddr xlat, plen = len;
    MemoryRegion *mr;
    Object *its;

    RCU_READ_LOCK_GUARD();
    mr = address_space_translate(as, addr, &xlat, &plen, is_write, attrs);
    /* The length comes back clamped for RAM only: clamp MMIO to its region */
    if (!memory_region_is_ram(mr) && memory_region_size(mr) - xlat < plen) {
        plen = memory_region_size(mr) - xlat;
    }
    if (target) {
        *target = plen >= len ? mr : NULL;
    }
    if (plen < len) {
        return PCIE_EP_REACH_NONE;
    }
    if (memory_region_is_ram(mr) && !memory_region_is_ram_device(mr)) {
        return PCIE_EP_REACH_RAM;
    }
    if (!is_write || !mr->owner) {
        return PCIE_EP_REACH_NONE;
    }
    its = object_dynamic_cast(mr->owner, TYPE_ARM_GICV3_ITS_COMMON);
    if ((its && mr == &ARM_GICV3_ITS_COMMON(its)->iomem_its_translation) ||
        object_dynamic_cast(mr->owner, "arm-gicv2m")) {
        return PCIE_EP_REACH_MSI;
    }
    return PCIE_EP_REACH_NONE;
}

bool pcie_ep_link_may_reach(AddressSpace *as, hwaddr addr, unsigned len,
                            bool is_write, MemTxAttrs attrs)
{
    return pcie_ep_link_reach(as, addr, len, is_write, attrs, NULL) !=
           PCIE_EP_REACH_NONE;
}

bool pcie_ep_link_in_iothread(PCIeEPLink *link)
{
    return link->iothread && qemu_get_current_aio_context() ==
           iothread_get_aio_context(link->iothread);
}

unsigned pcie_ep_link_connection(PCIeEPLink *link)
{
    return qatomic_read(&link->conn_gen);
}

static unsigned build_msg(uint8_t *msg, uint8_t type, uint8_t flags,
                          uint16_t tag, uint32_t len, uint64_t addr,
                          const void *payload, unsigned payload_len)
{
    PCIeEPLinkHdr hdr = {
        .type = type, .flags = flags, .tag = cpu_to_le16(tag),
        .len = cpu_to_le32(len), .addr = cpu_to_le64(addr),
    };

    assert(payload_len <= PCIE_EP_LINK_MAX_PAYLOAD);
    memcpy(msg, &hdr, sizeof(hdr));
    if (payload_len) {
        memcpy(msg + sizeof(hdr), payload, payload_len);
    }
    return sizeof(hdr) + payload_len;
}

static void link_fail(PCIeEPLink *link, const char *why);

/*
 * The output queue
 *
 * Every message goes through one queue, which only the IOThread writes
 * to the socket, without blocking: no thread waits on a full socket, so
 * no number of vCPUs on either end can make the two processes wait on
 * each other.  The queue is bounded.  A memory write from a thread that
 * holds the BQL (a vCPU, a device's DMA, qtest) waits for room while the
 * queue is long, as a CPU's posted writes wait for flow-control credits
 * (wait_for_room()).  What does not fit at all is dropped (counted in
 * tx_dropped) and takes the link down, as the ends then disagree; a read
 * that was not queued fails at its deadline.  A peer that reads nothing
 * for the link's timeout takes the link down too.
 */

/*
 * Past TXQ_POSTED_MAX bytes, a memory write waits for room; past TXQ_MAX,
 * nothing more is queued: what is dropped there takes the link down with
 * it.  A waiting vCPU looks for a stop request every TXQ_WAIT_SLICE_MS.
 */
#define TXQ_POSTED_MAX  (1 << 20)
#define TXQ_MAX         (8 << 20)
#define TXQ_WAIT_SLICE_MS 10

struct PCIeEPLinkTx {
    QSIMPLEQ_ENTRY(PCIeEPLinkTx) next;
    unsigned conn;          /* the connection it was queued for */
    unsigned size;
    unsigned sent;
    int nfds;
    int fds[PCIE_EP_LINK_MAX_SHM];
    uint8_t data[];
};

static void tx_free(PCIeEPLinkTx *tx)
{
    for (int i = 0; i < tx->nfds; i++) {
        close(tx->fds[i]);
    }
    g_free(tx);
}

/* Memory writes: a vCPU that sends one waits while the queue is long */
static bool is_mem_write(uint8_t type)
{
    return type == PCIE_EP_LINK_MEM_WR;
}

/*
 * The IOThread: what we wrote to the socket that the peer has not read
 * yet (in the kernel's accounting), or -1 where that cannot be told.
 */
static int64_t tx_unread(PCIeEPLink *link)
{
    Chardev *chr = qemu_chr_fe_get_driver(&link->chr);
    Object *obj = chr ? object_dynamic_cast(OBJECT(chr), TYPE_CHARDEV_SOCKET)
                      : NULL;
    SocketChardev *sock = obj ? SOCKET_CHARDEV(obj) : NULL;
    int n;

    if (!sock || !sock->sioc || ioctl(sock->sioc->fd, SIOCOUTQ, &n) < 0) {
        return -1;
    }
    return n;
}

/*
 * The IOThread: the peer has read nothing for the link's timeout, or its
 * socket stopped taking writes and it has not closed it since: take the
 * link down.  A peer that reads, however slowly, keeps the link: what it
 * has not read goes down, though the socket may not take more yet.
 */
static void tx_stall_check(void *opaque)
{
    PCIeEPLink *link = opaque;
    int64_t since = qatomic_read(&link->tx_blocked_since);
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    unsigned conn = pcie_ep_link_connection(link);
    bool broken = link->tx_broken_conn == conn + 1;
    g_autofree char *why = NULL;
    int64_t unread;

    if (!since || link->tx_blocked_conn != conn ||
        now - since < link->timeout_ms) {
        return;
    }
    unread = broken ? -1 : tx_unread(link);
    if (unread >= 0 && unread < link->tx_unread_at_block) {
        link->tx_unread_at_block = unread;
        qatomic_set(&link->tx_blocked_since, now);
        timer_mod(link->tx_timer, now + link->timeout_ms);
        return;
    }
    qatomic_set(&link->tx_blocked_since, 0);
    if (broken) {
        why = g_strdup_printf("the socket takes no writes, and the link "
                              "partner has not closed it for %u ms",
                              link->timeout_ms);
    } else {
        why = g_strdup_printf("the link partner has read nothing for %u ms",
                              link->timeout_ms);
    }
    link_fail(link, why);
}

/* The IOThread: nothing goes out on @conn; down at the timeout if so. */
static void tx_arm_stall_check(PCIeEPLink *link, unsigned conn)
{
    int64_t since = qatomic_read(&link->tx_blocked_since);

    if (!since || link->tx_blocked_conn != conn) {
        int64_t unread = tx_unread(link);

        since = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
        link->tx_blocked_conn = conn;
        link->tx_unread_at_block = unread < 0 ? INT64_MAX : unread;
        qatomic_set(&link->tx_blocked_since, since);
    }
    timer_mod(link->tx_timer, since + link->timeout_ms);
}

static gboolean tx_writable(void *do_not_use, GIOCondition cond,
                            void *opaque);

/* The IOThread: stop waiting for room on the socket. */
static void tx_unwatch(PCIeEPLink *link)
{
    GMainContext *ctx = iothread_get_g_main_context(link->iothread);
    GSource *src;

    if (link->tx_watch) {
        src = g_main_context_find_source_by_id(ctx, link->tx_watch);
        if (src) {
            g_source_destroy(src);
        }
        link->tx_watch = 0;
    }
}

static PCIeEPLinkTx *tx_head(PCIeEPLink *link)
{
    PCIeEPLinkTx *tx;

    qemu_mutex_lock(&link->send_lock);
    tx = QSIMPLEQ_FIRST(&link->txq);
    qemu_mutex_unlock(&link->send_lock);
    return tx;
}

static void tx_pop(PCIeEPLink *link, PCIeEPLinkTx *tx)
{
    qemu_mutex_lock(&link->send_lock);
    QSIMPLEQ_REMOVE_HEAD(&link->txq, next);
    link->tx_bytes -= tx->size;
    if (link->tx_bytes <= TXQ_POSTED_MAX / 2) {
        qemu_cond_broadcast(&link->tx_cond);    /* wait_for_room() */
    }
    qemu_mutex_unlock(&link->send_lock);
    tx_free(tx);
}

/* The socket is full: drain again when it has room, or go down. */
static void tx_wait_for_room(PCIeEPLink *link, unsigned conn)
{
    tx_arm_stall_check(link, conn);
    link->tx_watch = qemu_chr_fe_add_watch(&link->chr, G_IO_OUT | G_IO_HUP,
                                           tx_writable, link);
    link->tx_watch_conn = conn;
}

/*
 * Under the link's lock: no completion will come for what we wait on.
 * Each waiter wakes with no completion; with @free_detached, a request
 * nobody waits for is freed too.
 */
static void complete_waiters(PCIeEPLink *link, bool free_detached)
{
    for (int i = 0; i < PCIE_EP_LINK_NUM_TAGS; i++) {
        PCIeEPLinkWaiter *w = &link->p->waiter[i];

        if (w->busy && w->detached) {
            w->busy = !free_detached;
        } else if (w->busy && !w->done) {
            w->status = PCIE_EP_LINK_CPL_NONE;
            w->done = true;
        }
    }
    qemu_cond_broadcast(&link->cond);
}

/*
 * The socket no longer takes writes: the peer has closed it, or shut its
 * read side.  What the peer sent before may still be unread here, and
 * the chardev delivers it before the close (see tcp_chr_write()), so the
 * link stays up for it: nothing more is written on this connection, and
 * if no close comes within the link's timeout, the link goes down.
 */
static void tx_write_failed(PCIeEPLink *link, unsigned conn)
{
    qatomic_set(&link->tx_broken_conn, conn + 1);
    tx_arm_stall_check(link, conn);
    /* No request of ours goes out now, nor will its completion come. */
    qemu_mutex_lock(&link->lock);
    complete_waiters(link, false);
    qemu_mutex_unlock(&link->lock);
}

/*
 * The IOThread: the rest of @head, and the messages queued after it for
 * the same connection, gathered into one buffer, so that one socket write
 * carries many small messages.  A message with fds goes alone, as its fds
 * go with its first byte.  Returns the bytes gathered.
 */
static unsigned tx_gather(PCIeEPLink *link, PCIeEPLinkTx *head)
{
    uint8_t *buf = link->p->txbuf;
    unsigned len = head->size - head->sent;
    PCIeEPLinkTx *tx;

    if (head->nfds && !head->sent) {
        return 0;
    }
    len = MIN(len, sizeof(link->p->txbuf));
    memcpy(buf, head->data + head->sent, len);
    qemu_mutex_lock(&link->send_lock);
    for (tx = QSIMPLEQ_NEXT(head, next); tx; tx = QSIMPLEQ_NEXT(tx, next)) {
        if (tx->conn != head->conn || tx->nfds ||
            len + tx->size > sizeof(link->p->txbuf)) {
            break;
        }
        memcpy(buf + len, tx->data, tx->size);
        len += tx->size;
    }
    qemu_mutex_unlock(&link->send_lock);
    return len;
}

/* The IOThread: @n bytes from the head of the queue went out. */
static void tx_consume(PCIeEPLink *link, unsigned n)
{
    while (n) {
        PCIeEPLinkTx *tx = tx_head(link);
        unsigned take = MIN(n, tx->size - tx->sent);

        tx->sent += take;
        n -= take;
        if (tx->sent == tx->size) {
            tx_pop(link, tx);
        }
    }
}

/*
 * The IOThread: write what the socket takes.  The entries are the
 * IOThread's to send and free (others only append), so they are written
 * without the lock, which a chardev event on a failed write may need.
 * Entries queued for a connection that has closed are dropped.
 */
static void tx_drain(void *opaque)
{
    PCIeEPLink *link = opaque;
    PCIeEPLinkTx *tx;

    while ((tx = tx_head(link))) {
        unsigned conn = pcie_ep_link_connection(link);
        unsigned len;
        int n;

        /* A watch on a connection that closed may never fire. */
        if (link->tx_watch && link->tx_watch_conn != conn) {
            tx_unwatch(link);
        }
        if (tx->conn == conn && link->tx_broken_conn != conn + 1) {
            if (link->tx_watch) {
                return;         /* waiting for room */
            }
            if (!tx->sent && tx->nfds &&
                qemu_chr_fe_set_msgfds(&link->chr, tx->fds, tx->nfds) < 0) {
                tx_pop(link, tx);   /* its fds cannot go: nor can it */
                continue;
            }
            len = tx_gather(link, tx);
            if (len) {
                n = qemu_chr_fe_write(&link->chr, link->p->txbuf, len);
            } else {
                n = qemu_chr_fe_write(&link->chr, tx->data, tx->size);
            }
            if (n < 0 && errno == EAGAIN) {
                tx_wait_for_room(link, conn);
                return;
            }
            if (n <= 0) {
                tx_write_failed(link, conn);
                continue;       /* dropped, with the rest for @conn */
            }
            qatomic_set(&link->tx_blocked_since, 0);
            tx_consume(link, n);
            continue;
        }
        tx_pop(link, tx);
    }
    if (link->tx_broken_conn != pcie_ep_link_connection(link) + 1) {
        qatomic_set(&link->tx_blocked_since, 0);
    }
}

static gboolean tx_writable(void *do_not_use, GIOCondition cond,
                            void *opaque)
{
    PCIeEPLink *link = opaque;

    link->tx_watch = 0;
    tx_drain(link);
    return G_SOURCE_REMOVE;
}

/* The IOThread has stopped: nothing in the queue will go. */
static void tx_cleanup(PCIeEPLink *link)
{
    PCIeEPLinkTx *tx;

    tx_unwatch(link);
    timer_free(link->tx_timer);
    qemu_bh_delete(link->tx_bh);
    while ((tx = QSIMPLEQ_FIRST(&link->txq))) {
        QSIMPLEQ_REMOVE_HEAD(&link->txq, next);
        tx_free(tx);
    }
    link->tx_bytes = 0;
}

/*
 * A vCPU's memory write waits for room in the queue, as a CPU's posted
 * writes wait for flow-control credits: a peer that reads slowly slows
 * the writer down instead of losing its data.  It waits with the BQL
 * dropped, as for a read.  A vCPU asked to stop (pause, reset, migration)
 * stops waiting at once, and its write goes in above the soft limit, as
 * it does after the link's timeout.  (A peer that reads nothing for that
 * long loses the link: see tx_stall_check().)
 *
 * The main loop must not wait: with the BQL dropped in the middle of a
 * timer or a block completion, a vCPU that drains that block device
 * waits for it for ever.  A device's DMA there asks for room first
 * (pcie_ep_link_has_room()) and comes back later.  qtest, with no vCPU
 * running, waits as a vCPU does.
 */
static bool may_wait_for_room(PCIeEPLink *link)
{
    return bql_locked() && (current_cpu || qtest_enabled()) &&
           !pcie_ep_link_in_iothread(link);
}

bool pcie_ep_link_has_room(PCIeEPLink *link)
{
    return qatomic_read(&link->tx_bytes) < TXQ_POSTED_MAX;
}

/* Set while a posted write must not wait: see pcie_ep_link_post() */
static __thread bool posting;

static bool vcpu_asked_to_stop(void)
{
    return current_cpu && qatomic_read(&current_cpu->stop);
}

/* Under send_lock: a write of @size waits for room on connection @conn */
static bool needs_room(PCIeEPLink *link, unsigned size, unsigned conn)
{
    return link->tx_bytes + size > TXQ_POSTED_MAX &&
           qatomic_read(&link->up) && !qatomic_read(&link->stopping) &&
           pcie_ep_link_connection(link) == conn;
}

static void wait_for_room(PCIeEPLink *link, unsigned size)
{
    int64_t deadline = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                       link->timeout_ms;
    unsigned conn = pcie_ep_link_connection(link);
    bool dropped_bql = false;

    qemu_mutex_lock(&link->send_lock);
    while (needs_room(link, size, conn) && !vcpu_asked_to_stop()) {
        int64_t left = deadline - qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

        if (left <= 0) {
            break;
        }
        if (!dropped_bql) {
            /* Not with send_lock held: the IOThread takes both. */
            qemu_mutex_unlock(&link->send_lock);
            bql_unlock();
            dropped_bql = true;
            qemu_mutex_lock(&link->send_lock);
            continue;
        }
        qemu_cond_timedwait(&link->tx_cond, &link->send_lock,
                            MIN(left, TXQ_WAIT_SLICE_MS));
    }
    qemu_mutex_unlock(&link->send_lock);
    if (dropped_bql) {
        bql_lock();
    }
}

/*
 * Queue one message for the IOThread to send; with @nfds, copies of the
 * fds go with it.  False if it was not queued: the link is down, or the
 * queue is full (a posted message is then counted as dropped).
 */
static bool link_queue(PCIeEPLink *link, uint8_t type, uint8_t flags,
                       uint16_t tag, uint32_t len, uint64_t addr,
                       const void *payload, unsigned payload_len,
                       const int *fds, int nfds)
{
    unsigned size = sizeof(PCIeEPLinkHdr) + payload_len;
    PCIeEPLinkTx *tx;
    bool queued = false, full = false;

    assert(nfds <= PCIE_EP_LINK_MAX_SHM);
    if (is_mem_write(type) && may_wait_for_room(link) && !posting) {
        wait_for_room(link, size);
    }
    qemu_mutex_lock(&link->send_lock);
    if (qatomic_read(&link->stopping) || !qatomic_read(&link->open) ||
        (type != PCIE_EP_LINK_HELLO && !qatomic_read(&link->up))) {
        goto out;
    }
    if (link->tx_bytes + size > TXQ_MAX) {
        /* Lost: the ends no longer agree, so the link goes down. */
        link->tx_dropped++;
        trace_pcie_ep_link_tx_drop(link->name, msg_name[type], addr, len,
                                   link->tx_dropped);
        full = true;
        goto out;
    }
    tx = g_malloc(sizeof(*tx) + size);
    *tx = (PCIeEPLinkTx) {
        .conn = pcie_ep_link_connection(link), .size = size, .nfds = nfds,
    };
    for (int i = 0; i < nfds; i++) {
        tx->fds[i] = dup(fds[i]);
    }
    build_msg(tx->data, type, flags, tag, len, addr, payload, payload_len);
    QSIMPLEQ_INSERT_TAIL(&link->txq, tx, next);
    link->tx_bytes += size;
    queued = true;
    trace_pcie_ep_link_send(link->name, msg_name[type], tag, addr, len);
out:
    qemu_mutex_unlock(&link->send_lock);
    if (queued) {
        qemu_bh_schedule(link->tx_bh);
    }
    if (full) {
        pcie_ep_link_fail(link, "the output queue is full");
    }
    return queued;
}

/* Nothing but HELLO (see send_hello()) goes before the partner's HELLO. */
static bool link_send(PCIeEPLink *link, uint8_t type, uint8_t flags,
                      uint16_t tag, uint32_t len, uint64_t addr,
                      const void *payload, unsigned payload_len)
{
    return link_queue(link, type, flags, tag, len, addr, payload,
                      payload_len, NULL, 0);
}

bool pcie_ep_link_send_fds(PCIeEPLink *link, PCIeEPLinkMsgType type,
                           const void *payload, unsigned len, int *fds,
                           int nfds)
{
    return link_queue(link, type, 0, 0, len, 0, payload, len, fds, nfds);
}

uint64_t pcie_ep_link_dropped(PCIeEPLink *link)
{
    uint64_t n;

    qemu_mutex_lock(&link->send_lock);
    n = link->tx_dropped;
    qemu_mutex_unlock(&link->send_lock);
    return n;
}

/*
 * HELLO goes first on every connection, once, from whichever thread
 * learns of the connection first: the chardev's OPENED event, or the
 * IOThread reading the partner's first bytes (OPENED may come later,
 * from another thread).  The features it offers are fixed with it.
 */
static void send_hello(PCIeEPLink *link)
{
    unsigned conn = pcie_ep_link_connection(link) + 1;
    PCIeEPLinkHello hello = {
        .magic = cpu_to_le32(PCIE_EP_LINK_MAGIC),
        .version = cpu_to_le16(PCIE_EP_LINK_VERSION),
        .role = cpu_to_le16(link->role),
    };
    Chardev *chr = qemu_chr_fe_get_driver(&link->chr);
    bool first;

    /* Already sent: the reader's usual case, with no lock taken. */
    if (qatomic_read(&link->hello_conn) == conn) {
        return;
    }
    qemu_mutex_lock(&link->send_lock);
    first = link->hello_conn != conn;
    if (first) {
        qatomic_set(&link->hello_conn, conn);
        qatomic_set(&link->open, true);
        /* Only a UNIX socket passes fds. */
        link->local_shm = link->fast_path && chr &&
                          qemu_chr_has_feature(chr, QEMU_CHAR_FEATURE_FD_PASS);
    }
    qemu_mutex_unlock(&link->send_lock);
    if (first) {
        hello.features = cpu_to_le32(link->local_shm ?
                                     PCIE_EP_LINK_FEAT_SHM : 0);
        link_send(link, PCIE_EP_LINK_HELLO, 0, 0, sizeof(hello), 0, &hello,
                  sizeof(hello));
    }
}

bool pcie_ep_link_write(PCIeEPLink *link, PCIeEPLinkMsgType type,
                        uint64_t addr, const void *buf, unsigned len)
{
    uint32_t cfg = 0;

    assert(type == PCIE_EP_LINK_CFG_WR || type == PCIE_EP_LINK_MEM_WR);
    assert(len && len <= PCIE_EP_LINK_MAX_PAYLOAD);
    if (!pcie_ep_link_is_up(link) || serving_partner(link, type, addr)) {
        return false;
    }
    if (type == PCIE_EP_LINK_CFG_WR) {
        /* Config data always travels as 4 bytes: a config write has 1-4. */
        assert(len <= sizeof(cfg));
        memcpy(&cfg, buf, len);
        return link_send(link, type, 0, 0, len, addr, &cfg, sizeof(cfg));
    }
    return link_send(link, type, 0, 0, len, addr, buf, len);
}

void pcie_ep_link_wait_for_room(PCIeEPLink *link)
{
    /* Every window access comes here: no lock while there is room */
    if (!pcie_ep_link_has_room(link) && may_wait_for_room(link)) {
        wait_for_room(link, 0);
    }
}

bool pcie_ep_link_post(PCIeEPLink *link, uint64_t addr, const void *buf,
                       unsigned len)
{
    bool queued;

    posting = true;
    queued = pcie_ep_link_write(link, PCIE_EP_LINK_MEM_WR, addr, buf, len);
    posting = false;
    return queued;
}

void pcie_ep_link_send_image(PCIeEPLink *link, uint16_t writes_seen,
                             uint32_t offset, const void *payload,
                             unsigned len)
{
    if (pcie_ep_link_is_up(link)) {
        link_send(link, PCIE_EP_LINK_CFG_IMAGE, 0, writes_seen, len, offset,
                  payload, len);
    }
}

void pcie_ep_link_send_event(PCIeEPLink *link, PCIeEPLinkMsgType type,
                             uint64_t addr, const void *payload,
                             unsigned len)
{
    if (pcie_ep_link_is_up(link)) {
        link_send(link, type, 0, 0, len, addr, payload, len);
    }
}

/*
 * Non-posted requests
 */

/*
 * Tags go round: the next wire tag is the one after the last, so a
 * completion that comes after its request timed out meets the same wire
 * tag only 65536 requests later, not on the waiter's next use.  Its low
 * bits pick the waiter.  With @link->lock held.
 */
static int alloc_tag(PCIeEPLink *link)
{
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

    for (int n = 0; n < PCIE_EP_LINK_NUM_TAGS; n++) {
        uint16_t tag = ++link->p->tag_gen;
        int i = tag % PCIE_EP_LINK_NUM_TAGS;
        PCIeEPLinkWaiter *w = &link->p->waiter[i];

        /* A request nobody waits for gets the same timeout as a read. */
        if (w->busy && w->detached && now - w->sent_ms > link->timeout_ms) {
            w->busy = false;
        }
        if (!w->busy) {
            *w = (PCIeEPLinkWaiter) {
                .busy = true, .tag = tag, .sent_ms = now,
            };
            return i;
        }
    }
    return -1;
}

/*
 * Send a non-posted request and wait for its completion, with the BQL
 * dropped; the completion's data (up to @reply_max bytes) goes to
 * @reply.  With @reply NULL the request is sent and nobody waits.
 */
static MemTxResult link_request(PCIeEPLink *link, PCIeEPLinkMsgType type,
                                uint64_t addr, uint32_t hdr_len,
                                const void *payload, unsigned payload_len,
                                void *reply, unsigned reply_max,
                                unsigned *reply_len, uint32_t *seq)
{
    MemTxResult res = MEMTX_ERROR;
    bool drop_bql = bql_locked();
    int64_t deadline;
    PCIeEPLinkWaiter *w;
    int tag;

    if (reply && serving_partner(link, type, addr)) {
        return MEMTX_ERROR;
    }
    /* The socket takes no more writes: no completion can come */
    if (qatomic_read(&link->tx_broken_conn) ==
        pcie_ep_link_connection(link) + 1) {
        return MEMTX_ACCESS_ERROR;
    }

    qemu_mutex_lock(&link->lock);
    tag = link->up ? alloc_tag(link) : -1;
    if (tag >= 0 && !reply) {
        link->p->waiter[tag].detached = true;
    }
    if (tag >= 0 && seq && type == PCIE_EP_LINK_REVOKE) {
        *seq = link->p->waiter[tag].revoke_seq =
            next_seq(&link->revokes_sent);
    } else if (tag >= 0 && seq) {
        *seq = link->p->waiter[tag].round_trip_seq =
            next_seq(&link->round_trips_sent);
    }
    qemu_mutex_unlock(&link->lock);
    if (tag < 0) {
        if (pcie_ep_link_is_up(link)) {
            trace_pcie_ep_link_no_tag(link->name, msg_name[type], addr);
        }
        return MEMTX_ERROR;
    }
    w = &link->p->waiter[tag];

    if (!link_send(link, type, 0, w->tag, hdr_len, addr, payload,
                   payload_len) && !reply) {
        qemu_mutex_lock(&link->lock);
        w->busy = false;
        qemu_mutex_unlock(&link->lock);
        return MEMTX_ERROR;
    }
    if (!reply) {
        return MEMTX_OK;
    }
    /* A request that was not queued fails at its deadline, like one lost. */
    if (drop_bql) {
        bql_unlock();
    }
    deadline = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + link->timeout_ms;
    qemu_mutex_lock(&link->lock);
    while (!w->done && link->up) {
        int64_t left = deadline - qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

        if (left <= 0 || !qemu_cond_timedwait(&link->cond, &link->lock,
                                               left)) {
            break;
        }
    }
    if (w->done && w->status == PCIE_EP_LINK_CPL_SC && w->len <= reply_max) {
        memcpy(reply, w->data, w->len);
        *reply_len = w->len;
        res = MEMTX_OK;
        revoke_confirmed(link, w->revoke_seq);
    } else if (w->done && w->status == PCIE_EP_LINK_CPL_UR) {
        res = MEMTX_DECODE_ERROR;
    } else if (!w->done || w->status == PCIE_EP_LINK_CPL_NONE) {
        res = MEMTX_ACCESS_ERROR;   /* no completion */
    }
    if (!w->done && link->up) {
        trace_pcie_ep_link_timeout(link->name, msg_name[type], addr,
                                   link->timeout_ms);
        if (link->warned_conn != pcie_ep_link_connection(link) + 1) {
            link->warned_conn = pcie_ep_link_connection(link) + 1;
            warn_report("%s: no completion for %s at 0x%" PRIx64 " within "
                        "%u ms (further ones are traced only)", link->name,
                        msg_name[type], addr, link->timeout_ms);
        }
    }
    /* A late completion for a timed-out tag finds it free and is dropped. */
    w->busy = false;
    qemu_mutex_unlock(&link->lock);

    if (drop_bql) {
        bql_lock();
    }
    return res;
}

MemTxResult pcie_ep_link_read(PCIeEPLink *link, PCIeEPLinkMsgType type,
                              uint64_t addr, void *buf, unsigned len)
{
    unsigned got = 0;
    MemTxResult res;

    assert(type == PCIE_EP_LINK_CFG_RD || type == PCIE_EP_LINK_MEM_RD);
    assert(len && len <= PCIE_EP_LINK_MAX_PAYLOAD);
    res = link_request(link, type, addr, len, NULL, 0, buf, len, &got, NULL);
    if (res != MEMTX_OK || got != len) {
        memset(buf, 0xff, len);
        return res != MEMTX_OK ? res : MEMTX_ERROR;
    }
    return MEMTX_OK;
}

MemTxResult pcie_ep_link_request(PCIeEPLink *link, PCIeEPLinkMsgType type,
                                 uint64_t addr, const void *payload,
                                 unsigned payload_len, void *reply,
                                 unsigned reply_max, unsigned *reply_len)
{
    assert(type == PCIE_EP_LINK_MAP_RD);
    return link_request(link, type, addr, payload_len, payload, payload_len,
                        reply, reply_max, reply_len, NULL);
}

MemTxResult pcie_ep_link_revoke(PCIeEPLink *link, bool wait, uint32_t *seq)
{
    unsigned len;
    MemTxResult res;

    *seq = 0;
    res = link_request(link, PCIE_EP_LINK_REVOKE, 0, 0, NULL, 0,
                       wait ? &len : NULL, 0, &len, seq);
    if (res != MEMTX_OK) {
        *seq = 0;
    }
    return res;
}

uint32_t pcie_ep_link_round_trip(PCIeEPLink *link)
{
    static const uint8_t no_size[8];
    uint32_t seq = 0;

    if (link_request(link, PCIE_EP_LINK_MAP_RD, 0, sizeof(no_size), no_size,
                     sizeof(no_size), NULL, 0, NULL, &seq) != MEMTX_OK) {
        return 0;
    }
    return seq;
}

/* The peer has completed number @seq of the counter @done, or a later one */
static bool seq_done(PCIeEPLink *link, const uint32_t *done, uint32_t seq)
{
    bool reached;

    qemu_mutex_lock(&link->lock);
    reached = (int32_t)(*done - seq) >= 0;
    qemu_mutex_unlock(&link->lock);
    return reached;
}

bool pcie_ep_link_round_trip_done(PCIeEPLink *link, uint32_t seq)
{
    return seq_done(link, &link->round_trips_done, seq);
}

bool pcie_ep_link_revoke_done(PCIeEPLink *link, uint32_t seq)
{
    return seq_done(link, &link->revokes_done, seq);
}

bool pcie_ep_link_revokes_pending(PCIeEPLink *link)
{
    bool pending;

    qemu_mutex_lock(&link->lock);
    pending = link->revokes_done != link->revokes_sent;
    qemu_mutex_unlock(&link->lock);
    return pending;
}

/*
 * Once the IOThread has stopped, a bottom half would never run (or would
 * leak into its finalized context): run @fn here instead.  The link is
 * down by then, so it sends nothing.
 */
void pcie_ep_link_run_in_iothread(PCIeEPLink *link, QEMUBHFunc *fn,
                                  void *opaque)
{
    if (qatomic_read(&link->stopped)) {
        fn(opaque);
        return;
    }
    aio_bh_schedule_oneshot(iothread_get_aio_context(link->iothread), fn,
                            opaque);
}

/*
 * Receiving
 */

/*
 * The payload a message of this header carries; -1 if it is malformed.
 * @len is signed and wide, so that each "? len : -1" below is: with an
 * unsigned 32-bit one, -1 came back as 4 GiB of payload to wait for, and
 * a bad length wedged the link instead of taking it down.
 */
static int64_t payload_len(PCIeEPLink *link, const PCIeEPLinkHdr *hdr)
{
    int64_t len = le32_to_cpu(hdr->len);

    switch (hdr->type) {
    case PCIE_EP_LINK_HELLO:
        /* A version-1 HELLO is read, to refuse it by its version. */
        return (len == sizeof(PCIeEPLinkHello) ||
                len == PCIE_EP_LINK_HELLO_V1_LEN) ? len : -1;
    case PCIE_EP_LINK_CFG_RD:
    case PCIE_EP_LINK_CFG_WR:
        /* A function's configuration space is 4 KiB: no address aliases. */
        if ((len != 1 && len != 2 && len != 4) ||
            le64_to_cpu(hdr->addr) > PCIE_EP_LINK_CFG_SIZE - len) {
            return -1;
        }
        return hdr->type == PCIE_EP_LINK_CFG_WR ? 4 : 0;
    case PCIE_EP_LINK_MEM_RD:
        return (len && len <= PCIE_EP_LINK_MAX_PAYLOAD) ? 0 : -1;
    case PCIE_EP_LINK_MEM_WR:
        return (len && len <= PCIE_EP_LINK_MAX_PAYLOAD) ? len : -1;
    case PCIE_EP_LINK_CPL:
        return len <= PCIE_EP_LINK_MAX_PAYLOAD ? len : -1;
    case PCIE_EP_LINK_UP:
        return len == sizeof(PCIeEPLinkUp) ? len : -1;
    case PCIE_EP_LINK_DOWN:
    case PCIE_EP_LINK_HOT_RESET:
    case PCIE_EP_LINK_REVOKE:
        return len == 0 ? 0 : -1;
    case PCIE_EP_LINK_SHM:
        return len == sizeof(PCIeEPLinkShm) ? len : -1;
    case PCIE_EP_LINK_MAP_RD:
        return len == sizeof(PCIeEPLinkMapRd) ? len : -1;
    case PCIE_EP_LINK_CFG_IMAGE:
        /* Whole dwords of the host-visible part, to the host only */
        if (link->role != PCIE_EP_LINK_ROLE_HOST || !len || len % 12 ||
            len / 3 > PCIE_EP_LINK_IMAGE_CHUNK || le64_to_cpu(hdr->addr) % 4 ||
            le64_to_cpu(hdr->addr) > PCIE_EP_LINK_IMAGE_SIZE - len / 3) {
            return -1;
        }
        return len;
    default:
        return -1;
    }
}

static void link_fail(PCIeEPLink *link, const char *why)
{
    error_report("%s: %s; taking the link down", link->name, why);
    link->p->rxlen = 0;
    qemu_chr_fe_disconnect(&link->chr);
}

typedef struct LinkFail {
    PCIeEPLink *link;
    unsigned connection;
    char *why;
} LinkFail;

static void link_fail_bh(void *opaque)
{
    LinkFail *f = opaque;

    if (pcie_ep_link_connection(f->link) == f->connection) {
        link_fail(f->link, f->why);
    }
    g_free(f->why);
    g_free(f);
}

/* The IOThread takes it down, between two messages it parses. */
void pcie_ep_link_fail(PCIeEPLink *link, const char *why)
{
    LinkFail *f = g_new(LinkFail, 1);

    *f = (LinkFail) {
        .link = link, .connection = pcie_ep_link_connection(link),
        .why = g_strdup(why),
    };
    pcie_ep_link_run_in_iothread(link, link_fail_bh, f);
}

static void report_path(PCIeEPLink *link, uint32_t peer_features)
{
    const char *why;

    if (link->peer_shm) {
        return;     /* pcie_ep_fastpath_connected() reports what it shares */
    }
    if (!link->fast_path) {
        why = "fast-path=off here";
    } else if (!link->local_shm) {
        why = "this chardev cannot pass file descriptors (not a UNIX socket)";
    } else {
        why = "the link partner does not offer shared memory";
    }
    info_report("%s: message path only: %s", link->name, why);
}

static bool handle_hello(PCIeEPLink *link, const PCIeEPLinkHello *hello,
                         uint32_t len)
{
    uint32_t features;

    uint16_t want = link->role == PCIE_EP_LINK_ROLE_EP ?
                    PCIE_EP_LINK_ROLE_HOST : PCIE_EP_LINK_ROLE_EP;

    if (le32_to_cpu(hello->magic) != PCIE_EP_LINK_MAGIC) {
        link_fail(link, "the peer does not speak the endpoint link protocol");
        return false;
    }
    if (le16_to_cpu(hello->version) != PCIE_EP_LINK_VERSION) {
        g_autofree char *why = g_strdup_printf(
            "the peer speaks version %u of the link protocol, not %u",
            le16_to_cpu(hello->version), PCIE_EP_LINK_VERSION);
        link_fail(link, why);
        return false;
    }
    if (le16_to_cpu(hello->role) != want) {
        link_fail(link, "the peer has the same role (EP or host) as we do");
        return false;
    }
    if (len != sizeof(*hello)) {
        link_fail(link, "the peer's HELLO has the wrong length");
        return false;
    }
    features = le32_to_cpu(hello->features);
    link->p->hello_seen = true;
    link->peer_shm = link->local_shm && (features & PCIE_EP_LINK_FEAT_SHM);
    qemu_mutex_lock(&link->lock);
    link->up = true;
    qemu_mutex_unlock(&link->lock);
    info_report("%s: link partner connected", link->name);
    report_path(link, features);
    BQL_LOCK_GUARD();
    pcie_ep_fastpath_connected(link);
    if (link->ops->connected) {
        link->ops->connected(link->opaque, true);
    }
    return true;
}

static void handle_cpl(PCIeEPLink *link, const PCIeEPLinkHdr *hdr,
                       const uint8_t *payload)
{
    uint16_t tag = le16_to_cpu(hdr->tag);
    uint32_t len = le32_to_cpu(hdr->len);
    PCIeEPLinkWaiter *w;

    qemu_mutex_lock(&link->lock);
    w = &link->p->waiter[tag % PCIE_EP_LINK_NUM_TAGS];
    if (w->busy && !w->done && w->tag == tag && w->detached) {
        if (hdr->flags == PCIE_EP_LINK_CPL_SC) {
            revoke_confirmed(link, w->revoke_seq);
        }
        round_trip_confirmed(link, w->round_trip_seq);
        w->busy = false;
    } else if (w->busy && !w->done && w->tag == tag) {
        w->status = hdr->flags;
        w->len = len;
        memcpy(w->data, payload, len);
        w->done = true;
        qemu_cond_broadcast(&link->cond);
    }
    qemu_mutex_unlock(&link->lock);
}

/* A request we served: a decode error is an Unsupported Request */
static void send_cpl(PCIeEPLink *link, uint16_t tag, MemTxResult res,
                     const void *data, unsigned len)
{
    uint8_t status = res == MEMTX_OK ? PCIE_EP_LINK_CPL_SC :
                     res == MEMTX_DECODE_ERROR ? PCIE_EP_LINK_CPL_UR :
                     PCIE_EP_LINK_CPL_CA;

    link_send(link, PCIE_EP_LINK_CPL, status, tag, len, 0, data, len);
}

void pcie_ep_link_complete(PCIeEPLink *link, uint16_t tag, MemTxResult res,
                           const void *data, unsigned len)
{
    send_cpl(link, tag, res, data, len);
}

/* The oldest file descriptor that came with the stream, or -1 */
static int take_rx_fd(PCIeEPLink *link)
{
    int fd;

    if (!link->p->rx_nfds) {
        return -1;
    }
    fd = link->p->rx_fds[0];
    memmove(link->p->rx_fds, link->p->rx_fds + 1,
            --link->p->rx_nfds * sizeof(link->p->rx_fds[0]));
    return fd;
}

static void close_rx_fds(PCIeEPLink *link)
{
    int fd;

    while ((fd = take_rx_fd(link)) >= 0) {
        close(fd);
    }
}

/* fds arrive with the bytes of their message: keep them in order. */
static void collect_rx_fds(PCIeEPLink *link)
{
    int fds[PCIE_EP_LINK_MAX_SHM];
    int n = qemu_chr_fe_get_msgfds(&link->chr, fds, ARRAY_SIZE(fds));

    for (int i = 0; i < n; i++) {
        if (link->p->rx_nfds < ARRAY_SIZE(link->p->rx_fds)) {
            link->p->rx_fds[link->p->rx_nfds++] = fds[i];
        } else {
            close(fds[i]);
        }
    }
}

static void handle_shm(PCIeEPLink *link, const PCIeEPLinkShm *shm)
{
    int fd = take_rx_fd(link);

    if (fd < 0 || !link->peer_shm) {
        if (fd >= 0) {
            close(fd);
        }
        link_fail(link, "SHM without a file descriptor or a fast path");
        return;
    }
    if (!pcie_ep_fastpath_import_shm(link, shm, fd)) {
        link_fail(link, "malformed SHM (bad id or size)");
    }
}

/* A request from the peer: runs with the BQL, like a device access. */
static void handle_request(PCIeEPLink *link, const PCIeEPLinkHdr *hdr,
                           const uint8_t *payload)
{
    const PCIeEPLinkOps *ops = link->ops;
    uint16_t tag = le16_to_cpu(hdr->tag);
    uint32_t len = le32_to_cpu(hdr->len);
    uint64_t addr = le64_to_cpu(hdr->addr);
    uint8_t data[PCIE_EP_LINK_MAX_PAYLOAD];
    MemTxResult res = MEMTX_ERROR;
    uint32_t val;

    BQL_LOCK_GUARD();
    switch (hdr->type) {
    case PCIE_EP_LINK_CFG_RD:
        val = ops->cfg_read ? ops->cfg_read(link->opaque, addr, len) : ~0u;
        val = cpu_to_le32(val);
        send_cpl(link, tag, ops->cfg_read ? MEMTX_OK : MEMTX_ERROR, &val,
                 len);
        break;
    case PCIE_EP_LINK_CFG_WR:
        if (ops->cfg_write) {
            memcpy(&val, payload, sizeof(val));
            ops->cfg_write(link->opaque, addr, le32_to_cpu(val), len);
        }
        break;
    case PCIE_EP_LINK_MEM_RD:
        memset(data, 0xff, len);
        if (ops->mem_read) {
            res = ops->mem_read(link->opaque, addr, data, len);
        }
        send_cpl(link, tag, res, data, len);
        break;
    case PCIE_EP_LINK_MEM_WR:
        if (ops->mem_write) {
            ops->mem_write(link->opaque, addr, payload, len);
        }
        break;
    case PCIE_EP_LINK_SHM:
        handle_shm(link, (const PCIeEPLinkShm *)payload);
        break;
    case PCIE_EP_LINK_MAP_RD:
        pcie_ep_fastpath_serve_map_rd(link, tag, addr, ldq_le_p(payload));
        break;
    case PCIE_EP_LINK_REVOKE:
        pcie_ep_fastpath_serve_revoke(link, tag);
        break;
    case PCIE_EP_LINK_CFG_IMAGE:
        if (ops->cfg_image) {
            ops->cfg_image(link->opaque, tag, addr, payload, len);
        }
        break;
    default:
        if (ops->link_event) {
            ops->link_event(link->opaque, hdr->type, addr, payload, len);
        }
        break;
    }
}

static void handle_msg(PCIeEPLink *link, const PCIeEPLinkHdr *hdr,
                       const uint8_t *payload)
{
    trace_pcie_ep_link_recv(link->name, msg_name[hdr->type],
                            le16_to_cpu(hdr->tag), le64_to_cpu(hdr->addr),
                            le32_to_cpu(hdr->len));
    if (hdr->type == PCIE_EP_LINK_HELLO) {
        handle_hello(link, (const PCIeEPLinkHello *)payload,
                     le32_to_cpu(hdr->len));
    } else if (!link->p->hello_seen) {
        link_fail(link, "message before HELLO");
    } else if (hdr->type == PCIE_EP_LINK_CPL) {
        handle_cpl(link, hdr, payload);
    } else {
        handle_request(link, hdr, payload);
    }
}

static int link_can_read(void *opaque)
{
    PCIeEPLink *link = opaque;

    return sizeof(link->p->rxbuf) - link->p->rxlen;
}

static void link_read(void *opaque, const uint8_t *buf, int size)
{
    PCIeEPLink *link = opaque;
    unsigned gen = qatomic_read(&link->conn_gen);

    if (gen != link->p->rx_gen) {
        /* The first bytes of a new connection */
        link->p->rx_gen = gen;
        link->p->rxlen = 0;
        link->p->hello_seen = false;
        close_rx_fds(link);
    }
    send_hello(link);
    collect_rx_fds(link);

    assert(link->p->rxlen + size <= sizeof(link->p->rxbuf));
    memcpy(link->p->rxbuf + link->p->rxlen, buf, size);
    link->p->rxlen += size;

    while (link->p->rxlen >= sizeof(PCIeEPLinkHdr)) {
        PCIeEPLinkHdr hdr;
        int64_t plen;
        size_t total;

        memcpy(&hdr, link->p->rxbuf, sizeof(hdr));
        plen = payload_len(link, &hdr);
        /*
         * Flags are a CPL's status (SC, UR or CA; 0xff, "no completion",
         * is never on the wire); nothing else has any.
         */
        if (plen < 0 || (hdr.type == PCIE_EP_LINK_CPL ?
                         hdr.flags > PCIE_EP_LINK_CPL_CA : hdr.flags)) {
            g_autofree char *why = g_strdup_printf(
                "malformed message (type %u, flags 0x%x, length %u)",
                hdr.type, hdr.flags, le32_to_cpu(hdr.len));
            link_fail(link, why);
            return;
        }
        total = sizeof(hdr) + plen;
        if (link->p->rxlen < total) {
            return;
        }
        handle_msg(link, &hdr, link->p->rxbuf + sizeof(hdr));
        if (!link->p->rxlen) {
            return;     /* link_fail() dropped the rest */
        }
        memmove(link->p->rxbuf, link->p->rxbuf + total, link->p->rxlen - total);
        link->p->rxlen -= total;
    }
}

/* No completion will come: wake every waiter with a Completer Abort. */
static bool link_fail_waiters(PCIeEPLink *link)
{
    bool was_up;

    qemu_mutex_lock(&link->lock);
    was_up = link->up;
    link->up = false;
    complete_waiters(link, true);
    qemu_mutex_unlock(&link->lock);
    qatomic_set(&link->open, false);
    /* A vCPU waiting for room in the queue: no room will come. */
    qemu_mutex_lock(&link->send_lock);
    qemu_cond_broadcast(&link->tx_cond);
    qemu_mutex_unlock(&link->send_lock);
    return was_up;
}

static void link_closed(PCIeEPLink *link)
{
    bool was_up = link_fail_waiters(link);

    /*
     * Under send_lock: nothing can be queued for the next connection
     * before its HELLO (link_queue() checks open and up under it).
     */
    qemu_mutex_lock(&link->send_lock);
    qatomic_inc(&link->conn_gen);
    qatomic_set(&link->open, false);
    qemu_mutex_unlock(&link->send_lock);
    /* What was queued for that connection goes nowhere: drop it. */
    qemu_bh_schedule(link->tx_bh);

    if (was_up) {
        warn_report("%s: link partner gone; link down", link->name);
        BQL_LOCK_GUARD();
        pcie_ep_fastpath_disconnected(link);
        if (link->ops->connected) {
            link->ops->connected(link->opaque, false);
        }
    }
}

static void link_event(void *opaque, QEMUChrEvent event)
{
    PCIeEPLink *link = opaque;

    switch (event) {
    case CHR_EVENT_OPENED:
        send_hello(link);
        break;
    case CHR_EVENT_CLOSED:
        link_closed(link);
        break;
    default:
        break;
    }
}

/*
 * QEMU is shutting down: stop serving the socket before the chardev is
 * finalized, which is not safe while the IOThread still runs its
 * reconnect timer or handlers.  The IOThread may be waiting for the BQL.
 */
static void link_shutdown(Notifier *n, void *data)
{
    PCIeEPLink *link = container_of(n, PCIeEPLink, shutdown);

    /*
     * -action shutdown=pause (-no-shutdown): the VM only stops, and may
     * be reset and continued; QEMU's exit (quit, a signal) changes the
     * action to poweroff first and comes here again.
     */
    if (shutdown_action == SHUTDOWN_ACTION_PAUSE) {
        return;
    }
    qatomic_set(&link->stopping, true);
    bql_unlock();
    iothread_stop(link->iothread);
    qatomic_set(&link->stopped, true);
    bql_lock();
    link_fail_waiters(link);
}

bool pcie_ep_link_is_up(PCIeEPLink *link)
{
    return qatomic_read(&link->up);
}

/* A timeout above INT_MAX ms would abort in qemu_cond_timedwait(). */
bool pcie_ep_link_check_properties(PCIeEPLink *link, Error **errp)
{
    Chardev *chr = qemu_chr_fe_get_driver(&link->chr);

    /*
     * Only a socket can be closed on the peer: on malformed input the
     * link must go down, not resynchronise in the middle of a stream.
     */
    if (chr && !object_dynamic_cast(OBJECT(chr), TYPE_CHARDEV_SOCKET)) {
        error_setg(errp, "chardev '%s' is not a socket: the link needs a "
                   "socket chardev (unix or tcp)", chr->label);
        return false;
    }
    if (!link->timeout_ms ||
        link->timeout_ms > PCIE_EP_LINK_MAX_TIMEOUT_MS) {
        error_setg(errp, "link-timeout-ms must be 1 to %u, not %u",
                   PCIE_EP_LINK_MAX_TIMEOUT_MS, link->timeout_ms);
        return false;
    }
    return true;
}

bool pcie_ep_link_init(PCIeEPLink *link, const char *name, uint16_t role,
                       const PCIeEPLinkOps *ops, void *opaque, Error **errp)
{
    static unsigned count;
    g_autofree char *id = g_strdup_printf("pcie-ep-link-%u", count++);
    AioContext *ctx;

    if (!qemu_chr_fe_backend_connected(&link->chr)) {
        return true;
    }

    /* A connection and the requests in flight cannot move with the VM. */
    error_setg(&link->migration_blocker, "%s: a VM with an endpoint link "
               "cannot migrate", name);
    if (migrate_add_blocker(&link->migration_blocker, errp) < 0) {
        return false;
    }
    link->name = g_strdup(name);
    link->p = g_new0(PCIeEPLinkPriv, 1);
    link->role = role;
    link->ops = ops;
    link->opaque = opaque;
    qemu_mutex_init(&link->lock);
    qemu_mutex_init(&link->send_lock);
    qemu_cond_init(&link->cond);
    qemu_cond_init(&link->tx_cond);
    QSIMPLEQ_INIT(&link->txq);
    pcie_ep_fastpath_init(link);
    link->iothread = iothread_create(id, errp);
    if (!link->iothread) {
        pcie_ep_fastpath_cleanup(link);
        qemu_cond_destroy(&link->cond);
        qemu_cond_destroy(&link->tx_cond);
        qemu_mutex_destroy(&link->send_lock);
        qemu_mutex_destroy(&link->lock);
        g_clear_pointer(&link->name, g_free);
        g_clear_pointer(&link->p, g_free);
        migrate_del_blocker(&link->migration_blocker);
        return false;
    }
    ctx = iothread_get_aio_context(link->iothread);
    link->tx_bh = aio_bh_new(ctx, tx_drain, link);
    link->tx_timer = aio_timer_new(ctx, QEMU_CLOCK_REALTIME, SCALE_MS,
                                   tx_stall_check, link);
    qemu_chr_fe_set_handlers(&link->chr, link_can_read, link_read, link_event,
                             NULL, link,
                             iothread_get_g_main_context(link->iothread),
                             true);
    if (!object_property_find(OBJECT(opaque), "link-tx-dropped")) {
        object_property_add_uint64_ptr(OBJECT(opaque), "link-tx-dropped",
                                       &link->tx_dropped, OBJ_PROP_FLAG_READ);
    }
    link->shutdown.notify = link_shutdown;
    qemu_register_shutdown_notifier(&link->shutdown);
    return true;
}

void pcie_ep_link_cleanup(PCIeEPLink *link)
{
    if (!link->name) {
        return;
    }
    notifier_remove(&link->shutdown);
    qatomic_set(&link->stopping, true);
    if (link->iothread) {
        iothread_stop(link->iothread);
    }
    qatomic_set(&link->stopped, true);
    qemu_chr_fe_deinit(&link->chr, false);
    if (link->iothread) {
        tx_cleanup(link);
        iothread_destroy(link->iothread);
        link->iothread = NULL;
    }
    close_rx_fds(link);
    pcie_ep_fastpath_cleanup(link);
    qemu_cond_destroy(&link->cond);
    qemu_cond_destroy(&link->tx_cond);
    qemu_mutex_destroy(&link->send_lock);
    qemu_mutex_destroy(&link->lock);
    g_free(link->name);
    g_clear_pointer(&link->p, g_free);
    migrate_del_blocker(&link->migration_blocker);
}
