/*
 * QTest helpers: an SMMUv3 programmed as Linux's arm-smmu-v3 would, for
 * one master: the dw-pcie-ep controller's stream-id, or a PCI function
 * behind the host VM's SMMU
 *
 * A linear stream table whose entry for SMMU_SID translates at stage 1
 * through one context descriptor (ASID 1, faults recorded) and 3-level
 * page tables of 4 KiB pages, 39-bit IOVAs; command and event queues of
 * 16 entries.  Page n of IOVA maps IOVA_PA's page n.
 *
 * virt places a -device arm-smmuv3 named before the controller first on
 * the platform bus: its 128 KiB at the bus's base, the controller's
 * small regions after it.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TESTS_QTEST_DW_PCIE_EP_SMMU_H
#define TESTS_QTEST_DW_PCIE_EP_SMMU_H

#include "libqtest.h"

/*
 * The SMMU's registers, and the StreamID the tables translate for: the
 * controller's on the EP (a -device arm-smmuv3 on the platform bus), or
 * a PCI function's behind virt's iommu=smmuv3 (virt_smmu_start()).
 */
static uint64_t smmu_base = 0x0c000000ULL;
static uint32_t smmu_sid = 0x10;

#define SMMU                smmu_base
#define SMMU_SID            smmu_sid
#define SMMU_SIZE           0x20000
#define VIRT_SMMU           0x09050000ULL
#define SMMU_CR0            0x20
#define SMMU_CR0ACK         0x24
#define SMMU_GERROR         0x60
#define SMMU_STRTAB_BASE    0x80
#define SMMU_STRTAB_CFG     0x88
#define SMMU_CMDQ_BASE      0x90
#define SMMU_CMDQ_PROD      0x98
#define SMMU_CMDQ_CONS      0x9c
#define SMMU_EVTQ_BASE      0xa0
#define SMMU_EVTQ_PROD      0xa8
#define SMMU_EVTQ_CONS      0xac
#define SMMU_ASID           1
#define SMMU_TABLES         (0x40000000ULL + 0x400000)
/* A linear stream table of 512 StreamIDs (bus 1 is 0x100-0x1ff) */
#define STRTAB_LOG2         9
#define STRTAB              (SMMU_TABLES)
#define CDTAB               (SMMU_TABLES + 0x8000)
#define CMDQ                (SMMU_TABLES + 0x9000)
#define EVTQ                (SMMU_TABLES + 0xa000)
#define PT_L1               (SMMU_TABLES + 0xb000)
#define PT_L2               (SMMU_TABLES + 0xc000)
#define PT_L3               (SMMU_TABLES + 0xd000)
#define QLOG2               4
/* 39-bit IOVAs (T0SZ 25), 4 KiB pages: L1 index 2, L2 index 0 */
#define IOVA                0x80000000ULL
#define IOVA_PA             (0x40000000ULL + 0x500000)
#define PTE_RW              0x403ULL        /* page, AF */
#define PTE_RO              0x483ULL        /* and AP[2]: read-only */
#define PTE_BLOCK           0x401ULL        /* a level-2 block, AF */
#define STE_ABORT           (1 | 0 << 1)    /* V, Config: abort */
#define STE_BYPASS          (1 | 4 << 1)    /* V, Config: bypass */
#define CMD_CFGI_STE        0x03
#define CMD_TLBI_NH_ASID    0x11
#define CMD_TLBI_NH_VA      0x12
#define CMD_SYNC            0x46
#define EVT_F_TRANSLATION   0x10
#define EVT_F_PERMISSION    0x13

static unsigned smmu_cmds, smmu_events;

/* Page @n of IOVA maps IOVA_PA's page @n with @pte's attributes (0: none) */
static inline void smmu_map(QTestState *qts, unsigned n, uint64_t pte)
{
    qtest_writeq(qts, PT_L3 + 8 * n, pte ? (IOVA_PA + 0x1000 * n) | pte : 0);
}

/* A command: @type, @w1 its bits 63:32, @d1 its second doubleword */
static inline void smmu_cmd2(QTestState *qts, uint8_t type, uint32_t w1,
                             uint64_t d1)
{
    uint64_t at = CMDQ + 16 * (smmu_cmds % (1 << QLOG2));

    qtest_writel(qts, at, type);
    qtest_writel(qts, at + 4, w1);
    qtest_writeq(qts, at + 8, d1);
    smmu_cmds++;
    qtest_writel(qts, SMMU + SMMU_CMDQ_PROD, smmu_cmds % (2 << QLOG2));
}

static inline void smmu_cmd(QTestState *qts, uint8_t type, uint32_t w1)
{
    smmu_cmd2(qts, type, w1, 0);
}

/* The SMMU has consumed every command: what Linux polls CONS for */
static inline bool smmu_synced(QTestState *qts)
{
    return qtest_readl(qts, SMMU + SMMU_CMDQ_CONS) ==
           smmu_cmds % (2 << QLOG2);
}

