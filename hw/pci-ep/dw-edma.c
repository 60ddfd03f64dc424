/*
 * DesignWare eDMA (v0 register map), integrated in the DesignWare PCIe
 * controller
 *
 * What the model does where the databook is not known to us (see
 * docs/design.md, "The eDMA"):
 * - A channel's ctrl1.CS reads 0 until it first runs, 1 while running,
 *   2 after an abort and 3 once stopped.
 * - Linked-list mode runs a data element only while its CB equals the
 *   channel's CCS; one that differs stops the channel, without an
 *   interrupt, LLP on it.  A link element (LLP) is always followed, and
 *   toggles CCS if it has TCB.  A data element with LIE or RIE sets the
 *   channel's DONE status when it completes, once the channel has gone
 *   on to its next data element or stopped; RIE also sends the done
 *   IMWr.  Non-linked-list mode moves ctrl1/size/SAR/DAR once, then sets
 *   DONE (and sends the IMWr with ctrl1.RIE).
 * - The local side reaches RAM only; anything else (MMIO, the window)
 *   aborts the channel as an error of that side.
 * - While a channel runs, the engine loads each data element into the
 *   channel's size, SAR and DAR and advances them, and LLP points at the
 *   current element: software sees the transfer in flight.
 * - int_mask has every channel masked after reset.  A write to
 *   int_status asserts the interrupt-emulation latch (the embedded
 *   doorbell) without setting status bits; a write to int_clear clears
 *   the bits written as one, and the latch.
 * - An abort sets the channel's ABORT status and one error bit (see
 *   dw-edma.h); the error bits clear when the channel starts again.
 *   Doorbell with STOP (bit 31) aborts a running channel; clearing
 *   engine_en aborts every running channel of that direction.
 * - A channel's registers do not change while it runs: writes are
 *   ignored and logged as guest errors.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/log.h"
#include "qemu/timer.h"
#include "migration/vmstate.h"
#include "system/address-spaces.h"
#include "hw/pci-ep/dw-edma.h"
#include "trace.h"

/*
 * Bounds on one tick's work per channel: bytes moved, elements fetched.
 * A tick also takes at least EDMA_MIN_TICK_NS of virtual time, so that a
 * list that never ends cannot keep virtual time from moving on.  After a
 * data element with an interrupt, up to EDMA_SETTLE_FETCHES link
 * elements are followed at once, so DONE comes with the channel settled.
 */
#define EDMA_TICK_BYTES     (64 * 1024)
#define EDMA_TICK_FETCHES   64
#define EDMA_SETTLE_FETCHES 8
#define EDMA_MIN_TICK_NS    1000
/* A channel that found no room on the link tries again this much later */
#define EDMA_STALL_NS       (100 * 1000)

#define CTRL1_WRITABLE  (R_EDMA_CH_CTRL1_CB_MASK | R_EDMA_CH_CTRL1_TCB_MASK | \
                         R_EDMA_CH_CTRL1_LLP_MASK | R_EDMA_CH_CTRL1_LIE_MASK | \
                         R_EDMA_CH_CTRL1_RIE_MASK | R_EDMA_CH_CTRL1_CCS_MASK | \
                         R_EDMA_CH_CTRL1_LLE_MASK)

static const char *const dir_name[2] = { "write", "read" };

static uint32_t ch_bits(DWEDMA *e, DWEDMADir d)
{
    return MAKE_64BIT_MASK(0, e->num_ch[d]);
}

/* The done and abort bits of the channels this direction has */
static uint32_t int_bits(DWEDMA *e, DWEDMADir d)
{
    return ch_bits(e, d) << R_EDMA_INT_DONE_SHIFT |
           ch_bits(e, d) << R_EDMA_INT_ABORT_SHIFT;
}

static unsigned chan_cs(DWEDMAChan *c)
{
    return FIELD_EX32(c->ctrl1, EDMA_CH_CTRL1, CS);
}

static void chan_set_cs(DWEDMAChan *c, unsigned cs)
{
    c->ctrl1 = FIELD_DP32(c->ctrl1, EDMA_CH_CTRL1, CS, cs);
}

static bool chan_running(DWEDMAChan *c)
{
    return chan_cs(c) == DW_EDMA_CS_RUNNING;
}

/* Interrupts */

unsigned dw_edma_num_irqs(DWEDMA *e)
{
    return e->irq_per_channel ? e->num_ch[0] + e->num_ch[1] : 1;
}

char *dw_edma_irq_name(DWEDMA *e, unsigned n)
{
    return e->irq_per_channel ? g_strdup_printf("dma%u", n) : g_strdup("dma");
}

/* Linux's dw_pcie_edma_irq_verify(): dma<i> is write channel i, then reads */
static unsigned chan_irq_line(DWEDMA *e, DWEDMADir d, unsigned n)
{
    if (!e->irq_per_channel) {
        return 0;
    }
    return d == DW_EDMA_WRITE ? n : e->num_ch[DW_EDMA_WRITE] + n;
}

