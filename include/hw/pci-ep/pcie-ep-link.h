/*
 * The link between an endpoint controller and a host-side PCIe function
 *
 * One end of a message stream over a chardev socket; the protocol is
 * described in docs/link-protocol.md.  Both ends use this module: the
 * endpoint controller (dw-pcie-ep) and the host side (dw-pcie-ep-link).
 *
 * Threading: the chardev is served by a private IOThread, which alone
 * writes to the socket, from a bounded output queue, and never blocks on
 * it.  Completions wake their waiters there without the BQL; requests
 * from the peer run there with the BQL held.  A caller waiting for a
 * completion drops the BQL while it waits, so two processes whose vCPUs
 * read from each other at the same time cannot deadlock.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCI_EP_PCIE_EP_LINK_H
#define HW_PCI_EP_PCIE_EP_LINK_H

#include "chardev/char-fe.h"
#include "exec/memattrs.h"
#include "system/memory.h"
#include "qemu/notify.h"
#include "qemu/queue.h"
#include "qemu/thread.h"

#define PCIE_EP_LINK_VERSION        3
#define PCIE_EP_LINK_MAGIC          0x4c455044  /* "DPEL" */
#define PCIE_EP_LINK_MAX_PAYLOAD    4096
#define PCIE_EP_LINK_NUM_TAGS       64
#define PCIE_EP_LINK_CFG_SIZE       4096    /* a function's config space */
/* The longest a request may wait: link-timeout-ms on both ends */
#define PCIE_EP_LINK_DEFAULT_TIMEOUT_MS 2000
#define PCIE_EP_LINK_MAX_TIMEOUT_MS     60000

typedef enum PCIeEPLinkMsgType {
    PCIE_EP_LINK_HELLO = 1,
    PCIE_EP_LINK_CFG_RD = 2,
    PCIE_EP_LINK_CFG_WR = 3,
    PCIE_EP_LINK_MEM_RD = 4,
    PCIE_EP_LINK_MEM_WR = 5,
    PCIE_EP_LINK_CPL = 6,
    PCIE_EP_LINK_UP = 7,
    PCIE_EP_LINK_DOWN = 8,
    PCIE_EP_LINK_HOT_RESET = 9,     /* addr: PCIE_EP_LINK_HOT_RESET_* */
    /* Version 2: the shared-memory fast path */
    PCIE_EP_LINK_SHM = 10,
    PCIE_EP_LINK_MAP_RD = 11,
    PCIE_EP_LINK_REVOKE = 12,
    /* Version 3: the host's copy of the function's config space */
    PCIE_EP_LINK_CFG_IMAGE = 13,
    PCIE_EP_LINK_MSG_MAX,
} PCIeEPLinkMsgType;

/*
 * HOT_RESET's addr: bit 0 set, the link goes through Hot Reset (a
 * secondary bus reset, a reset of the host); clear, only the function is
 * new (the host has just plugged it) and the link stays in L0.
 */
#define PCIE_EP_LINK_HOT_RESET_RETRAIN  1

/* Completion status, in the flags of a CPL */
typedef enum PCIeEPLinkCplStatus {
    PCIE_EP_LINK_CPL_SC = 0,    /* successful completion */
    PCIE_EP_LINK_CPL_UR = 1,    /* unsupported request */
    PCIE_EP_LINK_CPL_CA = 2,    /* completer abort */
    PCIE_EP_LINK_CPL_NONE = 0xff, /* not on the wire: the link went down */
} PCIeEPLinkCplStatus;

/* Every message starts with this header, little-endian on the wire. */
typedef struct QEMU_PACKED PCIeEPLinkHdr {
    uint8_t type;
    uint8_t flags;
    uint16_t tag;
    uint32_t len;       /* payload bytes, or the size of a read */
    uint64_t addr;
} PCIeEPLinkHdr;

/* HELLO payload */
typedef struct QEMU_PACKED PCIeEPLinkHello {
    uint32_t magic;
    uint16_t version;
    uint16_t role;      /* PCIE_EP_LINK_ROLE_* of the sender */
    uint32_t features;  /* PCIE_EP_LINK_FEAT_* (version 2) */
} PCIeEPLinkHello;

/* A version-1 HELLO has no features word. */
#define PCIE_EP_LINK_HELLO_V1_LEN   8

/* The sender can pass and map file descriptors, and wants the fast path. */
#define PCIE_EP_LINK_FEAT_SHM       (1u << 0)

/* SHM payload: one of the sender's RAM blocks; its fd rides along. */
typedef struct QEMU_PACKED PCIeEPLinkShm {
    uint32_t id;
    uint32_t reserved;
    uint64_t size;      /* bytes of the file that may be mapped */
} PCIeEPLinkShm;