/* Wait for it, as Linux does (for its 1 s; here 10 s), with no error */
static inline void smmu_sync_wait(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    while (!smmu_synced(qts) && g_get_monotonic_time() < deadline) {
        g_usleep(1000);
    }
    g_assert_true(smmu_synced(qts));
    g_assert_cmphex(qtest_readl(qts, SMMU + SMMU_GERROR), ==, 0);
}

/* What Linux does after it changes a page table: TLBI by ASID, SYNC */
static inline void smmu_tlbi_nowait(QTestState *qts)
{
    smmu_cmd(qts, CMD_TLBI_NH_ASID, SMMU_ASID << 16);
    smmu_cmd(qts, CMD_SYNC, 0);
}

static inline void smmu_tlbi(QTestState *qts)
{
    smmu_tlbi_nowait(qts);
    smmu_sync_wait(qts);
}

/*
 * What Linux does after it unmaps one leaf on an SMMU without range
 * invalidation: TLBI by VA, leaf, no TG, then SYNC
 */
static inline void smmu_tlbi_va(QTestState *qts, uint64_t iova)
{
    smmu_cmd2(qts, CMD_TLBI_NH_VA, SMMU_ASID << 16, iova | 1);
    smmu_cmd(qts, CMD_SYNC, 0);
    smmu_sync_wait(qts);
}

/* Our STE's first word: @config (STE_*), or translation at stage 1 */
static inline void smmu_set_ste(QTestState *qts, uint32_t config)
{
    qtest_writel(qts, STRTAB + 64 * SMMU_SID,
                 config ? config : 1 | 5 << 1 | (uint32_t)CDTAB);
}

/* What Linux does after it changes our STE: CFGI_STE, SYNC */
static inline void smmu_cfgi_ste(QTestState *qts)
{
    smmu_cmd(qts, CMD_CFGI_STE, SMMU_SID);
    smmu_cmd(qts, CMD_SYNC, 0);
    smmu_sync_wait(qts);
}

static inline void smmu_setup(QTestState *qts)
{
    uint64_t ste = STRTAB + 64 * SMMU_SID;

    smmu_cmds = smmu_events = 0;
    qtest_memset(qts, STRTAB, 0, PT_L3 + 0x1000 - STRTAB);
    qtest_writel(qts, ste, 1 | 5 << 1 | (uint32_t)CDTAB);  /* V, S1 */
    qtest_writel(qts, ste + 4, CDTAB >> 32);
    /* T0SZ 25, TG0 4K, EPD1, V; IPS 40 bits, AA64, R, A, ASID */
    qtest_writel(qts, CDTAB, 25 | 1u << 30 | 1u << 31);
    qtest_writel(qts, CDTAB + 4, 2 | 1 << 9 | 1 << 13 | 1 << 14 |
                 SMMU_ASID << 16);
    qtest_writeq(qts, CDTAB + 8, PT_L1);
    qtest_writeq(qts, PT_L1 + 8 * 2, PT_L2 | 3);
    qtest_writeq(qts, PT_L2, PT_L3 | 3);

    qtest_writeq(qts, SMMU + SMMU_STRTAB_BASE, STRTAB);
    qtest_writel(qts, SMMU + SMMU_STRTAB_CFG, STRTAB_LOG2);     /* linear */
    qtest_writeq(qts, SMMU + SMMU_CMDQ_BASE, CMDQ | QLOG2);
    qtest_writeq(qts, SMMU + SMMU_EVTQ_BASE, EVTQ | QLOG2);
    qtest_writel(qts, SMMU + SMMU_CR0, 1 | 1 << 2 | 1 << 3);
}

/*
 * The next event in the SMMU's queue is @type for our StreamID at @iova.
 * A posted write's event may come a little after the write: it is
 * waited for (10 s at most).
 */
static inline void expect_event(QTestState *qts, uint8_t type, uint64_t iova)
{
    uint64_t at = EVTQ + 32 * (smmu_events % (1 << QLOG2));
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    while (qtest_readl(qts, SMMU + SMMU_EVTQ_PROD) ==
           smmu_events % (2 << QLOG2) &&
           g_get_monotonic_time() < deadline) {
        g_usleep(1000);
    }
    g_assert_cmpuint(qtest_readl(qts, SMMU + SMMU_EVTQ_PROD), !=,
                     smmu_events % (2 << QLOG2));
    g_assert_cmphex(qtest_readl(qts, at) & 0xff, ==, type);
    g_assert_cmphex(qtest_readl(qts, at + 4), ==, SMMU_SID);
    g_assert_cmphex(qtest_readq(qts, at + 16), ==, iova);
    smmu_events++;
    qtest_writel(qts, SMMU + SMMU_EVTQ_CONS, smmu_events % (2 << QLOG2));
}

static inline void expect_no_event(QTestState *qts)
{
    g_assert_cmpuint(qtest_readl(qts, SMMU + SMMU_EVTQ_PROD), ==,
                     smmu_events % (2 << QLOG2));
}

#endif