static void update_irqs(DWEDMA *e)
{
    bool level[DW_EDMA_MAX_IRQS] = { [0] = e->emulated_irq };

    for (DWEDMADir d = DW_EDMA_WRITE; d <= DW_EDMA_READ; d++) {
        uint32_t pending = e->dir[d].int_status & ~e->dir[d].int_mask;

        for (unsigned n = 0; n < e->num_ch[d]; n++) {
            if (pending & (BIT(n) | BIT(n + R_EDMA_INT_ABORT_SHIFT))) {
                level[chan_irq_line(e, d, n)] = true;
            }
        }
    }
    for (unsigned i = 0; i < dw_edma_num_irqs(e); i++) {
        qemu_set_irq(e->irq[i], level[i]);
    }
}

/* The IMWr of channel @n: a memory write of its 16-bit data */
static void send_imwr(DWEDMA *e, DWEDMADir d, unsigned n, bool abort)
{
    DWEDMADirRegs *r = &e->dir[d];
    uint64_t addr = abort ? r->abort_imwr : r->done_imwr;
    uint32_t data = extract32(r->imwr_data[n / 2], 16 * (n & 1), 16);
    uint32_t le = cpu_to_le32(data);

    trace_dw_edma_imwr(dir_name[d], n, abort, addr, data);
    if (e->ops->remote_rw(e->opaque, addr, &le, sizeof(le), true) !=
        MEMTX_OK) {
        qemu_log_mask(LOG_GUEST_ERROR, "dw-edma: %s channel %u: the %s IMWr "
                      "to 0x%" PRIx64 " could not be sent\n", dir_name[d], n,
                      abort ? "abort" : "done", addr);
    }
}

static void kick(DWEDMA *e);

/*
 * IMWrs go out from the engine's tick, never from a register access: the
 * remote side may drop the BQL, which an MMIO handler must not do.
 */
static void queue_imwr(DWEDMA *e, DWEDMADir d, unsigned n, bool abort)
{
    e->ch[d][n].imwr_pending |= abort ? DW_EDMA_IMWR_ABORT :
                                        DW_EDMA_IMWR_DONE;
    kick(e);
}

static void send_pending_imwrs(DWEDMA *e)
{
    for (DWEDMADir d = DW_EDMA_WRITE; d <= DW_EDMA_READ; d++) {
        for (unsigned n = 0; n < e->num_ch[d]; n++) {
            uint8_t pending = e->ch[d][n].imwr_pending;

            e->ch[d][n].imwr_pending = 0;
            if (pending & DW_EDMA_IMWR_DONE) {
                send_imwr(e, d, n, false);
            }
            if (pending & DW_EDMA_IMWR_ABORT) {
                send_imwr(e, d, n, true);
            }
        }
    }
}

/* Channel state changes */

static void chan_done(DWEDMA *e, DWEDMADir d, unsigned n, bool remote)
{
    e->dir[d].int_status |= BIT(n);
    trace_dw_edma_done(dir_name[d], n);
    update_irqs(e);
    if (remote) {
        queue_imwr(e, d, n, false);
    }
}

/*
 * Abort channel @n: its ABORT status, the error bit @err_bit of
 * err_status[@err_reg] (none if @err_bit is 0), and the abort IMWr if the
 * element or the channel asked for remote interrupts.
 */
static void chan_abort(DWEDMA *e, DWEDMADir d, unsigned n, unsigned err_reg,
                       uint32_t err_bit, const char *why)
{
    DWEDMAChan *c = &e->ch[d][n];
    bool remote = (c->elem_loaded ? c->elem_ctrl : c->ctrl1) &
                  R_EDMA_CH_CTRL1_RIE_MASK;

    trace_dw_edma_abort(dir_name[d], n, why);
    e->aborts++;
    e->dir[d].err_status[err_reg] |= err_bit;
    e->dir[d].int_status |= BIT(n + R_EDMA_INT_ABORT_SHIFT);
    chan_set_cs(c, DW_EDMA_CS_HALTED);
    c->elem_loaded = false;
    c->epoch++;
    update_irqs(e);
    if (remote) {
        queue_imwr(e, d, n, true);
    }
}

static void chan_stop(DWEDMA *e, DWEDMADir d, unsigned n)
{
    DWEDMAChan *c = &e->ch[d][n];

    trace_dw_edma_stop(dir_name[d], n, c->llp);
    chan_set_cs(c, DW_EDMA_CS_STOPPED);
    c->epoch++;
}

/* A failed request to the remote side: which error bit it sets */
static void remote_abort(DWEDMA *e, DWEDMADir d, unsigned n, MemTxResult r)
{
    uint32_t bits;

    if (d == DW_EDMA_WRITE) {
        /* A posted write has no completion: only its ABORT status */
        chan_abort(e, d, n, 0, 0, "the remote write could not be sent");
        return;
    }
    switch (r) {
    case MEMTX_DECODE_ERROR:
        bits = R_EDMA_RD_ERR_HI_UR_MASK;
        break;
    case MEMTX_ACCESS_ERROR:
        bits = R_EDMA_RD_ERR_HI_TIMEOUT_MASK;
        break;
    default:
        bits = R_EDMA_RD_ERR_HI_CA_MASK;
        break;
    }
    chan_abort(e, d, n, 1, bits & (0x01010101u << n),
               "the remote read failed");
}