/* MAP_RD payload: the size of the range at the header's address */
typedef struct QEMU_PACKED PCIeEPLinkMapRd {
    uint64_t size;
} PCIeEPLinkMapRd;

/*
 * One piece of a MAP_RD completion: [offset, offset + size) of the
 * range asked for is RAM at @shm_offset of shared block @shm_id.
 */
typedef struct QEMU_PACKED PCIeEPLinkExtent {
    uint64_t offset;
    uint64_t size;
    uint64_t shm_offset;
    uint32_t shm_id;
    uint32_t flags;     /* PCIE_EP_LINK_EXTENT_* */
} PCIeEPLinkExtent;

#define PCIE_EP_LINK_EXTENT_WRITE   (1u << 0)
#define PCIE_EP_LINK_MAX_EXTENTS \
    (PCIE_EP_LINK_MAX_PAYLOAD / sizeof(PCIeEPLinkExtent))
#define PCIE_EP_LINK_MAX_SHM        16
/* Every mapping is made of whole pages of this size. */
#define PCIE_EP_LINK_PAGE_SIZE      4096

#define PCIE_EP_LINK_ROLE_EP    1
#define PCIE_EP_LINK_ROLE_HOST  2

/* UP payload: what the host needs to create the function */
#define PCIE_EP_LINK_NUM_BARS   6
#define PCIE_EP_LINK_BAR_ENABLE 0x1     /* in bar_mask */
typedef struct QEMU_PACKED PCIeEPLinkUp {
    uint32_t bar_mask[6];   /* DBI2 masks: bit 0 enable, size - 1 */
    uint32_t bar_flags[6];  /* the BAR registers' type bits */
} PCIeEPLinkUp;

/*
 * What BAR @bar of these DBI2 masks and type bits (host-endian) decodes:
 * the mask of its size (over both halves of a 64-bit BAR, with the type
 * bits), whether it is I/O and 64-bit.  False for a disabled BAR; the
 * upper half of a 64-bit BAR is the lower half's.  The one decoder both
 * ends use: the EP for BAR decode, the host for the BARs it registers.
 */
static inline bool pcie_ep_bar_decode(const uint32_t *mask,
                                      const uint32_t *flags, int bar,
                                      uint64_t *size_mask, bool *io,
                                      bool *is64)
{
    *io = flags[bar] & 0x1;     /* PCI_BASE_ADDRESS_SPACE_IO */
    *is64 = !*io && bar + 1 < PCIE_EP_LINK_NUM_BARS &&
            (flags[bar] & 0x6) == 0x4;      /* PCI_BASE_ADDRESS_MEM_TYPE_64 */
    *size_mask = mask[bar] | (*io ? 0x3 : 0xf);
    if (*is64) {
        *size_mask |= (uint64_t)mask[bar + 1] << 32;
    }
    return mask[bar] & PCIE_EP_LINK_BAR_ENABLE;
}

/*
 * CFG_IMAGE (EP to host, posted): bytes [addr, addr + n) of the function's
 * config space as the host sees it, then their write and write-1-to-clear
 * masks; len = 3 * n.  The tag counts the host's CFG_WRs the image has
 * seen (mod 65536, from 0 on each connection).
 */
#define PCIE_EP_LINK_IMAGE_SIZE     0x700   /* the host-visible part */
#define PCIE_EP_LINK_IMAGE_CHUNK    1024    /* bytes of config per message */

typedef struct PCIeEPExtents PCIeEPExtents;
typedef struct PCIeEPLinkTx PCIeEPLinkTx;

/* What the owner of a link end does with the peer's requests. */
typedef struct PCIeEPLinkOps {
    /* All of these run with the BQL held. */
    uint32_t (*cfg_read)(void *opaque, uint32_t addr, unsigned size);
    void (*cfg_write)(void *opaque, uint32_t addr, uint32_t val,
                      unsigned size);
    MemTxResult (*mem_read)(void *opaque, uint64_t addr, void *buf,
                            unsigned len);
    MemTxResult (*mem_write)(void *opaque, uint64_t addr, const void *buf,
                             unsigned len);
    /* The peer said UP, DOWN or HOT_RESET; @addr and @payload as sent. */
    void (*link_event)(void *opaque, PCIeEPLinkMsgType event, uint64_t addr,
                       const void *payload, unsigned len);
    /* CFG_IMAGE (host only): @len bytes as pcie_ep_link_send_image() */
    void (*cfg_image)(void *opaque, uint16_t writes_seen, uint32_t offset,
                      const uint8_t *payload, unsigned len);
    /* The connection came up (HELLO exchanged) or went away. */
    void (*connected)(void *opaque, bool connected);
    /*
     * MAP_RD: fill @ext with the parts of [addr, addr + size) that this
     * end's translation takes to shared RAM, with
     * pcie_ep_fastpath_add_extent(); optional.
     */
    void (*map_read)(void *opaque, uint64_t addr, uint64_t size,
                     PCIeEPExtents *ext);
} PCIeEPLinkOps;

