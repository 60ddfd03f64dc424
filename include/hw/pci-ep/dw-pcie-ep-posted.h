/*
 * DesignWare PCIe endpoint: the AXI bridge's posted-write buffer
 *
 * The EP's CPU writes to the outbound window (addr_space) are posted:
 * each one enters a bounded FIFO and leaves it (drains) after a latency
 * in virtual time, when a read must pass it (PCIe ordering: a read
 * pushes the posted writes ahead of it), or when the FIFO is full.  The
 * owner decides what a drained write does; this file only keeps them,
 * in order, and counts why each one left.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCI_EP_DW_PCIE_EP_POSTED_H
#define HW_PCI_EP_DW_PCIE_EP_POSTED_H

#include "qemu/timer.h"
#include "migration/vmstate.h"

/* The deepest buffer the "posted-write-depth" property may ask for */
#define DW_POSTED_MAX_DEPTH     64

typedef enum DWPostedDrainCause {
    DW_POSTED_DRAIN_LATENCY,    /* its time in the bridge is over */
    DW_POSTED_DRAIN_READ,       /* a read from the window must pass it */
    DW_POSTED_DRAIN_FULL,       /* a new write needs its place */
    DW_POSTED_DRAIN__COUNT,
} DWPostedDrainCause;

typedef struct DWPostedWrite {
    uint64_t cpu_addr;      /* where the CPU wrote */
    uint64_t pci_addr;      /* its outbound translation when it was issued */
    uint64_t data;
    int64_t deadline_ns;    /* QEMU_CLOCK_VIRTUAL: when it drains by itself */
    uint8_t size;
    uint8_t region;         /* the outbound region it was issued through */
    bool hazard;            /* an iATU update came while it was in flight */
} DWPostedWrite;

typedef void DWPostedDrainFn(void *opaque, const DWPostedWrite *w,
                             DWPostedDrainCause cause);

typedef struct DWPostedBuffer {
    DWPostedWrite ent[DW_POSTED_MAX_DEPTH];
    uint32_t head;          /* the oldest */
    uint32_t count;
    QEMUTimer *timer;       /* at the oldest one's deadline */
    DWPostedDrainFn *drain;
    void *opaque;
    unsigned num_regions;

    /* Properties */
    uint32_t depth;
    uint32_t latency_ns;    /* 0: no buffer, each write goes at once */

    /* Counters */
    uint64_t writes;
    uint64_t drains[DW_POSTED_DRAIN__COUNT];
    uint64_t discarded;     /* by a reset of the controller */
} DWPostedBuffer;

bool dw_posted_check_config(const DWPostedBuffer *b, Error **errp);
/* @num_regions: outbound iATU regions, for what migration brings in */
void dw_posted_init(DWPostedBuffer *b, DWPostedDrainFn *drain, void *opaque,
                    unsigned num_regions);
void dw_posted_cleanup(DWPostedBuffer *b);

static inline bool dw_posted_enabled(const DWPostedBuffer *b)
{
    return b->latency_ns != 0;
}

static inline unsigned dw_posted_pending(const DWPostedBuffer *b)
{
    return b->count;
}

/* Those not due yet: in flight, whether or not the timer has run */
unsigned dw_posted_in_flight(const DWPostedBuffer *b);
/* An iATU update: mark those in flight (see dw-pcie-ep-bridge.c) */
void dw_posted_mark_in_flight(DWPostedBuffer *b);

/* A new posted write: it waits @latency_ns (the oldest drains if full) */
void dw_posted_push(DWPostedBuffer *b, const DWPostedWrite *w);
/* Every write still in the buffer drains now, oldest first */
void dw_posted_flush(DWPostedBuffer *b, DWPostedDrainCause cause);
/* The writes whose time is over drain (virtual time has moved on) */
void dw_posted_expire(DWPostedBuffer *b);
/* A reset of the bridge: what it held is lost */
void dw_posted_discard(DWPostedBuffer *b);

extern const VMStateDescription vmstate_dw_posted;

#endif