/* The engine */

/*
 * The local side reaches RAM only (see the top of the file), translation
 * by translation: behind an IOMMU, one page at a time.  A fault is the
 * IOMMU's to report.
 */
static bool local_is_ram(DWEDMA *e, uint64_t addr, unsigned len, bool write)
{
    RCU_READ_LOCK_GUARD();
    while (len) {
        hwaddr xlat, plen = len;
        MemoryRegion *mr;

        mr = address_space_translate(e->local_as, addr, &xlat, &plen, write,
                                     e->local_attrs);
        if (!memory_region_is_ram(mr) || memory_region_is_ram_device(mr) ||
            !plen) {
            return false;
        }
        plen = MIN(plen, len);
        addr += plen;
        len -= plen;
    }
    return true;
}

static MemTxResult local_rw(DWEDMA *e, uint64_t addr, void *buf,
                            unsigned len, bool write)
{
    if (!local_is_ram(e, addr, len, write)) {
        return MEMTX_DECODE_ERROR;
    }
    return address_space_rw(e->local_as, addr, e->local_attrs, buf, len,
                            write);
}

/*
 * Move up to @len bytes of channel @n's current element, in one request
 * to the remote side.  The remote side may drop the BQL: if the channel
 * stopped, aborted or started again meanwhile, that wins.  Returns the
 * bytes moved, 0 if the channel is no longer this transfer's.
 */
static uint32_t move_piece(DWEDMA *e, DWEDMADir d, unsigned n, uint32_t len)
{
    DWEDMAChan *c = &e->ch[d][n];
    uint32_t epoch = c->epoch;
    uint64_t sar = c->sar, dar = c->dar;
    uint64_t remote = d == DW_EDMA_WRITE ? dar : sar;
    MemTxResult r;

    len = MIN(len, e->ops->remote_prepare(e->opaque, remote, len,
                                          d == DW_EDMA_WRITE));
    if (c->epoch != epoch) {
        return 0;
    }
    if (!len) {
        e->stalled = true;      /* no room on the link: later */
        return 0;
    }
    if (d == DW_EDMA_WRITE) {
        if (local_rw(e, sar, e->bounce, len, false) != MEMTX_OK) {
            chan_abort(e, d, n, 0, BIT(n + R_EDMA_WR_ERR_APP_READ_SHIFT),
                       "local read error");
            return 0;
        }
        r = e->ops->remote_rw(e->opaque, dar, e->bounce, len, true);
    } else {
        r = e->ops->remote_rw(e->opaque, sar, e->bounce, len, false);
    }
    if (c->epoch != epoch) {
        return 0;
    }
    if (r != MEMTX_OK) {
        remote_abort(e, d, n, r);
        return 0;
    }
    if (d == DW_EDMA_READ &&
        local_rw(e, dar, e->bounce, len, true) != MEMTX_OK) {
        chan_abort(e, d, n, 0, BIT(n + R_EDMA_RD_ERR_LO_APP_WRITE_SHIFT),
                   "local write error");
        return 0;
    }
    trace_dw_edma_move(dir_name[d], n, sar, dar, len);
    c->size -= len;
    c->sar = sar + len;
    c->dar = dar + len;
    return len;
}

/*
 * Linked-list mode: fetch the element at LLP, following a link element
 * or loading a data element.  False if the channel stopped (a data
 * element that is not ours yet) or aborted.
 */
static bool fetch_element(DWEDMA *e, DWEDMADir d, unsigned n)
{
    DWEDMAChan *c = &e->ch[d][n];
    uint8_t lli[DW_EDMA_LLI_SIZE];
    uint32_t ctrl;

    if (local_rw(e, c->llp, lli, sizeof(lli), false) != MEMTX_OK) {
        chan_abort(e, d, n, 0, BIT(n + (d == DW_EDMA_WRITE ?
                                        R_EDMA_WR_ERR_LL_FETCH_SHIFT :
                                        R_EDMA_RD_ERR_LO_LL_FETCH_SHIFT)),
                   "linked-list element fetch error");
        return false;
    }
    ctrl = ldl_le_p(lli);
    trace_dw_edma_element(dir_name[d], n, c->llp, ctrl);
    if (ctrl & R_EDMA_CH_CTRL1_LLP_MASK) {
        if (ctrl & R_EDMA_CH_CTRL1_TCB_MASK) {
            c->ctrl1 ^= R_EDMA_CH_CTRL1_CCS_MASK;
        }
        c->llp = ldq_le_p(lli + 8);
        return true;
    }
    if (FIELD_EX32(ctrl, EDMA_CH_CTRL1, CB) !=
        FIELD_EX32(c->ctrl1, EDMA_CH_CTRL1, CCS)) {
        chan_stop(e, d, n);
        return false;
    }
    c->size = ldl_le_p(lli + 4);
    c->sar = ldq_le_p(lli + 8);
    c->dar = ldq_le_p(lli + 16);
    c->elem_ctrl = ctrl;
    c->elem_loaded = true;
    return true;
}