typedef struct PCIeEPLink {
    CharFrontend chr;
    struct IOThread *iothread;
    const PCIeEPLinkOps *ops;
    void *opaque;
    char *name;
    uint16_t role;
    uint32_t timeout_ms;

    Error *migration_blocker;

    /* Stops the IOThread before QEMU tears the chardev down */
    Notifier shutdown;
    bool stopping;      /* the IOThread is being stopped */
    bool stopped;       /* it has: it runs no more bottom halves */

    /* The receive state and the waiters (pcie-ep-link.c's own) */
    struct PCIeEPLinkPriv *p;
    /* Bumped by each closed connection, from the thread reporting it */
    unsigned conn_gen;

    /* Shared state, under @lock */
    QemuMutex lock;
    QemuCond cond;
    bool open;          /* socket connected */
    unsigned warned_conn;   /* a timeout reported on conn warned_conn - 1 */

    /* The output queue (see pcie-ep-link.c), under @send_lock */
    QemuMutex send_lock;
    QemuCond tx_cond;               /* room again for a waiting vCPU */
    QSIMPLEQ_HEAD(, PCIeEPLinkTx) txq;
    size_t tx_bytes;
    uint64_t tx_dropped;            /* posted messages it had no room for */
    unsigned hello_conn;    /* HELLO sent on connection hello_conn - 1 */
    struct QEMUBH *tx_bh;           /* drains it, in the IOThread */
    struct QEMUTimer *tx_timer;     /* the peer reads nothing: link down */
    unsigned tx_watch;              /* IOThread: waiting for room */
    unsigned tx_watch_conn;         /* on this connection */
    int64_t tx_blocked_since;       /* ms; 0 while the socket takes it */
    unsigned tx_blocked_conn;       /* on this connection */
    int64_t tx_unread_at_block;     /* the peer's unread bytes then */
    unsigned tx_broken_conn;        /* writes failed on conn N - 1 */
    bool up;            /* HELLO exchanged */
    uint32_t revokes_sent;      /* REVOKEs numbered so far */
    uint32_t revokes_done;      /* the last one the peer completed */
    uint32_t round_trips_sent;  /* pcie_ep_link_round_trip()s numbered */
    uint32_t round_trips_done;  /* the last one the peer completed */
    /* The owner's, if set: scheduled whenever the peer completes one */
    struct QEMUBH *revokes_done_bh;

    /* The fast path (pcie-ep-fastpath.c); BQL */
    bool fast_path;                 /* property: offer the fast path */
    AddressSpace *shared_as;        /* whose RAM this end offers */
    bool local_shm;                 /* we offer it on this connection */
    bool peer_shm;                  /* both ends offered it */
    struct PCIeEPFastPath *fp;
} PCIeEPLink;

/*
 * Start serving @link->chr, which a qdev chardev property (or
 * qemu_chr_fe_init()) has set up; returns false with @errp set if that
 * fails, and does nothing (returning true) if there is no chardev.
 */
/* The link's properties are sane: call before anything is allocated. */
bool pcie_ep_link_check_properties(PCIeEPLink *link, Error **errp);
/* @opaque is the device that owns the link. */
bool pcie_ep_link_init(PCIeEPLink *link, const char *name, uint16_t role,
                       const PCIeEPLinkOps *ops, void *opaque, Error **errp);
void pcie_ep_link_cleanup(PCIeEPLink *link);

/* The peer is there and has said HELLO. */
bool pcie_ep_link_is_up(PCIeEPLink *link);

/*
 * A non-posted read: waits for the completion, with the BQL dropped.
 * On a timeout, a dead peer or an error status the buffer reads as all
 * ones and the result says why: MEMTX_DECODE_ERROR for an Unsupported
 * Request, MEMTX_ACCESS_ERROR for no completion, MEMTX_ERROR otherwise.
 */
MemTxResult pcie_ep_link_read(PCIeEPLink *link, PCIeEPLinkMsgType type,
                              uint64_t addr, void *buf, unsigned len);
/*
 * The output queue has room for posted writes: a writer that must not
 * wait (the main loop: a device's DMA) asks first, and comes back later.
 */
bool pcie_ep_link_has_room(PCIeEPLink *link);

/*
 * A posted write (CFG_WR is posted too: ordering comes from the stream);
 * false if it was not queued.
 */
bool pcie_ep_link_write(PCIeEPLink *link, PCIeEPLinkMsgType type,
                        uint64_t addr, const void *buf, unsigned len);
