/*
 * DesignWare PCIe endpoint: the AXI bridge's posted-write buffer
 *
 * A FIFO of at most "depth" writes.  Every entry leaves it in order: the
 * oldest when its deadline passes (the timer, or a caller that looks at
 * virtual time first), all of them when a read must pass, the oldest
 * when a new one needs its place.  A CPU barrier reaches no device, so
 * nothing here drains on one, as on the hardware.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/host-utils.h"
#include "qapi/error.h"
#include "hw/pci-ep/dw-pcie-ep-posted.h"
#include "trace.h"

static const char *const cause_name[DW_POSTED_DRAIN__COUNT] = {
    [DW_POSTED_DRAIN_LATENCY] = "latency",
    [DW_POSTED_DRAIN_READ] = "read",
    [DW_POSTED_DRAIN_FULL] = "full",
};

/* The @i-th oldest write in the buffer */
static DWPostedWrite *entry(DWPostedBuffer *b, unsigned i)
{
    return &b->ent[(b->head + i) % DW_POSTED_MAX_DEPTH];
}

bool dw_posted_check_config(const DWPostedBuffer *b, Error **errp)
{
    if (b->depth < 1 || b->depth > DW_POSTED_MAX_DEPTH) {
        error_setg(errp, "posted-write-depth must be 1 to %u, not %u",
                   DW_POSTED_MAX_DEPTH, b->depth);
        return false;
    }
    return true;
}

static void arm_timer(DWPostedBuffer *b)
{
    if (b->count) {
        timer_mod(b->timer, entry(b, 0)->deadline_ns);
    } else {
        timer_del(b->timer);
    }
}

/* The oldest write leaves the buffer, then does what the owner says. */
static void drain_oldest(DWPostedBuffer *b, DWPostedDrainCause cause)
{
    DWPostedWrite w = *entry(b, 0);

    b->head = (b->head + 1) % DW_POSTED_MAX_DEPTH;
    b->count--;
    b->drains[cause]++;
    trace_dw_posted_drain(w.cpu_addr, w.pci_addr, w.size, cause_name[cause],
                          b->count);
    b->drain(b->opaque, &w, cause);
}

void dw_posted_expire(DWPostedBuffer *b)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

    while (b->count && b->ent[b->head].deadline_ns <= now) {
        drain_oldest(b, DW_POSTED_DRAIN_LATENCY);
    }
    arm_timer(b);
}

unsigned dw_posted_in_flight(const DWPostedBuffer *b)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    unsigned n = 0;

    for (unsigned i = 0; i < b->count; i++) {
        n += entry((DWPostedBuffer *)b, i)->deadline_ns > now;
    }
    return n;
}

void dw_posted_mark_in_flight(DWPostedBuffer *b)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

    for (unsigned i = 0; i < b->count; i++) {
        if (entry(b, i)->deadline_ns > now) {
            entry(b, i)->hazard = true;
        }
    }
}

static void posted_timer_cb(void *opaque)
{
    dw_posted_expire(opaque);
}

void dw_posted_push(DWPostedBuffer *b, const DWPostedWrite *w)
{
    DWPostedWrite *e;

    /* What is due goes first, so that it is not counted as pushed out */
    dw_posted_expire(b);
    if (b->count >= b->depth) {
        drain_oldest(b, DW_POSTED_DRAIN_FULL);
    }
    e = entry(b, b->count);
    *e = *w;
    e->hazard = false;
    e->deadline_ns = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + b->latency_ns;
    b->count++;
    b->writes++;
    trace_dw_posted_push(e->cpu_addr, e->pci_addr, e->size, b->count);
    arm_timer(b);
}

void dw_posted_flush(DWPostedBuffer *b, DWPostedDrainCause cause)
{
    /* Only what is there now: a drain that posts again does not loop. */
    for (unsigned n = b->count; n && b->count; n--) {
        drain_oldest(b, cause);
    }
    arm_timer(b);
}

void dw_posted_discard(DWPostedBuffer *b)
{
    b->discarded += b->count;
    b->head = 0;
    b->count = 0;
    timer_del(b->timer);
}

void dw_posted_init(DWPostedBuffer *b, DWPostedDrainFn *drain, void *opaque,
                    unsigned num_regions)
{
    b->num_regions = num_regions;
    b->drain = drain;
    b->opaque = opaque;
    b->head = 0;
    b->count = 0;
    b->timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, posted_timer_cb, b);
}

void dw_posted_cleanup(DWPostedBuffer *b)
{
    g_clear_pointer(&b->timer, timer_free);
}

/*
 * What came in must fit this buffer: its depth, a latency (with none,
 * nothing would drain it in order with new writes), sizes that a CPU
 * access to the window has, and regions the iATU has.
 */
static int dw_posted_post_load(void *opaque, int version_id)
{
    DWPostedBuffer *b = opaque;

    if (b->head >= DW_POSTED_MAX_DEPTH || b->count > b->depth ||
        (b->count && !dw_posted_enabled(b))) {
        return -EINVAL;
    }
    for (unsigned i = 0; i < b->count; i++) {
        if (!is_power_of_2(entry(b, i)->size) || entry(b, i)->size > 8 ||
            entry(b, i)->region >= b->num_regions) {
            return -EINVAL;
        }
    }
    arm_timer(b);
    return 0;
}

static const VMStateDescription vmstate_dw_posted_write = {
    .name = "dw-pcie-ep/posted-write",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(cpu_addr, DWPostedWrite),
        VMSTATE_UINT64(pci_addr, DWPostedWrite),
        VMSTATE_UINT64(data, DWPostedWrite),
        VMSTATE_INT64(deadline_ns, DWPostedWrite),
        VMSTATE_UINT8(size, DWPostedWrite),
        VMSTATE_UINT8(region, DWPostedWrite),
        VMSTATE_BOOL(hazard, DWPostedWrite),
        VMSTATE_END_OF_LIST()
    },
};

const VMStateDescription vmstate_dw_posted = {
    .name = "dw-pcie-ep/posted",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = dw_posted_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(head, DWPostedBuffer),
        VMSTATE_UINT32(count, DWPostedBuffer),
        VMSTATE_STRUCT_ARRAY(ent, DWPostedBuffer, DW_POSTED_MAX_DEPTH, 1,
                             vmstate_dw_posted_write, DWPostedWrite),
        VMSTATE_END_OF_LIST()
    },
};