/* Follow link elements until a data element is loaded or the channel stops */
static void settle(DWEDMA *e, DWEDMADir d, unsigned n)
{
    DWEDMAChan *c = &e->ch[d][n];

    for (int i = 0; i < EDMA_SETTLE_FETCHES && chan_running(c) &&
         !c->elem_loaded; i++) {
        fetch_element(e, d, n);
    }
}

/* The current element (or the non-linked-list transfer) is complete. */
static void element_done(DWEDMA *e, DWEDMADir d, unsigned n)
{
    DWEDMAChan *c = &e->ch[d][n];
    uint32_t irqs = R_EDMA_CH_CTRL1_LIE_MASK | R_EDMA_CH_CTRL1_RIE_MASK;
    uint32_t ctrl = c->elem_ctrl;

    if (!(c->ctrl1 & R_EDMA_CH_CTRL1_LLE_MASK)) {
        chan_stop(e, d, n);
        chan_done(e, d, n, c->ctrl1 & R_EDMA_CH_CTRL1_RIE_MASK);
        return;
    }
    c->elem_loaded = false;
    c->llp += DW_EDMA_LLI_SIZE;
    if (ctrl & irqs) {
        /* Software that starts its next chunk on DONE finds it stopped. */
        settle(e, d, n);
        chan_done(e, d, n, ctrl & R_EDMA_CH_CTRL1_RIE_MASK);
    }
}

/* One tick of channel @n: at most EDMA_TICK_BYTES and _FETCHES of work */
static uint64_t chan_run(DWEDMA *e, DWEDMADir d, unsigned n)
{
    DWEDMAChan *c = &e->ch[d][n];
    uint32_t epoch = c->epoch;
    uint64_t budget = EDMA_TICK_BYTES, moved = 0;
    unsigned fetches = EDMA_TICK_FETCHES;

    while (chan_running(c) && c->epoch == epoch) {
        bool ll = c->ctrl1 & R_EDMA_CH_CTRL1_LLE_MASK;
        uint32_t len;

        if (ll && !c->elem_loaded) {
            if (!fetches--) {
                break;
            }
            moved += DW_EDMA_LLI_SIZE;
            fetch_element(e, d, n);
            continue;
        }
        if (!c->size) {
            element_done(e, d, n);
            continue;
        }
        if (!budget) {
            break;
        }
        len = move_piece(e, d, n, MIN(c->size, budget));
        if (!len) {
            break;
        }
        budget -= len;
        moved += len;
    }
    return moved;
}

unsigned dw_edma_running_channels(DWEDMA *e)
{
    unsigned running = 0;

    for (DWEDMADir d = DW_EDMA_WRITE; d <= DW_EDMA_READ; d++) {
        for (unsigned n = 0; n < e->num_ch[d]; n++) {
            running += chan_running(&e->ch[d][n]);
        }
    }
    return running;
}

static bool any_running(DWEDMA *e)
{
    return dw_edma_running_channels(e) != 0;
}

/* The engine runs again once @moved bytes took their time */
static void schedule_tick(DWEDMA *e, uint64_t moved)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    int64_t delay = 0;

    /* @moved is at most a few MiB: no overflow in 64 bits */
    if (e->bandwidth_mib) {
        delay = moved * NANOSECONDS_PER_SECOND /
                ((uint64_t)e->bandwidth_mib << 20);
    }
    delay = MAX(delay, e->stalled ? EDMA_STALL_NS : EDMA_MIN_TICK_NS);
    timer_mod(e->timer, now + delay);
}

static void edma_tick(void *opaque)
{
    DWEDMA *e = opaque;
    uint64_t moved = 0;

    e->stalled = false;
    send_pending_imwrs(e);
    for (DWEDMADir d = DW_EDMA_WRITE; d <= DW_EDMA_READ; d++) {
        for (unsigned n = 0; n < e->num_ch[d]; n++) {
            if (chan_running(&e->ch[d][n])) {
                moved += chan_run(e, d, n);
            }
        }
    }
    if (any_running(e)) {
        schedule_tick(e, moved);
    }
}

static void kick(DWEDMA *e)
{
    if (!e->timer) {
        return;
    }
    if (!timer_pending(e->timer)) {
        timer_mod(e->timer, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL));
    }
}

/* Doorbells and the engine enable */

static void chan_start(DWEDMA *e, DWEDMADir d, unsigned n)
{
    DWEDMAChan *c = &e->ch[d][n];
    DWEDMADirRegs *r = &e->dir[d];

    if (chan_running(c)) {
        qemu_log_mask(LOG_GUEST_ERROR, "dw-edma: doorbell for %s channel %u, "
                      "which is running: ignored\n", dir_name[d], n);
        return;
    }
    if (!(r->engine_en & 1)) {
        qemu_log_mask(LOG_GUEST_ERROR, "dw-edma: doorbell for %s channel %u "
                      "with the %s engine disabled: ignored\n", dir_name[d],
                      n, dir_name[d]);
        return;
    }
    for (unsigned i = 0; i < ARRAY_SIZE(r->err_status); i++) {
        r->err_status[i] &= ~(0x01010101u << n);
    }
    trace_dw_edma_start(dir_name[d], n, c->ctrl1, c->llp);
    c->elem_loaded = false;
    c->epoch++;
    chan_set_cs(c, DW_EDMA_CS_RUNNING);
    kick(e);
}

