/*
 * Bare-metal SMP guests for tests/peer/hostile-peer.py
 *
 * CPU 0 makes accesses that wait on the link partner (which answers
 * slowly on purpose); meanwhile CPU 1 hammers other registers of the same
 * device, and of the same region.  A device that dropped the BQL inside
 * an MMIO handler with QEMU's re-entrancy guard still engaged would fail
 * every one of CPU 1's accesses with a synchronous external abort; the
 * vector table in start.S counts them.  The result goes to the PL011.
 *
 * Built twice: -DEP_GUEST drives dw-pcie-ep's window, else the host's
 * dw-pcie-ep-function (BAR0, with ECAM and BAR0 from CPU 1).  With
 * -DPOWEROFF_GUEST as well, CPU 0 brings the link up and powers off;
 * with -DFLOOD_GUEST, it writes 4 MiB through the window.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>

#define UART        0x09000000UL
#define PSCI_CPU_ON 0xc4000003UL
#define PSCI_SYSTEM_OFF 0x84000008UL

volatile uint64_t abort_count[2];
static volatile int cpu1_go, cpu1_stop, cpu1_done;
static volatile uint64_t cpu1_reads, cpu1_bad, cpu1_bad_value;

long psci_call(unsigned long fn, unsigned long a1, unsigned long a2,
               unsigned long a3);
void secondary_entry(void);
void main0(void);
void main1(void);

static inline uint32_t rd32(uintptr_t a)
{
    return *(volatile uint32_t *)a;
}

static inline void wr32(uintptr_t a, uint32_t v)
{
    *(volatile uint32_t *)a = v;
}

static inline void wr16(uintptr_t a, uint16_t v)
{
    *(volatile uint16_t *)a = v;
}

static void putc_(char c)
{
    while (rd32(UART + 0x18) & (1 << 5)) {
    }
    wr32(UART, c);
}

static void puts_(const char *s)
{
    while (*s) {
        putc_(*s++);
    }
}

static void putu(uint64_t v)
{
    char b[24];
    int i = 0;

    do {
        b[i++] = '0' + v % 10;
        v /= 10;
    } while (v);
    while (i) {
        putc_(b[--i]);
    }
}

static void say(const char *what, uint64_t v)
{
    puts_(" ");
    puts_(what);
    puts_("=");
    putu(v);
}

#ifdef EP_GUEST
/* dw-pcie-ep on virt's platform bus, as the qtests place it */
#define DBI         0x0c000000UL
#define ATU         0x0c002000UL
#define ELBI        0x0c003000UL
#define WINDOW      0x0d000000UL
#define NAME        "smp-ep"
#define WAIT_ADDR   WINDOW          /* CPU 0: waits on the host */
#define OTHER_ADDR  DBI             /* CPU 1: another region */
#define OTHER_WANT  0x16c3          /* DBI vendor ID, low half */
#define OTHER_MASK  0xffff

static int setup(void)
{
    static const uint32_t ob[][2] = {
        { 0x08, WINDOW }, { 0x0c, 0 }, { 0x10, WINDOW + 0xffff },
        { 0x20, 0 }, { 0x14, 0x200000 }, { 0x18, 0 },
        { 0x00, 0 }, { 0x04, 0x80000000 },
    };

    for (unsigned i = 0; i < sizeof(ob) / sizeof(ob[0]); i++) {
        wr32(ATU + ob[i][0], ob[i][1]);
    }
    wr32(ELBI, 1);                  /* LTSSM enable */
    for (uint64_t n = 0; n < 100000000; n++) {
        if (rd32(ELBI + 4) == 1) {
            return 1;
        }
    }
    return 0;
}
#else
/* virt's high ECAM; the root port at 00:01.0, the function at 01:00.0 */
#define ECAM        0x4010000000UL
#define CFG(b, d, o) (ECAM + ((uintptr_t)(b) << 20) + ((d) << 15) + (o))
#define BAR0        0x10000000UL
#define NAME        "smp-host"
#define OTHER_WANT  0x000c1b36      /* the root port's IDs */
#define OTHER_MASK  0xffffffff

static int setup(void)
{
    unsigned pos;
    uint32_t sltctl;

    wr32(CFG(0, 1, 0x18), 0x00010100);   /* bus 1 behind the port */
    wr16(CFG(0, 1, 0x20), 0x1000);       /* memory window at BAR0 */
    wr16(CFG(0, 1, 0x22), 0x1000);
    wr16(CFG(0, 1, 0x04), 0x0006);
    pos = rd32(CFG(0, 1, 0x34)) & 0xff;
    while ((rd32(CFG(0, 1, pos)) & 0xff) != 0x10) {
        pos = (rd32(CFG(0, 1, pos)) >> 8) & 0xff;
    }
    /* Power the slot on once a card is present, as pciehp does */
    for (uint64_t n = 0; !(rd32(CFG(0, 1, pos + 0x18)) >> 16 & 0x40); n++) {
        if (n > 100000000) {
            return 0;
        }
    }
    sltctl = rd32(CFG(0, 1, pos + 0x18)) & 0xffff;
    wr16(CFG(0, 1, pos + 0x18), (sltctl & ~0x7c0) | 0x100);
    for (uint64_t n = 0; rd32(CFG(1, 0, 0)) != 0xb500104c; n++) {
        if (n > 10000) {
            return 0;
        }
    }
    wr32(CFG(1, 0, 0x10), BAR0);
    wr16(CFG(1, 0, 0x04), 0x0006);
    return 1;
}
#endif