/*
 * A vCPU waits here, as pcie_ep_link_write() would, until the queue has
 * room for posted writes; then it may send a few with pcie_ep_link_post(),
 * which never waits (it must not drop the BQL: a buffer of writes it is
 * draining would be seen half drained).  Elsewhere neither waits.  The
 * queue may so go past its soft limit by what the vCPUs drain at once
 * (a buffer each, a few KiB), far below the hard one.
 */
void pcie_ep_link_wait_for_room(PCIeEPLink *link);
bool pcie_ep_link_post(PCIeEPLink *link, uint64_t addr, const void *buf,
                       unsigned len);
/*
 * A non-posted request with a payload, whose completion may carry up to
 * @reply_max bytes (the length in *@reply_len): MAP_RD.
 * Waits as pcie_ep_link_read() does.  With @reply NULL, nobody waits:
 * the request is sent and its completion dropped.
 */
MemTxResult pcie_ep_link_request(PCIeEPLink *link, PCIeEPLinkMsgType type,
                                 uint64_t addr, const void *payload,
                                 unsigned payload_len, void *reply,
                                 unsigned reply_max, unsigned *reply_len);
/* A completion to the peer's request @tag, from any thread */
void pcie_ep_link_complete(PCIeEPLink *link, uint16_t tag, MemTxResult res,
                           const void *data, unsigned len);
/* Send a message with file descriptors (SHM); false if they cannot go */
bool pcie_ep_link_send_fds(PCIeEPLink *link, PCIeEPLinkMsgType type,
                           const void *payload, unsigned len, int *fds,
                           int nfds);
/* Posted messages dropped because the output queue was full */
uint64_t pcie_ep_link_dropped(PCIeEPLink *link);
/* Take the link down, from any thread but the IOThread, saying why */
void pcie_ep_link_fail(PCIeEPLink *link, const char *why);
/*
 * REVOKE: with @wait, until the peer completes it (or the link's
 * timeout); without, it is only sent.  *@seq is its number (never 0),
 * or 0 if it was not sent.  pcie_ep_link_revokes_pending() is true until
 * the peer has completed the last one sent, pcie_ep_link_revoke_done()
 * once it has completed number @seq (the peer serves them in order).
 */
MemTxResult pcie_ep_link_revoke(PCIeEPLink *link, bool wait, uint32_t *seq);
bool pcie_ep_link_revokes_pending(PCIeEPLink *link);
bool pcie_ep_link_revoke_done(PCIeEPLink *link, uint32_t seq);
/*
 * A round trip nobody waits for: an empty MAP_RD, which the peer serves
 * (as every request) after all that was sent before it.  Returns its
 * number (never 0), or 0 if it did not go out.
 * pcie_ep_link_round_trip_done() is true once the peer has completed
 * number @seq, or a later one: it has then served all sent before @seq.
 * One that never completes (the link went down) is never done.
 */
uint32_t pcie_ep_link_round_trip(PCIeEPLink *link);
bool pcie_ep_link_round_trip_done(PCIeEPLink *link, uint32_t seq);
/* Run @fn(@opaque) once in the thread that serves the link's socket */
void pcie_ep_link_run_in_iothread(PCIeEPLink *link, QEMUBHFunc *fn,
                                  void *opaque);
/* What a memory request from the link lands on (pcie_ep_link_reach()) */
typedef enum PCIeEPReach {
    PCIE_EP_REACH_NONE,     /* nothing a bus master may touch */
    PCIE_EP_REACH_RAM,
    PCIE_EP_REACH_MSI,      /* a write to an MSI doorbell */
} PCIeEPReach;

PCIeEPReach pcie_ep_link_reach(AddressSpace *as, hwaddr addr, unsigned len,
                               bool is_write, MemTxAttrs attrs,
                               const MemoryRegion **target);
/*
 * A memory request from the link, with @attrs, may touch [addr, addr +
 * len) of @as: RAM, or for a write an MSI doorbell (GICv3 ITS, GICv2m).
 */
bool pcie_ep_link_may_reach(AddressSpace *as, hwaddr addr, unsigned len,
                            bool is_write, MemTxAttrs attrs);
/* The calling thread serves this link's socket */
bool pcie_ep_link_in_iothread(PCIeEPLink *link);
/* Which connection this is: changes with every new one */
unsigned pcie_ep_link_connection(PCIeEPLink *link);
/* CFG_IMAGE: @len bytes of config, wmask and w1cmask at @offset */
void pcie_ep_link_send_image(PCIeEPLink *link, uint16_t writes_seen,
                             uint32_t offset, const void *payload,
                             unsigned len);
/* UP, DOWN and HOT_RESET, with @addr in the header */
void pcie_ep_link_send_event(PCIeEPLink *link, PCIeEPLinkMsgType type,
                             uint64_t addr, const void *payload,
                             unsigned len);

#endif