static void doorbell_write(DWEDMA *e, DWEDMADir d, uint32_t val)
{
    unsigned n = FIELD_EX32(val, EDMA_DOORBELL, CH);

    if (n >= e->num_ch[d]) {
        qemu_log_mask(LOG_GUEST_ERROR, "dw-edma: doorbell for %s channel %u, "
                      "of %u: ignored\n", dir_name[d], n, e->num_ch[d]);
        return;
    }
    if (!FIELD_EX32(val, EDMA_DOORBELL, STOP)) {
        chan_start(e, d, n);
    } else if (chan_running(&e->ch[d][n])) {
        chan_abort(e, d, n, 0, 0, "stopped by software");
    }
}

static void engine_en_write(DWEDMA *e, DWEDMADir d, uint32_t val)
{
    e->dir[d].engine_en = val & 1;
    if (val & 1) {
        return;
    }
    for (unsigned n = 0; n < e->num_ch[d]; n++) {
        if (chan_running(&e->ch[d][n])) {
            chan_abort(e, d, n, 0, 0, "the engine was disabled");
        }
    }
}

/* Register access: global registers */

/* The per-direction register at @off, for plain read-write storage */
static uint32_t *dir_storage(DWEDMA *e, hwaddr off, uint32_t *mask)
{
    DWEDMADirRegs *w = &e->dir[DW_EDMA_WRITE], *r = &e->dir[DW_EDMA_READ];

    *mask = UINT32_MAX;
    switch (off) {
    case A_EDMA_WR_CH_ARB_WEIGHT_LO:
        return &w->arb_weight[0];
    case A_EDMA_WR_CH_ARB_WEIGHT_HI:
        return &w->arb_weight[1];
    case A_EDMA_RD_CH_ARB_WEIGHT_LO:
        return &r->arb_weight[0];
    case A_EDMA_RD_CH_ARB_WEIGHT_HI:
        return &r->arb_weight[1];
    case A_EDMA_WR_DONE_IMWR_LO:
    case A_EDMA_WR_DONE_IMWR_HI:
        return (uint32_t *)&w->done_imwr + (off == A_EDMA_WR_DONE_IMWR_HI);
    case A_EDMA_WR_ABORT_IMWR_LO:
    case A_EDMA_WR_ABORT_IMWR_HI:
        return (uint32_t *)&w->abort_imwr + (off == A_EDMA_WR_ABORT_IMWR_HI);
    case A_EDMA_RD_DONE_IMWR_LO:
    case A_EDMA_RD_DONE_IMWR_HI:
        return (uint32_t *)&r->done_imwr + (off == A_EDMA_RD_DONE_IMWR_HI);
    case A_EDMA_RD_ABORT_IMWR_LO:
    case A_EDMA_RD_ABORT_IMWR_HI:
        return (uint32_t *)&r->abort_imwr + (off == A_EDMA_RD_ABORT_IMWR_HI);
    case A_EDMA_WR_IMWR_DATA ... A_EDMA_WR_IMWR_DATA + 0xc:
        return &w->imwr_data[(off - A_EDMA_WR_IMWR_DATA) / 4];
    case A_EDMA_RD_IMWR_DATA ... A_EDMA_RD_IMWR_DATA + 0xc:
        return &r->imwr_data[(off - A_EDMA_RD_IMWR_DATA) / 4];
    case A_EDMA_WR_LL_ERR_EN:
        *mask = int_bits(e, DW_EDMA_WRITE);
        return &w->ll_err_en;
    case A_EDMA_RD_LL_ERR_EN:
        *mask = int_bits(e, DW_EDMA_READ);
        return &r->ll_err_en;
    case A_EDMA_WR_INT_MASK:
        *mask = int_bits(e, DW_EDMA_WRITE);
        return &w->int_mask;
    case A_EDMA_RD_INT_MASK:
        *mask = int_bits(e, DW_EDMA_READ);
        return &r->int_mask;
    case A_EDMA_CTRL_DATA_ARB_PRIOR:
        return &e->arb_prior;
    }
    if (e->legacy) {
        return NULL;
    }
    switch (off) {
    case A_EDMA_WR_ENGINE_CHGROUP:
        return &w->chgroup;
    case A_EDMA_RD_ENGINE_CHGROUP:
        return &r->chgroup;
    case A_EDMA_WR_ENGINE_HSHAKE_CNT_LO:
    case A_EDMA_WR_ENGINE_HSHAKE_CNT_HI:
        return &w->hshake_cnt[off == A_EDMA_WR_ENGINE_HSHAKE_CNT_HI];
    case A_EDMA_RD_ENGINE_HSHAKE_CNT_LO:
    case A_EDMA_RD_ENGINE_HSHAKE_CNT_HI:
        return &r->hshake_cnt[off == A_EDMA_RD_ENGINE_HSHAKE_CNT_HI];
    case A_EDMA_WR_CH_PWR_EN ... A_EDMA_WR_CH_PWR_EN + 0x1c:
    case A_EDMA_RD_CH_PWR_EN ... A_EDMA_RD_CH_PWR_EN + 0x1c: {
        DWEDMADir d = off >= A_EDMA_RD_CH_PWR_EN;
        hwaddr base = d ? A_EDMA_RD_CH_PWR_EN : A_EDMA_WR_CH_PWR_EN;
        unsigned n = (off - base) / 4;

        if (n >= e->num_ch[d]) {
            return NULL;
        }
        *mask = 1;
        return &e->ch[d][n].pwr_en;
    }
    }
    return NULL;
}