/* CPU 1: reads @addr until told to stop; aborts land in abort_count[1] */
static volatile uintptr_t cpu1_addr;
static volatile uint32_t cpu1_mask, cpu1_want;

void main1(void)
{
    for (;;) {
        while (!cpu1_go) {
        }
        while (!cpu1_stop) {
            uint64_t before = abort_count[1];
            uint32_t v = rd32(cpu1_addr);

            cpu1_reads++;
            if (abort_count[1] == before && (v & cpu1_mask) != cpu1_want) {
                cpu1_bad++;
                cpu1_bad_value = v;
            }
        }
        cpu1_go = 0;
        cpu1_done = 1;
    }
}

/*
 * One phase: CPU 0 makes @n reads at @wait_addr, each waiting on the
 * link partner, while CPU 1 reads @addr, which must read @want.
 */
static void phase(const char *name, uintptr_t wait_addr, unsigned n,
                  uint32_t wait_want, uintptr_t addr, uint32_t mask,
                  uint32_t want)
{
    uint64_t a0 = abort_count[0], a1 = abort_count[1];
    unsigned good = 0;

    cpu1_addr = addr;
    cpu1_mask = mask;
    cpu1_want = want;
    cpu1_reads = cpu1_bad = cpu1_bad_value = 0;
    cpu1_stop = cpu1_done = 0;
    cpu1_go = 1;
    while (!cpu1_reads) {
    }
    for (unsigned i = 0; i < n; i++) {
        uint64_t before = abort_count[0];
        uint32_t v = rd32(wait_addr);

        good += abort_count[0] == before && v == wait_want;
    }
    cpu1_stop = 1;
    while (!cpu1_done) {
    }
    puts_(NAME);
    puts_(": ");
    puts_(name);
    say("cpu0_reads", n);
    say("cpu0_good", good);
    say("cpu0_aborts", abort_count[0] - a0);
    say("cpu1_reads", cpu1_reads);
    say("cpu1_bad", cpu1_bad);
    say("cpu1_aborts", abort_count[1] - a1);
    say("cpu1_bad_value", cpu1_bad_value);
    puts_("\n");
}

void main0(void)
{
    if (!setup()) {
        puts_(NAME ": setup failed\n");
        return;
    }
    puts_(NAME ": ready\n");
#ifdef FLOOD_GUEST
    /* 4 MiB of posted writes through the window, to a host that stalls */
    for (unsigned n = 0; n < 8; n++) {
        for (uintptr_t a = WINDOW; a < WINDOW + 0x10000 * 8; a += 8) {
            *(volatile uint64_t *)(a & ~(uintptr_t)0x70000) = a;
        }
    }
    puts_(NAME ": flood done\n");
    return;
#endif
#ifdef POWEROFF_GUEST
    /* The harness resets and continues the VM: the link must come back. */
    psci_call(PSCI_SYSTEM_OFF, 0, 0, 0);
    puts_(NAME ": SYSTEM_OFF failed\n");
    return;
#endif
    if (psci_call(PSCI_CPU_ON, 1, (unsigned long)secondary_entry, 0)) {
        puts_(NAME ": CPU_ON failed\n");
        return;
    }
#ifdef EP_GUEST
    /* The fake host answers every MEM_RD with 0x5a bytes, slowly. */
    phase("window+dbi", WAIT_ADDR, 5, 0x5a5a5a5a, OTHER_ADDR, OTHER_MASK,
          OTHER_WANT);
    phase("window+window", WAIT_ADDR, 5, 0x5a5a5a5a, WAIT_ADDR + 4,
          0xffffffff, 0x5a5a5a5a);
#else
    /* The fake EP answers BAR reads, slowly; config is the host's copy. */
    phase("bar+ecam", BAR0, 5, 0x5a5a5a5a, CFG(1, 0, 0), 0xffffffff,
          0xb500104c);
    phase("bar+port", BAR0, 5, 0x5a5a5a5a, CFG(0, 1, 0), OTHER_MASK,
          OTHER_WANT);
    phase("bar+bar", BAR0, 5, 0x5a5a5a5a, BAR0 + 4, 0xffffffff,
          0x5a5a5a5a);
#endif
    puts_(NAME ": done\n");
}