static uint32_t global_read(DWEDMA *e, hwaddr off)
{
    uint32_t mask, *p;

    switch (off) {
    case A_EDMA_CTRL:
        return e->num_ch[DW_EDMA_WRITE] << R_EDMA_CTRL_NUM_WR_SHIFT |
               e->num_ch[DW_EDMA_READ] << R_EDMA_CTRL_NUM_RD_SHIFT;
    case A_EDMA_WR_ENGINE_EN:
        return e->dir[DW_EDMA_WRITE].engine_en;
    case A_EDMA_RD_ENGINE_EN:
        return e->dir[DW_EDMA_READ].engine_en;
    case A_EDMA_WR_INT_STATUS:
        return e->dir[DW_EDMA_WRITE].int_status;
    case A_EDMA_RD_INT_STATUS:
        return e->dir[DW_EDMA_READ].int_status;
    case A_EDMA_WR_ERR_STATUS:
        return e->dir[DW_EDMA_WRITE].err_status[0];
    case A_EDMA_RD_ERR_STATUS_LO:
        return e->dir[DW_EDMA_READ].err_status[0];
    case A_EDMA_RD_ERR_STATUS_HI:
        return e->dir[DW_EDMA_READ].err_status[1];
    case A_EDMA_VIEWPORT_SEL:
        return e->legacy ? e->viewport_sel : 0;
    case A_EDMA_WR_DOORBELL:
    case A_EDMA_RD_DOORBELL:
    case A_EDMA_WR_INT_CLEAR:
    case A_EDMA_RD_INT_CLEAR:
        return 0;               /* write-only */
    }
    p = dir_storage(e, off, &mask);
    return p ? *p : 0;
}

static void global_write(DWEDMA *e, hwaddr off, uint32_t val)
{
    uint32_t mask, *p;

    switch (off) {
    case A_EDMA_CTRL:
    case A_EDMA_WR_ERR_STATUS:
    case A_EDMA_RD_ERR_STATUS_LO:
    case A_EDMA_RD_ERR_STATUS_HI:
        return;                 /* read-only */
    case A_EDMA_WR_ENGINE_EN:
    case A_EDMA_RD_ENGINE_EN:
        engine_en_write(e, off == A_EDMA_RD_ENGINE_EN, val);
        return;
    case A_EDMA_WR_DOORBELL:
    case A_EDMA_RD_DOORBELL:
        doorbell_write(e, off == A_EDMA_RD_DOORBELL, val);
        return;
    case A_EDMA_WR_INT_STATUS:
    case A_EDMA_RD_INT_STATUS:
        /* Interrupt emulation: asserts, with no status bit */
        trace_dw_edma_emulated_irq(true);
        e->emulated_irq = true;
        update_irqs(e);
        return;
    case A_EDMA_WR_INT_CLEAR:
    case A_EDMA_RD_INT_CLEAR: {
        DWEDMADir d = off == A_EDMA_RD_INT_CLEAR;

        if (e->emulated_irq) {
            trace_dw_edma_emulated_irq(false);
        }
        e->dir[d].int_status &= ~val;
        e->emulated_irq = false;
        update_irqs(e);
        return;
    }
    case A_EDMA_VIEWPORT_SEL:
        if (e->legacy) {
            e->viewport_sel = val & (R_EDMA_VIEWPORT_SEL_CH_MASK |
                                     R_EDMA_VIEWPORT_SEL_READ_MASK);
        }
        return;
    }
    p = dir_storage(e, off, &mask);
    if (!p) {
        qemu_log_mask(LOG_GUEST_ERROR, "dw-edma: write of 0x%x at 0x%"
                      HWADDR_PRIx ", no register there\n", val, off);
        return;
    }
    *p = val & mask;
    if (off == A_EDMA_WR_INT_MASK || off == A_EDMA_RD_INT_MASK) {
        update_irqs(e);
    }
}

/* Register access: channel registers */

static uint32_t chan_read(DWEDMAChan *c, hwaddr reg)
{
    switch (reg) {
    case A_EDMA_CH_CTRL1:
        return c->ctrl1;
    case A_EDMA_CH_CTRL2:
        return c->ctrl2;
    case A_EDMA_CH_SIZE:
        return c->size;
    case A_EDMA_CH_SAR_LO:
        return c->sar;
    case A_EDMA_CH_SAR_HI:
        return c->sar >> 32;
    case A_EDMA_CH_DAR_LO:
        return c->dar;
    case A_EDMA_CH_DAR_HI:
        return c->dar >> 32;
    case A_EDMA_CH_LLP_LO:
        return c->llp;
    case A_EDMA_CH_LLP_HI:
        return c->llp >> 32;
    }
    return 0;
}

static void chan_write(DWEDMA *e, DWEDMADir d, unsigned n, hwaddr reg,
                       uint32_t val)
{
    DWEDMAChan *c = &e->ch[d][n];

    if (chan_running(c)) {
        qemu_log_mask(LOG_GUEST_ERROR, "dw-edma: write of 0x%x to register "
                      "0x%" HWADDR_PRIx " of %s channel %u while it runs: "
                      "ignored\n", val, reg, dir_name[d], n);
        return;
    }
    switch (reg) {
    case A_EDMA_CH_CTRL1:
        c->ctrl1 = (c->ctrl1 & ~CTRL1_WRITABLE) | (val & CTRL1_WRITABLE);
        break;
    case A_EDMA_CH_CTRL2:
        c->ctrl2 = val;
        break;
    case A_EDMA_CH_SIZE:
        c->size = val;
        break;
    case A_EDMA_CH_SAR_LO:
        c->sar = deposit64(c->sar, 0, 32, val);
        break;
    case A_EDMA_CH_SAR_HI:
        c->sar = deposit64(c->sar, 32, 32, val);
        break;
    case A_EDMA_CH_DAR_LO:
        c->dar = deposit64(c->dar, 0, 32, val);
        break;
    case A_EDMA_CH_DAR_HI:
        c->dar = deposit64(c->dar, 32, 32, val);
        break;
    case A_EDMA_CH_LLP_LO:
        c->llp = deposit64(c->llp, 0, 32, val);
        break;
    case A_EDMA_CH_LLP_HI:
        c->llp = deposit64(c->llp, 32, 32, val);
        break;
    }
}

/*
 * Which channel register @off is: in the unrolled map, per channel; in
 * the legacy map, the channel viewport_sel selects.  False if none.
 */
static bool decode_chan(DWEDMA *e, hwaddr off, DWEDMADir *d, unsigned *n,
                        hwaddr *reg)
{
    if (e->legacy) {
        if (off < 0x100 || off >= 0x100 + DW_EDMA_CH_REGS_SIZE) {
            return false;
        }
        *d = FIELD_EX32(e->viewport_sel, EDMA_VIEWPORT_SEL, READ);
        *n = FIELD_EX32(e->viewport_sel, EDMA_VIEWPORT_SEL, CH);
        *reg = off - 0x100;
    } else {
        hwaddr in;

        if (off < DW_EDMA_CH_BASE) {
            return false;
        }
        *n = (off - DW_EDMA_CH_BASE) / DW_EDMA_CH_STRIDE;
        in = (off - DW_EDMA_CH_BASE) % DW_EDMA_CH_STRIDE;
        *d = in >= DW_EDMA_CH_RD_OFFSET;
        *reg = in % DW_EDMA_CH_RD_OFFSET;
        if (*reg >= DW_EDMA_CH_REGS_SIZE) {
            return false;
        }
    }
    return *n < e->num_ch[*d];
}

static bool is_chan_space(DWEDMA *e, hwaddr off)
{
    return e->legacy ? off >= 0x100 : off >= DW_EDMA_CH_BASE;
}

static uint64_t edma_read(void *opaque, hwaddr off, unsigned size)
{
    DWEDMA *e = opaque;
    DWEDMADir d;
    unsigned n;
    hwaddr reg;
    uint32_t val;

    if (!is_chan_space(e, off)) {
        val = global_read(e, off);
    } else if (decode_chan(e, off, &d, &n, &reg)) {
        val = chan_read(&e->ch[d][n], reg);
    } else {
        val = 0;
    }
    trace_dw_edma_reg_read(off, val);
    return val;
}

static void edma_write(void *opaque, hwaddr off, uint64_t val, unsigned size)
{
    DWEDMA *e = opaque;
    DWEDMADir d;
    unsigned n;
    hwaddr reg;

    trace_dw_edma_reg_write(off, val);
    if (!is_chan_space(e, off)) {
        global_write(e, off, val);
    } else if (decode_chan(e, off, &d, &n, &reg)) {
        chan_write(e, d, n, reg, val);
    } else {
        qemu_log_mask(LOG_GUEST_ERROR, "dw-edma: write of 0x%" PRIx64
                      " at 0x%" HWADDR_PRIx ", no channel register there\n",
                      val, off);
    }
}

static const MemoryRegionOps edma_ops = {
    .read = edma_read,
    .write = edma_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 8 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};

/* Life cycle */

bool dw_edma_check_config(DWEDMA *e, Error **errp)
{
    for (DWEDMADir d = DW_EDMA_WRITE; d <= DW_EDMA_READ; d++) {
        if (e->num_ch[d] < 1 || e->num_ch[d] > DW_EDMA_MAX_CHANNELS) {
            error_setg(errp, "edma-%s-channels must be 1 to %u, not %u",
                       d == DW_EDMA_WRITE ? "wr" : "rd", DW_EDMA_MAX_CHANNELS,
                       e->num_ch[d]);
            return false;
        }
    }
    return true;
}

void dw_edma_init(DWEDMA *e, Object *owner, const DWEDMAOps *ops,
                  void *opaque, AddressSpace *local_as, MemTxAttrs attrs)
{
    e->ops = ops;
    e->opaque = opaque;
    e->local_as = local_as;
    e->local_attrs = attrs;
    e->bounce = g_malloc(EDMA_TICK_BYTES);
    memory_region_init_io(&e->mmio, owner, &edma_ops, e, "dw-edma",
                          e->legacy ? DW_EDMA_LEGACY_SIZE :
                                      DW_EDMA_UNROLL_SIZE);
    e->timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, edma_tick, e);
}

void dw_edma_cleanup(DWEDMA *e)
{
    timer_free(e->timer);
    e->timer = NULL;
    g_free(e->bounce);
    e->bounce = NULL;
}

void dw_edma_reset(DWEDMA *e)
{
    timer_del(e->timer);
    for (DWEDMADir d = DW_EDMA_WRITE; d <= DW_EDMA_READ; d++) {
        e->dir[d] = (DWEDMADirRegs) { .int_mask = int_bits(e, d) };
        for (unsigned n = 0; n < DW_EDMA_MAX_CHANNELS; n++) {
            uint32_t epoch = e->ch[d][n].epoch;

            e->ch[d][n] = (DWEDMAChan) { .epoch = epoch + 1 };
        }
    }
    e->arb_prior = 0;
    e->viewport_sel = 0;
    e->emulated_irq = false;
    update_irqs(e);
}

/*
 * Migration: a running channel resumes where its registers say, when its
 * next tick was due (the timer migrates).
 */

static int dw_edma_post_load(void *opaque, int version_id)
{
    DWEDMA *e = opaque;

    if (any_running(e)) {
        kick(e);                /* only if no tick is pending */
    }
    update_irqs(e);
    return 0;
}

static const VMStateDescription vmstate_dw_edma_chan = {
    .name = "dw-edma/channel",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(ctrl1, DWEDMAChan),
        VMSTATE_UINT32(ctrl2, DWEDMAChan),
        VMSTATE_UINT32(size, DWEDMAChan),
        VMSTATE_UINT64(sar, DWEDMAChan),
        VMSTATE_UINT64(dar, DWEDMAChan),
        VMSTATE_UINT64(llp, DWEDMAChan),
        VMSTATE_UINT32(elem_ctrl, DWEDMAChan),
        VMSTATE_BOOL(elem_loaded, DWEDMAChan),
        VMSTATE_UINT32(pwr_en, DWEDMAChan),
        VMSTATE_UINT8(imwr_pending, DWEDMAChan),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_dw_edma_dir = {
    .name = "dw-edma/direction",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(engine_en, DWEDMADirRegs),
        VMSTATE_UINT32_ARRAY(arb_weight, DWEDMADirRegs, 2),
        VMSTATE_UINT32(int_status, DWEDMADirRegs),
        VMSTATE_UINT32(int_mask, DWEDMADirRegs),
        VMSTATE_UINT32_ARRAY(err_status, DWEDMADirRegs, 2),
        VMSTATE_UINT64(done_imwr, DWEDMADirRegs),
        VMSTATE_UINT64(abort_imwr, DWEDMADirRegs),
        VMSTATE_UINT32_ARRAY(imwr_data, DWEDMADirRegs,
                             DW_EDMA_MAX_CHANNELS / 2),
        VMSTATE_UINT32(ll_err_en, DWEDMADirRegs),
        VMSTATE_UINT32(chgroup, DWEDMADirRegs),
        VMSTATE_UINT32_ARRAY(hshake_cnt, DWEDMADirRegs, 2),
        VMSTATE_END_OF_LIST()
    },
};

const VMStateDescription vmstate_dw_edma = {
    .name = "dw-edma",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = dw_edma_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT_ARRAY(dir, DWEDMA, 2, 1, vmstate_dw_edma_dir,
                             DWEDMADirRegs),
        VMSTATE_STRUCT_2DARRAY(ch, DWEDMA, 2, DW_EDMA_MAX_CHANNELS, 1,
                               vmstate_dw_edma_chan, DWEDMAChan),
        VMSTATE_UINT32(arb_prior, DWEDMA),
        VMSTATE_UINT32(viewport_sel, DWEDMA),
        VMSTATE_BOOL(emulated_irq, DWEDMA),
        VMSTATE_TIMER_PTR(timer, DWEDMA),
        VMSTATE_END_OF_LIST()
    },
};
