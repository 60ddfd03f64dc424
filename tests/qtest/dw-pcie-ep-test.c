/*
 * QTest for the DesignWare PCIe controller in endpoint mode
 *
 * The register probes follow what Linux 7.2 does in
 * drivers/pci/controller/dwc/pcie-designware{,-ep}.c.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "dw-pcie-ep-common.h"
#include "dw-pcie-ep-smmu.h"

/*
 * virt's platform bus starts at 0x0c000000 and places MMIO regions
 * first-fit at their natural alignment, in the order the device
 * registers them: dbi, dbi2, atu, then the 16 MiB addr_space window.
 */
#define PLATFORM_BUS_BASE   0x0c000000ULL
#define DBI                 (ep_base + 0x0000)
#define DBI2                (ep_base + 0x1000)
#define ATU                 (ep_base + 0x2000)
#define WINDOW              (PLATFORM_BUS_BASE + 0x1000000)

/*
 * Where the controller's small regions start: an SMMU placed on the
 * platform bus before it (128 KiB) moves them up; the window stays.
 */
static uint64_t ep_base = PLATFORM_BUS_BASE;

#define RAM                 0x40000000ULL

/* Type 0 header */
#define PCI_VENDOR_ID       0x00
#define PCI_DEVICE_ID       0x02
#define PCI_COMMAND         0x04
#define PCI_COMMAND_MEMORY  0x2
#define PCI_STATUS          0x06
#define PCI_CLASS_DEVICE    0x0a
#define PCI_HEADER_TYPE     0x0e
#define PCI_BAR(n)          (0x10 + 4 * (n))
#define PCI_SUBSYSTEM_ID    0x2e
#define PCI_CAP_LIST        0x34
#define PCI_INTERRUPT_PIN   0x3d

/* Capability IDs */
#define CAP_PM              0x01
#define CAP_MSI             0x05
#define CAP_EXP             0x10
#define CAP_MSIX            0x11
#define EXT_CAP_PTM         0x1f
#define EXT_CAP_REBAR       0x15

/* Port logic */
#define PORT_LINK_CONTROL   0x710
#define PORT_DEBUG0         0x728
#define PORT_DEBUG1         0x72c
#define PIPE_LOOPBACK       0x8b8
#define MISC_CONTROL_1      0x8bc
#define DBI_RO_WR_EN        0x1
#define VERSION_NUMBER      0x8f8
#define ATU_VIEWPORT        0x900
#define DMA_VIEWPORT_CTRL   0x978

/* iATU */
#define OB(i)               (ATU + 0x200 * (i))
#define IB(i)               (ATU + 0x200 * (i) + 0x100)
#define CTRL1               0x00
#define CTRL2               0x04
#define LOWER_BASE          0x08
#define UPPER_BASE          0x0c
#define LIMIT               0x10
#define LOWER_TARGET        0x14
#define UPPER_TARGET        0x18
#define UPPER_LIMIT         0x20
#define REGION_EN           0x80000000u
#define BAR_MATCH           0x40000000u
#define FUNC_NUM_MATCH_EN   0x00080000u

/*
 * Most tests look at where a window write lands at once: they run
 * without posted writes (latency 0) unless @props asks for them.
 */
static const char *posted_default(const char *props)
{
    return strstr(props, "posted-write-latency-ns") ? "" :
           ",posted-write-latency-ns=0";
}

static QTestState *ep_start_args(const char *args, const char *props)
{
    g_autofree char *smp = smp_args();

    return qtest_initf("-M virt,gic-version=3 -nic none %s %s "
                       "-device dw-pcie-ep,id=ep%s%s", smp, args,
                       posted_default(props), props);
}

static QTestState *ep_start(const char *props)
{
    return ep_start_args("", props);
}

static void ro_wr_en(QTestState *qts, bool on)
{
    uint32_t v = qtest_readl(qts, DBI + MISC_CONTROL_1);

    qtest_writel(qts, DBI + MISC_CONTROL_1,
                 on ? v | DBI_RO_WR_EN : v & ~DBI_RO_WR_EN);
}

/* The standard capability walk of PCI_FIND_NEXT_CAP */
static uint8_t find_cap(QTestState *qts, uint8_t id)
{
    uint8_t pos = qtest_readb(qts, DBI + PCI_CAP_LIST);

    for (int ttl = 48; ttl && pos >= 0x40; ttl--) {
        uint16_t ent = qtest_readw(qts, DBI + (pos & ~3));

        if ((ent & 0xff) == 0xff) {
            break;
        }
        if ((ent & 0xff) == id) {
            return pos;
        }
        pos = ent >> 8;
    }
    return 0;
}

/* The extended capability walk of PCI_FIND_NEXT_EXT_CAP */
static uint16_t find_ext_cap(QTestState *qts, uint16_t id)
{
    uint16_t pos = 0x100;

    for (int ttl = 480; ttl && pos >= 0x100; ttl--) {
        uint32_t hdr = qtest_readl(qts, DBI + pos);

        if (!hdr) {
            break;
        }
        if ((hdr & 0xffff) == id) {
            return pos;
        }
        pos = (hdr >> 20) & 0xffc;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */

static void test_header(void)
{
    QTestState *qts = ep_start("");

    g_assert_cmphex(qtest_readw(qts, DBI + PCI_VENDOR_ID), ==, 0x16c3);
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_DEVICE_ID), ==, 0xabcd);
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_CLASS_DEVICE), ==, 0xff00);
    /* Linux refuses an endpoint whose header type is not 0. */
    g_assert_cmphex(qtest_readb(qts, DBI + PCI_HEADER_TYPE) & 0x7f, ==, 0);
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_STATUS) & 0x10, ==, 0x10);
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_COMMAND), ==, 0);
    for (int bar = 0; bar < 6; bar++) {
        g_assert_cmphex(qtest_readl(qts, DBI + PCI_BAR(bar)), ==, 0);
    }
    qtest_quit(qts);
}

static void test_id_properties(void)
{
    QTestState *qts = ep_start(",vendor-id=0x1912,device-id=0x0030");

    g_assert_cmphex(qtest_readl(qts, DBI + PCI_VENDOR_ID), ==, 0x00301912);
    qtest_quit(qts);
}

static void test_version(void)
{
    QTestState *qts = ep_start("");

    /* 5.40a, in the ASCII encoding Linux compares against */
    g_assert_cmphex(qtest_readl(qts, DBI + VERSION_NUMBER), ==, 0x3534302a);
    /* No legacy eDMA: its viewport control reads all ones */
    g_assert_cmphex(qtest_readl(qts, DBI + DMA_VIEWPORT_CTRL), ==,
                    0xffffffff);
    qtest_quit(qts);

    qts = ep_start(",ip-version=4.90a");
    g_assert_cmphex(qtest_readl(qts, DBI + VERSION_NUMBER), ==, 0x3439302a);
    qtest_quit(qts);
}

static void test_dbi_ro_wr_en(void)
{
    QTestState *qts = ep_start("");

    /* Read-only while DBI_RO_WR_EN is clear */
    qtest_writew(qts, DBI + PCI_DEVICE_ID, 0x1234);
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_DEVICE_ID), ==, 0xabcd);

    ro_wr_en(qts, true);
    g_assert_cmphex(qtest_readl(qts, DBI + MISC_CONTROL_1), ==, DBI_RO_WR_EN);
    qtest_writew(qts, DBI + PCI_DEVICE_ID, 0x1234);
    qtest_writew(qts, DBI + PCI_SUBSYSTEM_ID, 0x5555);
    qtest_writeb(qts, DBI + PCI_INTERRUPT_PIN, 0x01);
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_DEVICE_ID), ==, 0x1234);
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_SUBSYSTEM_ID), ==, 0x5555);
    g_assert_cmphex(qtest_readb(qts, DBI + PCI_INTERRUPT_PIN), ==, 0x01);

    ro_wr_en(qts, false);
    qtest_writew(qts, DBI + PCI_DEVICE_ID, 0x5678);
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_DEVICE_ID), ==, 0x1234);

    /* The header type stays 0 even with DBI_RO_WR_EN set */
    ro_wr_en(qts, true);
    qtest_writeb(qts, DBI + PCI_HEADER_TYPE, 0x01);
    g_assert_cmphex(qtest_readb(qts, DBI + PCI_HEADER_TYPE), ==, 0);
    qtest_quit(qts);
}

static void test_rw_masks(void)
{
    QTestState *qts = ep_start("");

    qtest_writew(qts, DBI + PCI_COMMAND, 0xffff);
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_COMMAND), ==, 0x0547);
    /* Writes set no Status bit (its error bits only clear) */
    qtest_writew(qts, DBI + PCI_STATUS, 0xffff);
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_STATUS), ==, 0x0010);
    qtest_quit(qts);
}

static void test_capabilities(void)
{
    QTestState *qts = ep_start("");
    uint8_t pm = find_cap(qts, CAP_PM), msi = find_cap(qts, CAP_MSI);
    uint8_t exp = find_cap(qts, CAP_EXP), msix = find_cap(qts, CAP_MSIX);

    g_assert_cmpuint(pm, !=, 0);
    g_assert_cmpuint(msi, !=, 0);
    g_assert_cmpuint(exp, !=, 0);
    g_assert_cmpuint(msix, !=, 0);

    /* PCIe endpoint, version 2; Gen3 x4 by default */
    g_assert_cmphex(qtest_readw(qts, DBI + exp + 2), ==, 0x0002);
    g_assert_cmphex(qtest_readl(qts, DBI + exp + 0x0c) & 0x3ff, ==, 0x043);
    /* The link is down: no speed, no width */
    g_assert_cmphex(qtest_readw(qts, DBI + exp + 0x12) & 0x3ff, ==, 0);

    /* PTM is there, resizable BAR is not */
    g_assert_cmphex(find_ext_cap(qts, EXT_CAP_PTM), ==, 0x100);
    g_assert_cmphex(find_ext_cap(qts, EXT_CAP_REBAR), ==, 0);
    qtest_quit(qts);
}

/* dw_pcie_ep_set_msi() and the host's side of MSI */
static void test_msi_cap(void)
{
    QTestState *qts = ep_start("");
    uint8_t msi = find_cap(qts, CAP_MSI);
    uint16_t flags = qtest_readw(qts, DBI + msi + 2);

    g_assert_cmphex(flags & 0x80, ==, 0x80);    /* 64-bit */

    /* Multiple Message Capable: read-only, except under DBI_RO_WR_EN */
    qtest_writew(qts, DBI + msi + 2, (flags & ~0xe) | 5 << 1);
    g_assert_cmphex(qtest_readw(qts, DBI + msi + 2) & 0xe, ==, 0);
    ro_wr_en(qts, true);
    qtest_writew(qts, DBI + msi + 2, (flags & ~0xe) | 5 << 1);
    ro_wr_en(qts, false);
    g_assert_cmphex(qtest_readw(qts, DBI + msi + 2) & 0xe, ==, 5 << 1);

    /* Enable, Multiple Message Enable, address and data are writable */
    qtest_writew(qts, DBI + msi + 2, 0x0031 | 5 << 1);
    g_assert_cmphex(qtest_readw(qts, DBI + msi + 2), ==, 0x00bb);
    qtest_writel(qts, DBI + msi + 4, 0x08090043);
    qtest_writel(qts, DBI + msi + 8, 0x1);
    qtest_writew(qts, DBI + msi + 0xc, 0xbeef);
    g_assert_cmphex(qtest_readl(qts, DBI + msi + 4), ==, 0x08090040);
    g_assert_cmphex(qtest_readl(qts, DBI + msi + 8), ==, 0x1);
    g_assert_cmphex(qtest_readw(qts, DBI + msi + 0xc), ==, 0xbeef);
    qtest_quit(qts);
}

/* dw_pcie_ep_set_msix() as pci-epf-test calls it: 8 vectors in BAR0 */
static void test_msix_cap(void)
{
    QTestState *qts = ep_start("");
    uint8_t msix = find_cap(qts, CAP_MSIX);

    qtest_writew(qts, DBI + msix + 2, 7);
    g_assert_cmphex(qtest_readw(qts, DBI + msix + 2), ==, 0);

    ro_wr_en(qts, true);
    qtest_writew(qts, DBI + msix + 2, 7);
    qtest_writel(qts, DBI + msix + 4, 0x80 | 0);
    qtest_writel(qts, DBI + msix + 8, (0x80 + 8 * 16) | 0);
    ro_wr_en(qts, false);
    g_assert_cmphex(qtest_readw(qts, DBI + msix + 2), ==, 7);
    g_assert_cmphex(qtest_readl(qts, DBI + msix + 4), ==, 0x80);
    g_assert_cmphex(qtest_readl(qts, DBI + msix + 8), ==, 0x100);

    /* The host's enable bit; the table size stays read-only */
    qtest_writew(qts, DBI + msix + 2, 0x8000 | 0x3ff);
    g_assert_cmphex(qtest_readw(qts, DBI + msix + 2), ==, 0x8007);
    qtest_quit(qts);
}

/* dw_pcie_ep_init_registers(): the PTM fix-up under DBI_RO_WR_EN */
static void test_ptm(void)
{
    QTestState *qts = ep_start("");
    uint32_t cap = qtest_readl(qts, DBI + 0x104);

    g_assert_cmphex(cap & 0x7, ==, 0x7);
    qtest_writel(qts, DBI + 0x104, cap & ~0x4);
    g_assert_cmphex(qtest_readl(qts, DBI + 0x104), ==, cap);

    ro_wr_en(qts, true);
    qtest_writel(qts, DBI + 0x104, cap & ~0x4);
    cap = qtest_readl(qts, DBI + 0x104);
    qtest_writel(qts, DBI + 0x104, cap & ~0xff02);
    ro_wr_en(qts, false);
    g_assert_cmphex(qtest_readl(qts, DBI + 0x104), ==, 0x1);
    qtest_quit(qts);
}

static void test_port_logic(void)
{
    QTestState *qts = ep_start("");
    uint32_t plc = qtest_readl(qts, DBI + PORT_LINK_CONTROL);

    /* x4 link mode and DLL link enable at reset */
    g_assert_cmphex(plc, ==, 0x00070020);
    /* dw_pcie_setup(): clear FAST_LINK_MODE, set DLL_LINK_EN */
    qtest_writel(qts, DBI + PORT_LINK_CONTROL, (plc & ~0x80) | 0x20);
    g_assert_cmphex(qtest_readl(qts, DBI + PORT_LINK_CONTROL), ==, plc);
    qtest_writel(qts, DBI + PORT_LINK_CONTROL, 0x000100a0);
    g_assert_cmphex(qtest_readl(qts, DBI + PORT_LINK_CONTROL), ==,
                    0x000100a0);

    /* Link down: LTSSM in Detect.Quiet, link-up clear */
    g_assert_cmphex(qtest_readl(qts, DBI + PORT_DEBUG0) & 0x3f, ==, 0);
    g_assert_cmphex(qtest_readl(qts, DBI + PORT_DEBUG1) & 0x10, ==, 0);
    /* LTSSM and version registers are read-only */
    qtest_writel(qts, DBI + PORT_DEBUG0, 0x11);
    qtest_writel(qts, DBI + VERSION_NUMBER, 0);
    g_assert_cmphex(qtest_readl(qts, DBI + PORT_DEBUG0), ==, 0);
    g_assert_cmphex(qtest_readl(qts, DBI + VERSION_NUMBER), ==, 0x3534302a);
    qtest_quit(qts);
}

/* ---------------------------------------------------------------------- */
/* DBI2 BAR masks and the BARs the host sees */

/* The sequence of dw_pcie_ep_set_bar() for a programmable BAR */
static void set_bar(QTestState *qts, int bar, uint64_t size, uint32_t flags)
{
    ro_wr_en(qts, true);
    qtest_writel(qts, DBI2 + PCI_BAR(bar), (uint32_t)(size - 1));
    qtest_writel(qts, DBI + PCI_BAR(bar), flags);
    if (flags & 0x4) {
        qtest_writel(qts, DBI2 + PCI_BAR(bar + 1), (size - 1) >> 32);
        qtest_writel(qts, DBI + PCI_BAR(bar + 1), 0);
    }
    ro_wr_en(qts, false);
}

/* Size a BAR the way a host does */
static uint32_t size_bar(QTestState *qts, int bar)
{
    uint32_t old = qtest_readl(qts, DBI + PCI_BAR(bar)), val;

    qtest_writel(qts, DBI + PCI_BAR(bar), 0xffffffff);
    val = qtest_readl(qts, DBI + PCI_BAR(bar));
    qtest_writel(qts, DBI + PCI_BAR(bar), old);
    return val;
}

static void test_bar_masks(void)
{
    QTestState *qts = ep_start("");

    /* A BAR whose mask is not enabled is not implemented */
    g_assert_cmphex(size_bar(qts, 0), ==, 0);

    set_bar(qts, 0, 128 * 1024, 0);
    g_assert_cmphex(size_bar(qts, 0), ==, 0xfffe0000);
    set_bar(qts, 1, 1 * 1024 * 1024, 0x8);
    g_assert_cmphex(size_bar(qts, 1), ==, 0xfff00008);

    /* 64-bit prefetchable pair: 8 GiB */
    set_bar(qts, 2, 8ULL << 30, 0xc);
    g_assert_cmphex(size_bar(qts, 2), ==, 0x0000000c);
    g_assert_cmphex(size_bar(qts, 3), ==, 0xfffffffe);

    /* The type bits are read-only without DBI_RO_WR_EN */
    qtest_writel(qts, DBI + PCI_BAR(1), 0x12300000);
    g_assert_cmphex(qtest_readl(qts, DBI + PCI_BAR(1)), ==, 0x12300008);

    /* dw_pcie_ep_reset_bar(): mask 0 disables the BAR */
    ro_wr_en(qts, true);
    qtest_writel(qts, DBI2 + PCI_BAR(1), 0);
    qtest_writel(qts, DBI + PCI_BAR(1), 0);
    ro_wr_en(qts, false);
    g_assert_cmphex(size_bar(qts, 1), ==, 0);

    /*
     * Disabling the lower half of the 64-bit pair disables the upper half
     * too: its mask (bit 0 set for 8 GiB) used to make a 32-bit BAR of it.
     */
    g_assert_cmphex(qtest_readl(qts, DBI2 + PCI_BAR(3)), ==, 0x1);
    qtest_writel(qts, DBI2 + PCI_BAR(2), 0);
    g_assert_cmphex(size_bar(qts, 2), ==, 0);
    g_assert_cmphex(size_bar(qts, 3), ==, 0);
    g_assert_cmphex(qtest_readl(qts, DBI2 + PCI_BAR(3)), ==, 0);
    qtest_quit(qts);
}

/* ---------------------------------------------------------------------- */
/* iATU probes, exactly as dw_pcie_iatu_detect() runs them */

typedef struct ATUProbe {
    int ob, ib;
    uint64_t align;
    uint32_t max;
} ATUProbe;

static uint32_t atu_read(QTestState *qts, bool viewport, bool in, int i,
                         int reg)
{
    if (viewport) {
        qtest_writel(qts, DBI + ATU_VIEWPORT, (in ? 0x80000000 : 0) | i);
        return qtest_readl(qts, DBI + 0x904 + reg);
    }
    return qtest_readl(qts, (in ? IB(i) : OB(i)) + reg);
}

static void atu_write(QTestState *qts, bool viewport, bool in, int i,
                      int reg, uint32_t val)
{
    if (viewport) {
        qtest_writel(qts, DBI + ATU_VIEWPORT, (in ? 0x80000000 : 0) | i);
        qtest_writel(qts, DBI + 0x904 + reg, val);
        return;
    }
    qtest_writel(qts, (in ? IB(i) : OB(i)) + reg, val);
}

/* The size of the atu region, as the memory tree (and the DT) has it */
static uint64_t atu_region_size(QTestState *qts)
{
    g_autofree char *mtree = qtest_hmp(qts, "info mtree");
    const char *line = strstr(mtree, ": dw-pcie-ep.atu");
    uint64_t start, end;

    g_assert(line);
    while (line > mtree && line[-1] != '\n') {
        line--;
    }
    g_assert_cmpint(sscanf(line, " %" SCNx64 "-%" SCNx64, &start, &end),
                    ==, 2);
    return end - start + 1;
}

static ATUProbe atu_detect(QTestState *qts, uint64_t atu_size)
{
    bool viewport = qtest_readl(qts, DBI + ATU_VIEWPORT) != 0xffffffff;
    int max_region;
    ATUProbe p = { 0 };
    uint32_t min;

    if (viewport) {
        qtest_writel(qts, DBI + ATU_VIEWPORT, 0xff);
        max_region = qtest_readl(qts, DBI + ATU_VIEWPORT) + 1;
    } else {
        max_region = MIN(atu_size / 512, 256);
    }
    for (p.ob = 0; p.ob < max_region; p.ob++) {
        atu_write(qts, viewport, false, p.ob, LOWER_TARGET, 0x11110000);
        if (atu_read(qts, viewport, false, p.ob, LOWER_TARGET) !=
            0x11110000) {
            break;
        }
    }
    for (p.ib = 0; p.ib < max_region; p.ib++) {
        atu_write(qts, viewport, true, p.ib, LOWER_TARGET, 0x11110000);
        if (atu_read(qts, viewport, true, p.ib, LOWER_TARGET) !=
            0x11110000) {
            break;
        }
    }
    atu_write(qts, viewport, !p.ob, 0, LIMIT, 0);
    min = atu_read(qts, viewport, !p.ob, 0, LIMIT);
    atu_write(qts, viewport, !p.ob, 0, UPPER_LIMIT, 0xffffffff);
    p.max = atu_read(qts, viewport, !p.ob, 0, UPPER_LIMIT);
    p.align = 1ULL << (min ? 32 - __builtin_clz(min) : 0);  /* fls() */
    return p;
}

static void test_atu_detect_default(void)
{
    QTestState *qts = ep_start("");
    ATUProbe p = atu_detect(qts, atu_region_size(qts));

    g_assert_cmpint(p.ob, ==, 8);
    g_assert_cmpint(p.ib, ==, 8);
    g_assert_cmphex(p.align, ==, 4096);
    g_assert_cmphex(p.max, ==, 0);      /* region limit 4 GiB */
    qtest_quit(qts);
}

static void test_atu_detect_properties(void)
{
    QTestState *qts = ep_start(",num-ob-regions=4,num-ib-regions=16,"
                               "atu-region-align=65536,"
                               "atu-max-region-size=0x1000000000");
    ATUProbe p = atu_detect(qts, atu_region_size(qts));

    g_assert_cmpint(p.ob, ==, 4);
    g_assert_cmpint(p.ib, ==, 16);
    g_assert_cmphex(p.align, ==, 65536);
    g_assert_cmphex(p.max, ==, 0xf);    /* region limit 64 GiB */
    qtest_quit(qts);
}

static void test_atu_detect_viewport(void)
{
    QTestState *qts = ep_start(",atu-viewport=on,num-ob-regions=6,"
                               "num-ib-regions=4");
    ATUProbe p = atu_detect(qts, 0);

    g_assert_cmpint(p.ob, ==, 6);
    g_assert_cmpint(p.ib, ==, 4);
    g_assert_cmphex(p.align, ==, 4096);
    g_assert_cmphex(p.max, ==, 0);
    qtest_quit(qts);
}

static void test_atu_registers(void)
{
    QTestState *qts = ep_start("");

    /* All regions disabled at reset */
    for (int i = 0; i < 8; i++) {
        g_assert_cmphex(qtest_readl(qts, OB(i) + CTRL2), ==, 0);
        g_assert_cmphex(qtest_readl(qts, IB(i) + CTRL2), ==, 0);
    }
    /* dw_pcie_prog_ep_inbound_atu(): enable reads back at once */
    qtest_writel(qts, IB(3) + CTRL1, 0x2 << 20);
    qtest_writel(qts, IB(3) + CTRL2, REGION_EN | BAR_MATCH |
                 FUNC_NUM_MATCH_EN | 2 << 8);
    g_assert_cmphex(qtest_readl(qts, IB(3) + CTRL2), ==, 0xc0080200);
    g_assert_cmphex(qtest_readl(qts, IB(3) + CTRL1), ==, 0x200000);
    /* Base bits below the alignment read as zero, limit bits as ones */
    qtest_writel(qts, OB(1) + LOWER_BASE, 0x0d000123);
    qtest_writel(qts, OB(1) + LIMIT, 0x0d001000);
    g_assert_cmphex(qtest_readl(qts, OB(1) + LOWER_BASE), ==, 0x0d000000);
    g_assert_cmphex(qtest_readl(qts, OB(1) + LIMIT), ==, 0x0d001fff);

    /* Reset disables them again */
    qtest_system_reset(qts);
    g_assert_cmphex(qtest_readl(qts, IB(3) + CTRL2), ==, 0);
    qtest_quit(qts);
}

/* ---------------------------------------------------------------------- */
/* Translations through the addr_space window, in PIPE loopback */

static void loopback(QTestState *qts, bool on)
{
    uint32_t plc = qtest_readl(qts, DBI + PORT_LINK_CONTROL);

    qtest_writel(qts, DBI + PORT_LINK_CONTROL, on ? plc | 0x4 : plc & ~0x4);
    qtest_writel(qts, DBI + PIPE_LOOPBACK, on ? 0x80000000 : 0);
}

/* dw_pcie_prog_outbound_atu() for version >= 5.10a */
static void map_outbound(QTestState *qts, int i, uint64_t cpu, uint64_t pci,
                         uint64_t size)
{
    uint64_t limit = cpu + size - 1;

    qtest_writel(qts, OB(i) + LOWER_BASE, cpu);
    qtest_writel(qts, OB(i) + UPPER_BASE, cpu >> 32);
    qtest_writel(qts, OB(i) + LIMIT, limit);
    qtest_writel(qts, OB(i) + UPPER_LIMIT, limit >> 32);
    qtest_writel(qts, OB(i) + LOWER_TARGET, pci);
    qtest_writel(qts, OB(i) + UPPER_TARGET, pci >> 32);
    qtest_writel(qts, OB(i) + CTRL1, 0);
    qtest_writel(qts, OB(i) + CTRL2, REGION_EN);
    g_assert_cmphex(qtest_readl(qts, OB(i) + CTRL2), ==, REGION_EN);
}

/* dw_pcie_prog_ep_inbound_atu(): BAR match */
static void map_inbound_bar(QTestState *qts, int i, int bar, uint64_t phys)
{
    qtest_writel(qts, IB(i) + LOWER_TARGET, phys);
    qtest_writel(qts, IB(i) + UPPER_TARGET, phys >> 32);
    qtest_writel(qts, IB(i) + CTRL1, 0);
    qtest_writel(qts, IB(i) + CTRL2, REGION_EN | BAR_MATCH |
                 FUNC_NUM_MATCH_EN | bar << 8);
}

/* dw_pcie_prog_inbound_atu(): address match */
static void map_inbound_addr(QTestState *qts, int i, uint64_t pci,
                             uint64_t phys, uint64_t size)
{
    uint64_t limit = pci + size - 1;
    /* INCREASE_REGION_SIZE when the region crosses a 4 GiB boundary */
    uint32_t ctrl1 = (limit >> 32) != (pci >> 32) ? 0x2000 : 0;

    qtest_writel(qts, IB(i) + LOWER_BASE, pci);
    qtest_writel(qts, IB(i) + UPPER_BASE, pci >> 32);
    qtest_writel(qts, IB(i) + LIMIT, limit);
    qtest_writel(qts, IB(i) + UPPER_LIMIT, limit >> 32);
    qtest_writel(qts, IB(i) + LOWER_TARGET, phys);
    qtest_writel(qts, IB(i) + UPPER_TARGET, phys >> 32);
    qtest_writel(qts, IB(i) + CTRL1, ctrl1);
    qtest_writel(qts, IB(i) + CTRL2, REGION_EN);
}

/* Two BARs, assigned and enabled as a host would */
static QTestState *loopback_start_args(const char *args, const char *props)
{
    QTestState *qts = ep_start_args(args, props);

    set_bar(qts, 0, 0x1000, 0);
    set_bar(qts, 1, 0x10000, 0);
    qtest_writel(qts, DBI + PCI_BAR(0), 0x10000000);
    qtest_writel(qts, DBI + PCI_BAR(1), 0x20000000);
    qtest_writew(qts, DBI + PCI_COMMAND, 0x0006);
    loopback(qts, true);
    return qts;
}

static QTestState *loopback_start_with(const char *props)
{
    return loopback_start_args("", props);
}

static QTestState *loopback_start(void)
{
    return loopback_start_with("");
}

static void test_loopback_link_status(void)
{
    QTestState *qts = loopback_start();
    uint8_t exp = find_cap(qts, CAP_EXP);

    /* S_LPBK_ACTIVE, Linux's DW_PCIE_LTSSM_LPBK_ACTIVE (it read 0x1c) */
    g_assert_cmphex(qtest_readl(qts, DBI + PORT_DEBUG0) & 0x3f, ==, 0x1b);
    g_assert_cmphex(qtest_readl(qts, DBI + PORT_DEBUG1) & 0x10, ==, 0x10);
    g_assert_cmphex(qtest_readw(qts, DBI + exp + 0x12) & 0x3ff, ==, 0x043);
    /* What Linux programs (max-link-speed 2, num-lanes 1) shows (it did not) */
    ro_wr_en(qts, true);
    qtest_writel(qts, DBI + exp + 0x0c,
                 (qtest_readl(qts, DBI + exp + 0x0c) & ~0x3ff) | 0x012);
    ro_wr_en(qts, false);
    g_assert_cmphex(qtest_readw(qts, DBI + exp + 0x12) & 0x3ff, ==, 0x012);
    loopback(qts, false);
    g_assert_cmphex(qtest_readl(qts, DBI + PORT_DEBUG1) & 0x10, ==, 0);
    qtest_quit(qts);
}

static void test_translate_bar_match(void)
{
    QTestState *qts = loopback_start();

    map_outbound(qts, 0, WINDOW, 0x10000000, 0x1000);
    map_inbound_bar(qts, 0, 0, RAM + 0x100000);

    /* EP CPU -> window -> outbound -> link -> BAR0 -> inbound -> RAM */
    qtest_writel(qts, WINDOW + 0x10, 0xdeadbeef);
    qtest_writeq(qts, WINDOW + 0x18, 0x0123456789abcdefULL);
    qtest_writeb(qts, WINDOW + 0x20, 0x5a);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x100010), ==, 0xdeadbeef);
    g_assert_cmphex(qtest_readq(qts, RAM + 0x100018), ==,
                    0x0123456789abcdefULL);
    g_assert_cmphex(qtest_readb(qts, RAM + 0x100020), ==, 0x5a);

    qtest_writel(qts, RAM + 0x100ffc, 0xcafef00d);
    g_assert_cmphex(qtest_readl(qts, WINDOW + 0xffc), ==, 0xcafef00d);

    /* Past the end of the 4 KiB BAR0: no BAR decodes it */
    map_outbound(qts, 1, WINDOW + 0x1000, 0x10001000, 0x1000);
    qtest_writel(qts, RAM + 0x101000, 0x77777777);
    qtest_writel(qts, WINDOW + 0x1000, 0x12345678);
    g_assert_cmphex(qtest_readl(qts, WINDOW + 0x1000), ==, 0xffffffff);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x101000), ==, 0x77777777);
    qtest_quit(qts);
}

/* A BAR the host put at PCI address 0 decodes there (it never used to) */
static void test_bar_at_zero(void)
{
    QTestState *qts = loopback_start();

    qtest_writel(qts, DBI + PCI_BAR(0), 0);
    map_outbound(qts, 0, WINDOW, 0, 0x1000);
    map_inbound_bar(qts, 0, 0, RAM + 0x100000);
    qtest_writel(qts, WINDOW + 0x10, 0xbeef0000);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x100010), ==, 0xbeef0000);
    qtest_quit(qts);
}

static void test_translate_offset_and_target(void)
{
    QTestState *qts = loopback_start();

    /* A window further in, onto the second page of BAR1 */
    map_outbound(qts, 2, WINDOW + 0x3000, 0x20001000, 0x2000);
    map_inbound_bar(qts, 5, 1, RAM + 0x200000);
    qtest_writel(qts, WINDOW + 0x3004, 0x11223344);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x201004), ==, 0x11223344);
    qtest_quit(qts);
}

static void test_translate_address_match(void)
{
    QTestState *qts = loopback_start();

    map_outbound(qts, 0, WINDOW, 0x20000000, 0x10000);
    /* The second half of BAR1 only, as for a BAR sub-range */
    map_inbound_addr(qts, 1, 0x20008000, RAM + 0x300000, 0x8000);

    qtest_writel(qts, WINDOW + 0x8010, 0xa5a5a5a5);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x300010), ==, 0xa5a5a5a5);
    /* The first half of BAR1 has no region: unsupported request */
    qtest_writel(qts, WINDOW + 0x0010, 0x12345678);
    g_assert_cmphex(qtest_readl(qts, WINDOW + 0x0010), ==, 0xffffffff);
    qtest_quit(qts);
}

/*
 * A 64-bit 8 GiB BAR above 64 GiB, and an address-match region that
 * crosses a 4 GiB boundary: the limit's bits above the maximum region
 * size are the base's.
 */
static void test_translate_above_4g(void)
{
    QTestState *qts = loopback_start_with(",atu-max-region-size=0x1000000000");

    set_bar(qts, 2, 8ULL << 30, 0x4);
    qtest_writel(qts, DBI + PCI_BAR(2), 0);
    qtest_writel(qts, DBI + PCI_BAR(3), 0x10);
    map_outbound(qts, 0, WINDOW, 0x1100000000ULL, 0x1000);
    map_inbound_addr(qts, 0, 0x10fff00000ULL, RAM + 0x400000, 0x200000);
    g_assert_cmphex(qtest_readl(qts, IB(0) + UPPER_LIMIT), ==, 0x1);

    qtest_writel(qts, WINDOW + 0x40, 0x4a4a4a4a);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x400000 + 0x100040), ==,
                    0x4a4a4a4a);
    qtest_quit(qts);
}

/* An inbound target inside the window itself must not recurse */
static void test_loopback_into_window(void)
{
    QTestState *qts = loopback_start();

    map_outbound(qts, 0, WINDOW, 0x10000000, 0x1000);
    /* The positive control: the same TLP path onto RAM works. */
    map_inbound_bar(qts, 0, 0, RAM + 0x100000);
    qtest_writel(qts, WINDOW + 0x8, 0x600d0001);
    g_assert_cmphex(qtest_readl(qts, WINDOW + 0x8), ==, 0x600d0001);
    /* Onto the window itself: refused, not a recursion */
    map_inbound_bar(qts, 0, 0, WINDOW);
    qtest_writel(qts, WINDOW + 0x8, 0x1);
    g_assert_cmphex(qtest_readl(qts, WINDOW + 0x8), ==, 0xffffffff);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x100008), ==, 0x600d0001);
    g_assert_cmphex(qtest_readw(qts, DBI), ==, 0x16c3);
    qtest_quit(qts);
}

static void test_translate_disabled_region(void)
{
    QTestState *qts = loopback_start();

    map_outbound(qts, 0, WINDOW, 0x10000000, 0x1000);
    map_inbound_bar(qts, 0, 0, RAM + 0x100000);
    qtest_writel(qts, RAM + 0x100000, 0x600d600d);
    g_assert_cmphex(qtest_readl(qts, WINDOW), ==, 0x600d600d);

    /* dw_pcie_disable_atu(): only CTRL2 = 0 */
    qtest_writel(qts, OB(0) + CTRL2, 0);
    qtest_writel(qts, WINDOW, 0xbad0bad0);
    g_assert_cmphex(qtest_readl(qts, WINDOW), ==, 0xffffffff);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x100000), ==, 0x600d600d);

    /* Outside the region's limit */
    map_outbound(qts, 0, WINDOW, 0x10000000, 0x1000);
    g_assert_cmphex(qtest_readl(qts, WINDOW + 0x1000), ==, 0xffffffff);
    qtest_quit(qts);
}

static void test_window_link_down(void)
{
    QTestState *qts = loopback_start();

    map_outbound(qts, 0, WINDOW, 0x10000000, 0x1000);
    map_inbound_bar(qts, 0, 0, RAM + 0x100000);
    loopback(qts, false);

    /* No link: reads complete with all ones, writes are discarded. */
    qtest_writel(qts, RAM + 0x100100, 0x0);
    qtest_writel(qts, WINDOW + 0x100, 0x12345678);
    g_assert_cmphex(qtest_readl(qts, WINDOW + 0x100), ==, 0xffffffff);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x100100), ==, 0);
    qtest_quit(qts);
}

static void test_memory_disabled(void)
{
    QTestState *qts = loopback_start();

    map_outbound(qts, 0, WINDOW, 0x10000000, 0x1000);
    map_inbound_bar(qts, 0, 0, RAM + 0x100000);
    /* The positive control: with Memory Space Enable the write lands. */
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_COMMAND) & PCI_COMMAND_MEMORY,
                    ==, PCI_COMMAND_MEMORY);
    qtest_writel(qts, WINDOW, 0x12345678);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x100000), ==, 0x12345678);
    /* Memory Space Enable clear: the BARs decode nothing */
    qtest_writew(qts, DBI + PCI_COMMAND, 0);
    qtest_writel(qts, WINDOW, 0x9abcdef0);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x100000), ==, 0x12345678);
    g_assert_cmphex(qtest_readl(qts, WINDOW), ==, 0xffffffff);
    qtest_quit(qts);
}

/* ---------------------------------------------------------------------- */
/*
 * The eDMA, at the controller's "dma" reg (after elbi on the platform
 * bus).  The transfers run in PIPE loopback: the remote side's PCI
 * addresses come back in through BAR1 (64 KiB at 0x20000000) and inbound
 * region 0, onto REMOTE in EP RAM.  Under qtest the engine moves only
 * when the test steps the virtual clock.
 */
#define EDMA                (ep_base + 0x4000)
#define EDMA_CTRL           0x008
#define EDMA_ENGINE_EN(d)   ((d) ? 0x02c : 0x00c)
#define EDMA_DOORBELL(d)    ((d) ? 0x030 : 0x010)
#define EDMA_INT_STATUS(d)  ((d) ? 0x0a0 : 0x04c)
#define EDMA_INT_MASK(d)    ((d) ? 0x0a8 : 0x054)
#define EDMA_INT_CLEAR(d)   ((d) ? 0x0ac : 0x058)
#define EDMA_WR_ERR         0x05c
#define EDMA_RD_ERR_LO      0x0b4
#define EDMA_RD_ERR_HI      0x0b8
#define EDMA_DONE_IMWR(d)   ((d) ? 0x0cc : 0x060)
#define EDMA_IMWR_DATA(d)   ((d) ? 0x0dc : 0x070)
#define EDMA_LL_ERR_EN(d)   ((d) ? 0x0c4 : 0x090)
#define EDMA_WR_PWR_EN      0x128
#define EDMA_CH(d, n)       (EDMA + 0x200 + 0x200 * (n) + ((d) ? 0x100 : 0))
#define CH_CTRL1            0x00
#define CH_SIZE             0x08
#define CH_SAR              0x0c
#define CH_DAR              0x14
#define CH_LLP              0x1c
#define CB                  0x001
#define TCB                 0x002
#define LLP                 0x004
#define LIE                 0x008
#define RIE                 0x010
#define CS(v)               (((v) >> 5) & 3)
#define CCS                 0x100
#define LLE                 0x200
#define WR                  0
#define RD                  1

#define REMOTE_PCI          0x20000000ULL
#define REMOTE              (RAM + 0x100000)
#define LOCAL               (RAM + 0x200000)
#define LL                  (RAM + 0x300000)
#define UNMAPPED            0x800000000ULL

static QTestState *edma_start(const char *props)
{
    QTestState *qts = loopback_start_with(props);

    map_inbound_bar(qts, 0, 1, REMOTE);
    qtest_irq_intercept_out_named(qts, "/machine/peripheral/ep",
                                  "sysbus-irq");
    return qts;
}

static void edma_wr64(QTestState *qts, uint64_t reg, uint64_t val)
{
    qtest_writel(qts, reg, val);
    qtest_writel(qts, reg + 4, val >> 32);
}

static uint64_t edma_rd64(QTestState *qts, uint64_t reg)
{
    return qtest_readl(qts, reg) | (uint64_t)qtest_readl(qts, reg + 4) << 32;
}

static void put_data_element(QTestState *qts, uint64_t at, uint32_t ctrl,
                             uint32_t size, uint64_t sar, uint64_t dar)
{
    qtest_writel(qts, at, ctrl);
    qtest_writel(qts, at + 4, size);
    qtest_writeq(qts, at + 8, sar);
    qtest_writeq(qts, at + 16, dar);
}

static void put_link_element(QTestState *qts, uint64_t at, uint32_t ctrl,
                             uint64_t next)
{
    qtest_writel(qts, at, ctrl | LLP);
    qtest_writel(qts, at + 4, 0);
    qtest_writeq(qts, at + 8, next);
}

/* dw_edma_v0_core_start() with first = true, as Linux does it */
static void edma_start_ll(QTestState *qts, int d, int ch, uint64_t ll)
{
    uint32_t mask = qtest_readl(qts, EDMA + EDMA_INT_MASK(d));

    qtest_writel(qts, EDMA + EDMA_ENGINE_EN(d), 1);
    qtest_writel(qts, EDMA + EDMA_INT_MASK(d),
                 mask & ~(1u << ch | 1u << (16 + ch)));
    qtest_writel(qts, EDMA + EDMA_LL_ERR_EN(d), 1u << ch);
    qtest_writel(qts, EDMA_CH(d, ch) + CH_CTRL1, CCS | LLE);
    edma_wr64(qts, EDMA_CH(d, ch) + CH_LLP, ll);
    qtest_writel(qts, EDMA + EDMA_DOORBELL(d), ch);
}

static void fill(QTestState *qts, uint64_t at, uint32_t len, uint8_t seed)
{
    g_autofree uint8_t *buf = g_malloc(len);

    for (uint32_t i = 0; i < len; i++) {
        buf[i] = seed + i * 7 + (i >> 8);
    }
    qtest_memwrite(qts, at, buf, len);
}

static bool same(QTestState *qts, uint64_t a, uint64_t b, uint32_t len)
{
    g_autofree uint8_t *x = g_malloc(len);
    g_autofree uint8_t *y = g_malloc(len);

    qtest_memread(qts, a, x, len);
    qtest_memread(qts, b, y, len);
    return !memcmp(x, y, len);
}

static uint32_t ch_cs(QTestState *qts, int d, int ch)
{
    return CS(qtest_readl(qts, EDMA_CH(d, ch) + CH_CTRL1));
}

static void test_edma_registers(void)
{
    QTestState *qts = edma_start(",edma-wr-channels=3,edma-rd-channels=2");

    /* What dw_pcie_edma_find_mf()/_find_channels() read */
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_CTRL), ==, 0x00020003);
    g_assert_cmphex(qtest_readl(qts, DBI + DMA_VIEWPORT_CTRL), ==,
                    0xffffffff);
    /* Reset values */
    for (int d = WR; d <= RD; d++) {
        uint32_t bits = d == WR ? 0x00070007 : 0x00030003;

        g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_ENGINE_EN(d)), ==, 0);
        g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(d)), ==, 0);
        g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_MASK(d)), ==, bits);
        g_assert_cmphex(ch_cs(qts, d, 0), ==, 0);
        /* Masks: only the channels there are */
        qtest_writel(qts, EDMA + EDMA_INT_MASK(d), 0xffffffff);
        g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_MASK(d)), ==, bits);
        qtest_writel(qts, EDMA + EDMA_LL_ERR_EN(d), 0xffffffff);
        g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_LL_ERR_EN(d)), ==,
                        bits);
        qtest_writel(qts, EDMA + EDMA_ENGINE_EN(d), 0xffffffff);
        g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_ENGINE_EN(d)), ==, 1);
        /* Read-write: the IMWr address and data */
        edma_wr64(qts, EDMA + EDMA_DONE_IMWR(d), 0x123456789abcdef0ULL);
        g_assert_cmphex(edma_rd64(qts, EDMA + EDMA_DONE_IMWR(d)), ==,
                        0x123456789abcdef0ULL);
        qtest_writel(qts, EDMA + EDMA_IMWR_DATA(d) + 4, 0xa5a55a5a);
        g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_IMWR_DATA(d) + 4), ==,
                        0xa5a55a5a);
        /* Doorbell and clear are write-only */
        g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_DOORBELL(d)), ==, 0);
        g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_CLEAR(d)), ==, 0);
    }
    /* Channel registers: ctrl1's writable bits, CS read-only */
    qtest_writel(qts, EDMA_CH(WR, 2) + CH_CTRL1, 0xffffffff);
    g_assert_cmphex(qtest_readl(qts, EDMA_CH(WR, 2) + CH_CTRL1), ==, 0x31f);
    qtest_writel(qts, EDMA_CH(WR, 2) + CH_SIZE, 0x12345678);
    g_assert_cmphex(qtest_readl(qts, EDMA_CH(WR, 2) + CH_SIZE), ==,
                    0x12345678);
    edma_wr64(qts, EDMA_CH(RD, 1) + CH_SAR, 0x1111222233334444ULL);
    edma_wr64(qts, EDMA_CH(RD, 1) + CH_DAR, 0x5555666677778888ULL);
    edma_wr64(qts, EDMA_CH(RD, 1) + CH_LLP, 0x99990000aaaa0000ULL);
    g_assert_cmphex(edma_rd64(qts, EDMA_CH(RD, 1) + CH_SAR), ==,
                    0x1111222233334444ULL);
    g_assert_cmphex(edma_rd64(qts, EDMA_CH(RD, 1) + CH_DAR), ==,
                    0x5555666677778888ULL);
    g_assert_cmphex(edma_rd64(qts, EDMA_CH(RD, 1) + CH_LLP), ==,
                    0x99990000aaaa0000ULL);
    /* Channels that are not there: read as zero, writes ignored */
    qtest_writel(qts, EDMA_CH(RD, 2) + CH_SIZE, 0x1000);
    g_assert_cmphex(qtest_readl(qts, EDMA_CH(RD, 2) + CH_SIZE), ==, 0);
    qtest_writel(qts, EDMA + EDMA_WR_PWR_EN + 4 * 3, 1);
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_WR_PWR_EN + 4 * 3), ==, 0);
    qtest_writel(qts, EDMA + EDMA_WR_PWR_EN + 4 * 2, 0xff);
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_WR_PWR_EN + 4 * 2), ==, 1);
    /* A system reset brings the reset values back */
    qtest_system_reset(qts);
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_ENGINE_EN(WR)), ==, 0);
    g_assert_cmphex(qtest_readl(qts, EDMA_CH(WR, 2) + CH_SIZE), ==, 0);
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_MASK(RD)), ==,
                    0x00030003);
    qtest_quit(qts);
}

/*
 * Linux's single-chunk descriptor (pci-epf-test's): one data element with
 * CB and LIE, then a link element with TCB and the other CB, back to the
 * start.  The write channel reads LOCAL and writes the remote side.  The
 * transfer is seen in flight (1 MiB/s: 64 KiB a tick, 62.5 ms apart).
 */
/*
 * Linux's one-element chunk of @size bytes (up to 256 KiB) on write
 * channel 0, from LOCAL to the remote side through a BAR1 grown to fit.
 */
static void edma_start_big_write(QTestState *qts, uint32_t size)
{
    set_bar(qts, 1, 0x40000, 0);
    qtest_writel(qts, DBI + PCI_BAR(1), REMOTE_PCI);
    fill(qts, LOCAL, size, 0x11);
    put_data_element(qts, LL, CB | LIE, size, LOCAL, REMOTE_PCI);
    put_link_element(qts, LL + 24, TCB, LL);
    edma_start_ll(qts, WR, 0, LL);
}

static void test_edma_ll_write(void)
{
    QTestState *qts = edma_start(",edma-bandwidth=1");

    edma_start_big_write(qts, 0x20100);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 1);
    g_assert_false(qtest_get_irq(qts, 0));

    qtest_clock_step(qts, 1000);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 1);
    g_assert_cmphex(qtest_readl(qts, EDMA_CH(WR, 0) + CH_SIZE), ==, 0x10100);
    g_assert_cmphex(edma_rd64(qts, EDMA_CH(WR, 0) + CH_SAR), ==,
                    LOCAL + 0x10000);
    g_assert_cmphex(edma_rd64(qts, EDMA_CH(WR, 0) + CH_LLP), ==, LL);
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(WR)), ==, 0);

    qtest_clock_step(qts, 200 * 1000 * 1000);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 3);
    g_assert(same(qts, LOCAL, REMOTE, 0x20100));
    /* Round the link element (CCS toggled): stopped on the element run */
    g_assert_cmphex(edma_rd64(qts, EDMA_CH(WR, 0) + CH_LLP), ==, LL);
    g_assert_cmphex(qtest_readl(qts, EDMA_CH(WR, 0) + CH_CTRL1) & CCS, ==, 0);
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(WR)), ==, 1);
    g_assert_true(qtest_get_irq(qts, 0));
    qtest_writel(qts, EDMA + EDMA_INT_CLEAR(WR), 1);
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(WR)), ==, 0);
    g_assert_false(qtest_get_irq(qts, 0));
    qtest_quit(qts);
}

/* The read channel reads the remote side into LOCAL. */
static void test_edma_ll_read(void)
{
    QTestState *qts = edma_start("");

    fill(qts, REMOTE, 0x3000, 0x22);
    put_data_element(qts, LL, CB | LIE, 0x3000, REMOTE_PCI, LOCAL);
    put_link_element(qts, LL + 24, TCB, LL);
    edma_start_ll(qts, RD, 1, LL);
    qtest_clock_step(qts, 1000 * 1000);
    g_assert_cmphex(ch_cs(qts, RD, 1), ==, 3);
    g_assert(same(qts, LOCAL, REMOTE, 0x3000));
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(RD)), ==, 2);
    g_assert_true(qtest_get_irq(qts, 0));
    qtest_quit(qts);
}

static void expect_abort(QTestState *qts, int d, int ch, uint64_t err_reg,
                         uint32_t err);

/*
 * Cycle bits and link elements: list A's data element, a link element
 * with TCB to list B (CCS 0 now), whose element (CB 0) completes with
 * LIE, then B's link element back to A without TCB: A's element (CB 1)
 * is not CCS, and the channel stops on it.  Only the LIE element
 * interrupts.
 */
static void test_edma_cycle_bits(void)
{
    QTestState *qts = edma_start("");
    uint64_t a = LL, b = LL + 0x1000;

    fill(qts, LOCAL, 0x2000, 0x33);
    put_data_element(qts, a, CB, 0x1000, LOCAL, REMOTE_PCI);
    put_link_element(qts, a + 24, TCB, b);
    put_data_element(qts, b, LIE, 0x1000, LOCAL + 0x1000,
                     REMOTE_PCI + 0x1000);
    put_link_element(qts, b + 24, CB, a);
    edma_start_ll(qts, WR, 1, a);
    qtest_clock_step(qts, 1000 * 1000);
    g_assert_cmphex(ch_cs(qts, WR, 1), ==, 3);
    g_assert(same(qts, LOCAL, REMOTE, 0x2000));
    g_assert_cmphex(edma_rd64(qts, EDMA_CH(WR, 1) + CH_LLP), ==, a);
    g_assert_cmphex(qtest_readl(qts, EDMA_CH(WR, 1) + CH_CTRL1) & CCS, ==, 0);
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(WR)), ==, 2);
    qtest_quit(qts);
}

/*
 * Linux's descriptor of several chunks in one list region, its last
 * chunk shorter: chunk 1 is three elements (CB 1, LIE on the last) and a
 * link element with TCB; the channel stops on slot 0 with CCS 0.  Chunk
 * 2, one element (CB 0) and its link element, is rung by a doorbell
 * alone, with no LLP or CCS rewrite: it runs, and DONE comes again.
 */
static void test_edma_chunks(void)
{
    QTestState *qts = edma_start("");

    fill(qts, LOCAL, 0x4000, 0x99);
    for (int i = 0; i < 3; i++) {
        put_data_element(qts, LL + 24 * i, CB | (i == 2 ? LIE : 0), 0x1000,
                         LOCAL + 0x1000 * i, REMOTE_PCI + 0x1000 * i);
    }
    put_link_element(qts, LL + 24 * 3, TCB, LL);
    edma_start_ll(qts, WR, 0, LL);
    qtest_clock_step(qts, 1000 * 1000);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 3);
    g_assert(same(qts, LOCAL, REMOTE, 0x3000));
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(WR)), ==, 1);
    qtest_writel(qts, EDMA + EDMA_INT_CLEAR(WR), 1);

    put_data_element(qts, LL, LIE, 0x1000, LOCAL + 0x3000,
                     REMOTE_PCI + 0x3000);
    put_link_element(qts, LL + 24, TCB, LL);
    qtest_writel(qts, EDMA + EDMA_DOORBELL(WR), 0);
    qtest_clock_step(qts, 1000 * 1000);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 3);
    g_assert(same(qts, LOCAL, REMOTE, 0x4000));
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(WR)), ==, 1);
    g_assert_cmphex(edma_rd64(qts, EDMA_CH(WR, 0) + CH_LLP), ==, LL);
    qtest_quit(qts);
}

/*
 * The DONE of an element fetched last in a tick (64 fetches a tick)
 * comes with the channel stopped: Linux starts the next descriptor from
 * that interrupt, and a write to a running channel would be lost.
 */
static void test_edma_done_settled(void)
{
    QTestState *qts = edma_start("");

    fill(qts, LOCAL, 64 * 0x10, 0xaa);
    for (int i = 0; i < 64; i++) {
        put_data_element(qts, LL + 24 * i, CB | (i == 63 ? LIE : 0), 0x10,
                         LOCAL + 0x10 * i, REMOTE_PCI + 0x10 * i);
    }
    put_link_element(qts, LL + 24 * 64, TCB, LL);
    edma_start_ll(qts, WR, 0, LL);
    for (int i = 0; i < 100 &&
         !qtest_readl(qts, EDMA + EDMA_INT_STATUS(WR)); i++) {
        qtest_clock_step(qts, 1000);
    }
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(WR)), ==, 1);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 3);
    qtest_quit(qts);
}

/*
 * The local side reaches RAM only: an element in the outbound window, or
 * data from the eDMA's own registers, aborts the channel.
 */
static void test_edma_local_not_ram(void)
{
    QTestState *qts = edma_start("");

    map_outbound(qts, 0, WINDOW, REMOTE_PCI, 0x1000);
    edma_start_ll(qts, WR, 0, WINDOW);
    expect_abort(qts, WR, 0, EDMA_WR_ERR, 1u << 16);
    put_data_element(qts, LL, CB | LIE, 0x40, EDMA, REMOTE_PCI);
    edma_start_ll(qts, WR, 0, LL);
    expect_abort(qts, WR, 0, EDMA_WR_ERR, 1u << 0);
    put_data_element(qts, LL, CB | LIE, 0x40, REMOTE_PCI, EDMA + 0x200);
    edma_start_ll(qts, RD, 0, LL);
    expect_abort(qts, RD, 0, EDMA_RD_ERR_LO, 1u << 0);
    qtest_quit(qts);
}

/*
 * Unthrottled (edma-bandwidth=0), a list that never ends still lets
 * virtual time move on: the clock step returns.
 */
static void test_edma_unthrottled_loop(void)
{
    QTestState *qts = edma_start(",edma-bandwidth=0");

    put_link_element(qts, LL, CB, LL);
    edma_start_ll(qts, WR, 0, LL);
    qtest_clock_step(qts, 1000 * 1000);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 1);
    qtest_writel(qts, EDMA + EDMA_DOORBELL(WR), 0x80000000);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 2);
    qtest_quit(qts);
}

/* A bandwidth above 4 GiB/s paces the engine (it once divided by zero) */
static void test_edma_high_bandwidth(void)
{
    QTestState *qts = edma_start(",edma-bandwidth=8192");

    edma_start_big_write(qts, 0x20000);
    /* 64 KiB a tick at 8 GiB/s: the second tick is 7.6 us later */
    qtest_clock_step(qts, 1000);
    g_assert_cmphex(qtest_readl(qts, EDMA_CH(WR, 0) + CH_SIZE), ==, 0x10000);
    qtest_clock_step(qts, 10 * 1000);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 3);
    g_assert(same(qts, LOCAL, REMOTE, 0x20000));
    qtest_quit(qts);
}

/* Non-linked-list mode: the channel's own size, SAR and DAR */
static void test_edma_non_ll(void)
{
    QTestState *qts = edma_start("");

    fill(qts, LOCAL, 0x1800, 0x55);
    qtest_writel(qts, EDMA + EDMA_ENGINE_EN(WR), 1);
    qtest_writel(qts, EDMA + EDMA_INT_MASK(WR), 0);
    qtest_writel(qts, EDMA_CH(WR, 0) + CH_CTRL1, LIE);
    qtest_writel(qts, EDMA_CH(WR, 0) + CH_SIZE, 0x1800);
    edma_wr64(qts, EDMA_CH(WR, 0) + CH_SAR, LOCAL);
    edma_wr64(qts, EDMA_CH(WR, 0) + CH_DAR, REMOTE_PCI);
    qtest_writel(qts, EDMA + EDMA_DOORBELL(WR), 0);
    qtest_clock_step(qts, 1000 * 1000);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 3);
    g_assert_cmphex(qtest_readl(qts, EDMA_CH(WR, 0) + CH_SIZE), ==, 0);
    g_assert(same(qts, LOCAL, REMOTE, 0x1800));
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(WR)), ==, 1);
    g_assert_true(qtest_get_irq(qts, 0));
    qtest_quit(qts);
}

/* Every abort path: ABORT status, the error bit, CS halted, the line */
static void expect_abort(QTestState *qts, int d, int ch, uint64_t err_reg,
                         uint32_t err)
{
    qtest_clock_step(qts, 1000 * 1000);
    g_assert_cmphex(ch_cs(qts, d, ch), ==, 2);
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(d)), ==,
                    1u << (16 + ch));
    if (err_reg) {
        g_assert_cmphex(qtest_readl(qts, EDMA + err_reg), ==, err);
    }
    g_assert_true(qtest_get_irq(qts, 0));
    qtest_writel(qts, EDMA + EDMA_INT_CLEAR(d), 1u << (16 + ch));
    g_assert_false(qtest_get_irq(qts, 0));
}

static void test_edma_aborts(void)
{
    QTestState *qts = edma_start("");

    /* An element that cannot be fetched */
    edma_start_ll(qts, WR, 0, UNMAPPED);
    expect_abort(qts, WR, 0, EDMA_WR_ERR, 1u << 16);
    edma_start_ll(qts, RD, 0, UNMAPPED);
    expect_abort(qts, RD, 0, EDMA_RD_ERR_LO, 1u << 16);
    /* A local side that is not mapped (the error bits clear on start) */
    put_data_element(qts, LL, CB | LIE, 0x100, UNMAPPED, REMOTE_PCI);
    edma_start_ll(qts, WR, 0, LL);
    expect_abort(qts, WR, 0, EDMA_WR_ERR, 1u << 0);
    put_data_element(qts, LL, CB | LIE, 0x100, REMOTE_PCI, UNMAPPED);
    edma_start_ll(qts, RD, 0, LL);
    expect_abort(qts, RD, 0, EDMA_RD_ERR_LO, 1u << 0);
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_WR_ERR), ==, 1u << 0);
    /* A remote read no BAR decodes: an Unsupported Request */
    put_data_element(qts, LL, CB | LIE, 0x100, 0x70000000, LOCAL);
    edma_start_ll(qts, RD, 1, LL);
    expect_abort(qts, RD, 1, EDMA_RD_ERR_HI, 1u << 1);
    /* The link down: no completion; a write cannot go out */
    loopback(qts, false);
    put_data_element(qts, LL, CB | LIE, 0x100, REMOTE_PCI, LOCAL);
    edma_start_ll(qts, RD, 0, LL);
    /* (channel 1's UR stays until channel 1 starts again) */
    expect_abort(qts, RD, 0, EDMA_RD_ERR_HI, 1u << 16 | 1u << 1);
    put_data_element(qts, LL, CB | LIE, 0x100, LOCAL, REMOTE_PCI);
    edma_start_ll(qts, WR, 1, LL);
    expect_abort(qts, WR, 1, 0, 0);
    g_assert_cmphex(qtest_readw(qts, DBI), ==, 0x16c3);
    qtest_quit(qts);
}

/* 1 MiB at 1 MiB/s on write channel 0: running for a second */
static QTestState *edma_start_slow_write(void)
{
    QTestState *qts = edma_start(",edma-bandwidth=1");

    put_data_element(qts, LL, CB | LIE, 0x100000, LOCAL, REMOTE_PCI);
    edma_start_ll(qts, WR, 0, LL);
    qtest_clock_step(qts, 1000);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 1);
    return qts;
}

/* Software stop (doorbell bit 31) and the engine disable, in flight */
static void test_edma_stop(void)
{
    QTestState *qts = edma_start_slow_write();

    qtest_writel(qts, EDMA + EDMA_DOORBELL(WR), 0x80000000);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 2);
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(WR)), ==,
                    1u << 16);
    /* Nothing moves after the stop */
    qtest_clock_step(qts, 1000 * 1000 * 1000);
    g_assert_cmphex(qtest_readl(qts, EDMA_CH(WR, 0) + CH_SIZE), ==,
                    0x100000 - 0x10000);

    put_data_element(qts, LL, CB | LIE, 0x100000, REMOTE_PCI, LOCAL);
    edma_start_ll(qts, RD, 0, LL);
    qtest_clock_step(qts, 1000);
    qtest_writel(qts, EDMA + EDMA_ENGINE_EN(RD), 0);
    g_assert_cmphex(ch_cs(qts, RD, 0), ==, 2);
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(RD)), ==,
                    1u << 16);
    /* A doorbell with the engine off starts nothing */
    qtest_writel(qts, EDMA + EDMA_DOORBELL(RD), 0);
    g_assert_cmphex(ch_cs(qts, RD, 0), ==, 2);
    qtest_quit(qts);
}

/* Interrupt status, mask and clear; one line per channel on request */
static void test_edma_interrupts(void)
{
    QTestState *qts = edma_start(",edma-irq-per-channel=on");

    put_data_element(qts, LL, CB | LIE, 0x10, REMOTE_PCI, LOCAL);
    put_link_element(qts, LL + 24, TCB, LL);
    edma_start_ll(qts, RD, 1, LL);
    qtest_writel(qts, EDMA + EDMA_INT_MASK(RD), 0x00030003);
    qtest_clock_step(qts, 1000 * 1000);
    /* Done but masked: status, no line (read channel 1 is dma3) */
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(RD)), ==, 2);
    for (int i = 0; i < 4; i++) {
        g_assert_false(qtest_get_irq(qts, i));
    }
    qtest_writel(qts, EDMA + EDMA_INT_MASK(RD), 0x00010001);
    g_assert_true(qtest_get_irq(qts, 3));
    g_assert_false(qtest_get_irq(qts, 0));
    /* Clearing another bit leaves it; its own clears it */
    qtest_writel(qts, EDMA + EDMA_INT_CLEAR(RD), 1);
    g_assert_true(qtest_get_irq(qts, 3));
    qtest_writel(qts, EDMA + EDMA_INT_CLEAR(RD), 2);
    g_assert_false(qtest_get_irq(qts, 3));
    qtest_quit(qts);
}

/* RIE: the done IMWr, a memory write of the channel's data to the remote */
static void test_edma_imwr(void)
{
    QTestState *qts = edma_start("");

    qtest_writel(qts, REMOTE + 0x800, 0xffffffff);
    edma_wr64(qts, EDMA + EDMA_DONE_IMWR(WR), REMOTE_PCI + 0x800);
    qtest_writel(qts, EDMA + EDMA_IMWR_DATA(WR), 0xbeef1234);
    put_data_element(qts, LL, CB | RIE, 0x10, LOCAL, REMOTE_PCI);
    put_link_element(qts, LL + 24, TCB, LL);
    edma_start_ll(qts, WR, 1, LL);
    qtest_clock_step(qts, 1000 * 1000);
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(WR)), ==, 2);
    g_assert_cmphex(qtest_readl(qts, REMOTE + 0x800), ==, 0xbeef);
    qtest_quit(qts);
}

/*
 * The interrupt-emulation doorbell, as Linux 7.2 uses it: a write to
 * rd_int_status asserts the line with no status bit, a write of 0 to
 * either int_clear de-asserts it.  Then rung the way the host rings it:
 * a BAR write whose inbound window lands on that register.
 */
static void test_edma_doorbell(void)
{
    QTestState *qts = edma_start("");

    qtest_writel(qts, EDMA + EDMA_INT_STATUS(RD), 0);
    g_assert_true(qtest_get_irq(qts, 0));
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(RD)), ==, 0);
    g_assert_cmphex(qtest_readl(qts, EDMA + EDMA_INT_STATUS(WR)), ==, 0);
    qtest_writel(qts, EDMA + EDMA_INT_CLEAR(WR), 0);
    g_assert_false(qtest_get_irq(qts, 0));

    /* The host's doorbell write: BAR1 + 0xa0 -> inbound -> the eDMA */
    map_inbound_bar(qts, 0, 1, EDMA);
    map_outbound(qts, 0, WINDOW, REMOTE_PCI, 0x1000);
    qtest_writel(qts, WINDOW + 0xa0, 0);
    g_assert_true(qtest_get_irq(qts, 0));
    qtest_writel(qts, EDMA + EDMA_INT_CLEAR(RD), 0);
    g_assert_false(qtest_get_irq(qts, 0));
    qtest_quit(qts);
}

/*
 * A list that loops (a link element onto itself, CB = CCS, no TCB) stays
 * bounded: each tick fetches a few elements, QEMU answers, software stops
 * it.
 */
static void test_edma_looping_list(void)
{
    QTestState *qts = edma_start("");

    put_link_element(qts, LL, CB, LL);
    edma_start_ll(qts, WR, 0, LL);
    for (int i = 0; i < 20; i++) {
        qtest_clock_step(qts, 1000 * 1000);
        g_assert_cmphex(qtest_readw(qts, DBI), ==, 0x16c3);
    }
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 1);
    qtest_writel(qts, EDMA + EDMA_DOORBELL(WR), 0x80000000);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 2);
    qtest_quit(qts);
}

static const char *migration_status(QTestState *qts)
{
    static char status[32];
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-migrate' }");
    QDict *ret = qdict_get_qdict(rsp, "return");

    g_strlcpy(status, ret && qdict_haskey(ret, "status") ?
              qdict_get_str(ret, "status") : "", sizeof(status));
    qobject_unref(rsp);
    return status;
}

/* Until @qts says its migration completed (5 s at most) */
static void wait_migration(QTestState *qts)
{
    for (int i = 0; i < 500 && strcmp(migration_status(qts), "completed");
         i++) {
        g_usleep(10 * 1000);
    }
}

/*
 * A transfer in flight migrates: the destination resumes it from the
 * registers and the element in flight, and finishes it.
 */
static void test_edma_migration(void)
{
    g_autofree char *dir = g_dir_make_tmp("dw-edma-migration-XXXXXX", NULL);
    g_autofree char *sock = g_build_filename(dir, "migrate.sock", NULL);
    g_autofree char *uri = g_strdup_printf("unix:%s", sock);
    g_autofree char *smp = smp_args();
    QTestState *src = edma_start(",edma-bandwidth=1");
    QTestState *dst;

    edma_start_big_write(src, 0x20100);
    qtest_clock_step(src, 1000);
    g_assert_cmphex(qtest_readl(src, EDMA_CH(WR, 0) + CH_SIZE), ==, 0x10100);

    dst = qtest_initf("-M virt,gic-version=3 -nic none %s "
                      "-device dw-pcie-ep,id=ep,edma-bandwidth=1 -incoming %s",
                      smp, uri);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': %s } }", uri);
    wait_migration(src);
    g_assert_cmpstr(migration_status(src), ==, "completed");
    wait_migration(dst);
    qtest_quit(src);

    /* Where it was: running, half way, and it goes on */
    g_assert_cmphex(ch_cs(dst, WR, 0), ==, 1);
    g_assert_cmphex(qtest_readl(dst, EDMA_CH(WR, 0) + CH_SIZE), ==, 0x10100);
    qtest_clock_step(dst, 200 * 1000 * 1000);
    g_assert_cmphex(ch_cs(dst, WR, 0), ==, 3);
    g_assert(same(dst, LOCAL, REMOTE, 0x20100));
    g_assert_cmphex(qtest_readl(dst, EDMA + EDMA_INT_STATUS(WR)), ==, 1);
    qtest_quit(dst);
    unlink(sock);
    rmdir(dir);
}

/* ---------------------------------------------------------------------- */
/*
 * Posted writes and the iATU-update hazard, in PIPE loopback: window
 * region 0 onto BAR0, BAR0 onto RAM + 1 MiB.  Under qtest the virtual
 * clock moves only when the test steps it, so every drain is exact.
 */
#define POSTED_NS           1000
#define POSTED_PROPS        ",posted-write-latency-ns=1000,posted-write-depth=4"
#define LANDS               (RAM + 0x100000)

static QTestState *posted_start_args(const char *args, const char *props)
{
    g_autofree char *all = g_strdup_printf(POSTED_PROPS "%s", props);
    QTestState *qts = loopback_start_args(args, all);

    map_outbound(qts, 0, WINDOW, 0x10000000, 0x1000);
    map_inbound_bar(qts, 0, 0, LANDS);
    return qts;
}

static QTestState *posted_start(const char *props)
{
    return posted_start_args("", props);
}

/* A write drains after the latency, not before */
static void test_posted_latency(void)
{
    QTestState *qts = posted_start("");

    qtest_writel(qts, WINDOW + 0x10, 0x11111111);
    g_assert_cmphex(qtest_readl(qts, LANDS + 0x10), ==, 0);
    g_assert_cmpuint(ep_counter(qts, "x-posted-pending"), ==, 1);
    qtest_clock_step(qts, POSTED_NS - 1);
    g_assert_cmphex(qtest_readl(qts, LANDS + 0x10), ==, 0);
    qtest_clock_step(qts, 1);
    g_assert_cmphex(qtest_readl(qts, LANDS + 0x10), ==, 0x11111111);
    g_assert_cmpuint(ep_counter(qts, "x-posted-pending"), ==, 0);
    g_assert_cmpuint(ep_counter(qts, "x-posted-writes"), ==, 1);
    g_assert_cmpuint(ep_counter(qts, "x-posted-drains-latency"), ==, 1);
    g_assert_cmpuint(ep_counter(qts, "x-posted-drains-read"), ==, 0);
    g_assert_cmpuint(ep_counter(qts, "x-iatu-hazards"), ==, 0);
    qtest_quit(qts);
}

/*
 * A read from the window pushes every posted write ahead of it, in
 * order (two writes to one address: the second wins), whatever address
 * it reads.
 */
static void test_posted_read_flush(void)
{
    QTestState *qts = posted_start("");

    qtest_writel(qts, LANDS + 0x20, 0x20202020);
    qtest_writel(qts, WINDOW + 0x10, 0xaaaaaaaa);
    qtest_writel(qts, WINDOW + 0x14, 0xbbbbbbbb);
    qtest_writel(qts, WINDOW + 0x10, 0xcccccccc);
    g_assert_cmphex(qtest_readl(qts, LANDS + 0x10), ==, 0);
    g_assert_cmphex(qtest_readl(qts, WINDOW + 0x20), ==, 0x20202020);
    g_assert_cmphex(qtest_readl(qts, LANDS + 0x10), ==, 0xcccccccc);
    g_assert_cmphex(qtest_readl(qts, LANDS + 0x14), ==, 0xbbbbbbbb);
    g_assert_cmpuint(ep_counter(qts, "x-posted-drains-read"), ==, 3);
    /* A read of what was just written sees it */
    qtest_writeq(qts, WINDOW + 0x30, 0x0123456789abcdefULL);
    g_assert_cmphex(qtest_readq(qts, WINDOW + 0x30), ==,
                    0x0123456789abcdefULL);
    g_assert_cmpuint(ep_counter(qts, "x-posted-drains-read"), ==, 4);
    g_assert_cmpuint(ep_counter(qts, "x-posted-drains-latency"), ==, 0);
    qtest_quit(qts);
}

/* A full buffer (depth 4) lets its oldest write go for a new one */
static void test_posted_full(void)
{
    QTestState *qts = posted_start("");

    for (int i = 0; i < 5; i++) {
        qtest_writel(qts, WINDOW + 4 * i, 0x100 + i);
    }
    g_assert_cmphex(qtest_readl(qts, LANDS), ==, 0x100);
    g_assert_cmphex(qtest_readl(qts, LANDS + 4), ==, 0);
    g_assert_cmpuint(ep_counter(qts, "x-posted-drains-full"), ==, 1);
    g_assert_cmpuint(ep_counter(qts, "x-posted-pending"), ==, 4);
    qtest_clock_step(qts, POSTED_NS);
    for (int i = 0; i < 5; i++) {
        g_assert_cmphex(qtest_readl(qts, LANDS + 4 * i), ==, 0x100 + i);
    }
    g_assert_cmpuint(ep_counter(qts, "x-posted-drains-latency"), ==, 4);
    qtest_quit(qts);
}

/* A reset of the controller loses what its bridge held */
static void test_posted_reset(void)
{
    QTestState *qts = posted_start("");

    qtest_writel(qts, WINDOW + 0x10, 0x12121212);
    qtest_system_reset(qts);
    qtest_clock_step(qts, POSTED_NS);
    g_assert_cmphex(qtest_readl(qts, LANDS + 0x10), ==, 0);
    g_assert_cmpuint(ep_counter(qts, "x-posted-discarded"), ==, 1);
    qtest_quit(qts);
}

/* The link leaves the state the writes were sent in: they are lost */
static void test_posted_link_change(void)
{
    QTestState *qts = posted_start("");

    qtest_writel(qts, WINDOW + 0x10, 0x77777777);
    loopback(qts, false);
    loopback(qts, true);
    qtest_clock_step(qts, POSTED_NS);
    g_assert_cmphex(qtest_readl(qts, LANDS + 0x10), ==, 0);
    g_assert_cmpuint(ep_counter(qts, "x-posted-discarded"), ==, 1);
    g_assert_cmpuint(ep_counter(qts, "x-posted-pending"), ==, 0);
    qtest_quit(qts);
}

/*
 * A pending write migrates and drains on the destination; a destination
 * without the buffer (latency 0) refuses the stream, whose writes it
 * could not keep in order with new ones.
 */
static void posted_migrate(const char *dst_props, bool ok)
{
    g_autofree char *dir = g_dir_make_tmp("dw-pcie-ep-posted-XXXXXX", NULL);
    g_autofree char *sock = g_build_filename(dir, "migrate.sock", NULL);
    g_autofree char *uri = g_strdup_printf("unix:%s", sock);
    g_autofree char *smp = smp_args();
    QTestState *src = posted_start(",iatu-hazard=corrupt");
    QTestState *dst;

    qtest_writel(src, WINDOW + 0x10, 0xaaaaaaaa);
    dst = qtest_initf("-M virt,gic-version=3 -nic none %s "
                      "-device dw-pcie-ep,id=ep%s -incoming %s", smp,
                      dst_props, uri);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate', 'arguments': "
                             "{ 'uri': %s } }", uri);
    wait_migration(src);
    qtest_quit(src);
    if (!ok) {
        /* The destination ends with an error, as after any bad stream */
        qtest_set_expected_status(dst, 1);
    } else {
        wait_migration(dst);
        g_assert_cmpstr(migration_status(dst), ==, "completed");
        g_assert_cmpuint(ep_counter(dst, "x-posted-pending"), ==, 1);
        qtest_clock_step(dst, POSTED_NS);
        g_assert_cmphex(qtest_readl(dst, LANDS + 0x10), ==, 0xaaaaaaaa);
        QDict *rsp = qtest_qmp(dst, "{ 'execute': 'qom-get', 'arguments': "
                               "{ 'path': '/machine/peripheral/ep', "
                               "'property': 'iatu-hazard' } }");

        g_assert_cmpstr(qdict_get_str(rsp, "return"), ==, "corrupt");
        qobject_unref(rsp);
    }
    qtest_quit(dst);
    unlink(sock);
    rmdir(dir);
}

static void test_posted_migration(void)
{
    posted_migrate(POSTED_PROPS, true);
    posted_migrate(",posted-write-latency-ns=0", false);
}

static char *guest_log_path(void)
{
    g_autofree char *dir = g_dir_make_tmp("dw-pcie-ep-XXXXXX", NULL);

    g_assert(dir);
    return g_build_filename(dir, "guest-errors.log", NULL);
}

static bool log_says(const char *path, const char *what)
{
    g_autofree char *text = NULL;

    return g_file_get_contents(path, &text, NULL, NULL) &&
           strstr(text, what) != NULL;
}

static void log_remove(char *path)
{
    g_autofree char *dir = g_path_get_dirname(path);

    unlink(path);
    rmdir(dir);
    g_free(path);
}

#define HAZARD_LINE         "written with traffic in flight"

/*
 * The 6.12 MSI sequence: a write, then the region's CTRL2 = 0 before it
 * drained.  @policy log and ignore: counted, and the write lands where it
 * was sent; only log says so.  With nothing in flight, no hazard.
 */
static void hazard_kept(const char *policy, bool logged)
{
    char *log = guest_log_path();
    g_autofree char *args = g_strdup_printf("-d guest_errors -D %s", log);
    g_autofree char *props = g_strdup_printf(",iatu-hazard=%s", policy);
    QTestState *qts = posted_start_args(args, props);

    qtest_writel(qts, WINDOW + 0x10, 0x600d600d);
    qtest_writel(qts, OB(0) + CTRL2, 0);
    g_assert_cmpuint(ep_counter(qts, "x-iatu-hazards"), ==, 1);
    g_assert_cmpuint(ep_counter(qts, "x-iatu-hazards-posted"), ==, 1);
    g_assert_cmpuint(ep_counter(qts, "x-iatu-hazards-edma"), ==, 0);
    qtest_clock_step(qts, POSTED_NS);
    g_assert_cmphex(qtest_readl(qts, LANDS + 0x10), ==, 0x600d600d);
    qtest_writel(qts, OB(0) + CTRL2, REGION_EN);
    g_assert_cmpuint(ep_counter(qts, "x-iatu-hazards"), ==, 1);
    g_assert_cmpuint(ep_counter(qts, "x-posted-untranslated"), ==, 0);
    qtest_quit(qts);
    g_assert_cmpint(log_says(log, HAZARD_LINE), ==, logged);
    log_remove(log);
}

static void test_hazard_log(void)
{
    hazard_kept("log", true);
}

static void test_hazard_ignore(void)
{
    hazard_kept("ignore", false);
}

/*
 * corrupt, set at run time: a write that drains after its region was
 * torn down goes out untranslated; with no IOMMU it is dropped and said
 * so.  One that drains after its region was moved goes where the region
 * points then.
 */
static void test_hazard_corrupt(void)
{
    char *log = guest_log_path();
    g_autofree char *args = g_strdup_printf("-d guest_errors -D %s", log);
    QTestState *qts = posted_start_args(args, "");

    qtest_qmp_assert_success(qts, "{ 'execute': 'qom-set', 'arguments': "
                             "{ 'path': '/machine/peripheral/ep', "
                             "'property': 'iatu-hazard', "
                             "'value': 'corrupt' } }");
    qtest_writel(qts, WINDOW + 0x10, 0xbad0bad0);
    qtest_writel(qts, OB(0) + CTRL2, 0);
    qtest_clock_step(qts, POSTED_NS);
    g_assert_cmphex(qtest_readl(qts, LANDS + 0x10), ==, 0);
    g_assert_cmpuint(ep_counter(qts, "x-posted-untranslated"), ==, 1);

    map_outbound(qts, 0, WINDOW, 0x10000000, 0x1000);
    map_inbound_bar(qts, 1, 1, RAM + 0x200000);
    qtest_writel(qts, WINDOW + 0x20, 0x0a0a0a0a);
    qtest_writel(qts, OB(0) + LOWER_TARGET, 0x20000000);
    qtest_clock_step(qts, POSTED_NS);
    g_assert_cmphex(qtest_readl(qts, LANDS + 0x20), ==, 0);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x200020), ==, 0x0a0a0a0a);
    g_assert_cmpuint(ep_counter(qts, "x-posted-untranslated"), ==, 1);
    g_assert_cmpuint(ep_counter(qts, "x-iatu-hazards"), ==, 2);

    /* Not in flight at the change: as it was sent, under corrupt too */
    qtest_writel(qts, WINDOW + 0x30, 0x30303030);
    qtest_clock_step(qts, POSTED_NS);
    qtest_writel(qts, OB(0) + CTRL2, 0);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x200030), ==, 0x30303030);
    g_assert_cmpuint(ep_counter(qts, "x-iatu-hazards"), ==, 2);
    qtest_quit(qts);
    g_assert(log_says(log, "dropped, there is no IOMMU"));
    log_remove(log);
}

/* A running eDMA channel is traffic in flight too */
static void test_hazard_edma(void)
{
    QTestState *qts = edma_start_slow_write();

    g_assert_cmpuint(ep_counter(qts, "x-edma-running"), ==, 1);
    qtest_writel(qts, OB(1) + LOWER_BASE, WINDOW + 0x1000);
    g_assert_cmpuint(ep_counter(qts, "x-iatu-hazards"), ==, 1);
    g_assert_cmpuint(ep_counter(qts, "x-iatu-hazards-edma"), ==, 1);
    g_assert_cmpuint(ep_counter(qts, "x-iatu-hazards-posted"), ==, 0);
    qtest_writel(qts, EDMA + EDMA_DOORBELL(WR), 0x80000000);
    g_assert_cmpuint(ep_counter(qts, "x-edma-running"), ==, 0);
    qtest_writel(qts, OB(1) + LOWER_BASE, WINDOW + 0x2000);
    g_assert_cmpuint(ep_counter(qts, "x-iatu-hazards"), ==, 1);
    qtest_quit(qts);
}

/* ---------------------------------------------------------------------- */
/* The bus-master side behind an SMMUv3 (iommu=, stream-id=) */

static QTestState *smmu_start(const char *props)
{
    g_autofree char *smp = smp_args();
    QTestState *qts;

    ep_base = PLATFORM_BUS_BASE + SMMU_SIZE;
    qts = qtest_initf("-M virt,gic-version=3 -nic none %s "
                      "-device arm-smmuv3,primary-bus=pcie.0,id=smmu "
                      "-device dw-pcie-ep,id=ep,iommu=smmu,stream-id=%d%s%s",
                      smp, SMMU_SID, posted_default(props), props);
    smmu_setup(qts);
    set_bar(qts, 0, 0x4000, 0);
    set_bar(qts, 1, 0x10000, 0);
    qtest_writel(qts, DBI + PCI_BAR(0), 0x10000000);
    qtest_writel(qts, DBI + PCI_BAR(1), REMOTE_PCI);
    qtest_writew(qts, DBI + PCI_COMMAND, 0x0006);
    loopback(qts, true);
    return qts;
}

static void smmu_quit(QTestState *qts)
{
    qtest_quit(qts);
    ep_base = PLATFORM_BUS_BASE;
}

/*
 * Inbound TLPs through the SMMU: a read-write page, a read-only one and
 * an unmapped one, reached by BAR0 (inbound target: IOVA).  A fault is
 * an event for our StreamID at the IOVA; the write is dropped, the read
 * completes with all ones.
 */
static void test_smmu_inbound(void)
{
    QTestState *qts = smmu_start("");

    smmu_map(qts, 0, PTE_RW);
    smmu_map(qts, 1, PTE_RO);
    map_outbound(qts, 0, WINDOW, 0x10000000, 0x4000);
    map_inbound_bar(qts, 0, 0, IOVA);

    qtest_writel(qts, WINDOW + 0x10, 0xdeadbeef);
    g_assert_cmphex(qtest_readl(qts, IOVA_PA + 0x10), ==, 0xdeadbeef);
    g_assert_cmphex(qtest_readl(qts, WINDOW + 0x10), ==, 0xdeadbeef);
    expect_no_event(qts);

    /* Read-only: reads work, a write is a permission fault */
    qtest_writel(qts, IOVA_PA + 0x1020, 0x11223344);
    g_assert_cmphex(qtest_readl(qts, WINDOW + 0x1020), ==, 0x11223344);
    expect_no_event(qts);
    qtest_writel(qts, WINDOW + 0x1020, 0x55667788);
    g_assert_cmphex(qtest_readl(qts, IOVA_PA + 0x1020), ==, 0x11223344);
    expect_event(qts, EVT_F_PERMISSION, IOVA + 0x1020);

    /* Unmapped: a translation fault for either direction */
    qtest_writel(qts, IOVA_PA + 0x2000, 0x99aabbcc);
    qtest_writel(qts, WINDOW + 0x2000, 0x12345678);
    g_assert_cmphex(qtest_readl(qts, IOVA_PA + 0x2000), ==, 0x99aabbcc);
    expect_event(qts, EVT_F_TRANSLATION, IOVA + 0x2000);
    g_assert_cmphex(qtest_readl(qts, WINDOW + 0x2004), ==, 0xffffffff);
    expect_event(qts, EVT_F_TRANSLATION, IOVA + 0x2004);

    /* Unmapped, then invalidated: the page faults from then on */
    smmu_map(qts, 0, 0);
    smmu_tlbi(qts);
    qtest_writel(qts, WINDOW + 0x10, 0x0badf00d);
    g_assert_cmphex(qtest_readl(qts, IOVA_PA + 0x10), ==, 0xdeadbeef);
    expect_event(qts, EVT_F_TRANSLATION, IOVA + 0x10);
    smmu_quit(qts);
}

/*
 * The eDMA's local side and its linked list through the SMMU: a transfer
 * between IOVAs works; an unmapped source aborts the channel with its
 * read error and an event; a read-only destination of a read channel
 * aborts with the write error and a permission event.
 */
static void test_smmu_edma(void)
{
    QTestState *qts = smmu_start("");
    uint64_t ll = IOVA + 0x3000;

    qtest_irq_intercept_out_named(qts, "/machine/peripheral/ep",
                                  "sysbus-irq");
    for (unsigned i = 0; i < 7; i++) {
        smmu_map(qts, i, i == 4 ? PTE_RO : PTE_RW);
    }
    /* The remote side, in loopback: BAR1 to IOVA pages 5 on */
    map_inbound_bar(qts, 0, 1, IOVA + 0x5000);

    /* Two pages each side, so translation by translation */
    fill(qts, IOVA_PA, 0x2000, 3);
    put_data_element(qts, IOVA_PA + 0x3000, CB | LIE, 0x2000, IOVA,
                     REMOTE_PCI);
    put_link_element(qts, IOVA_PA + 0x3018, TCB, ll);
    edma_start_ll(qts, WR, 0, ll);
    qtest_clock_step(qts, 1000 * 1000);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 3);
    g_assert(same(qts, IOVA_PA, IOVA_PA + 0x5000, 0x2000));
    qtest_writel(qts, EDMA + EDMA_INT_CLEAR(WR), 1);
    expect_no_event(qts);

    /* Source unmapped */
    put_data_element(qts, IOVA_PA + 0x3000, CB | LIE, 0x100, IOVA + 0x8000,
                     REMOTE_PCI);
    edma_start_ll(qts, WR, 0, ll);
    expect_abort(qts, WR, 0, EDMA_WR_ERR, 1u << 0);
    expect_event(qts, EVT_F_TRANSLATION, IOVA + 0x8000);

    /* A read channel's local destination read-only */
    put_data_element(qts, IOVA_PA + 0x3000, CB | LIE, 0x100, REMOTE_PCI,
                     IOVA + 0x4000);
    edma_start_ll(qts, RD, 0, ll);
    expect_abort(qts, RD, 0, EDMA_RD_ERR_LO, 1u << 0);
    expect_event(qts, EVT_F_PERMISSION, IOVA + 0x4000);

    /* The list itself unmapped */
    edma_start_ll(qts, WR, 0, IOVA + 0x9000);
    expect_abort(qts, WR, 0, EDMA_WR_ERR, 1u << 16);
    expect_event(qts, EVT_F_TRANSLATION, IOVA + 0x9000);
    smmu_quit(qts);
}

/* With the SMMU off (CR0.SMMUEN clear, GBPA bypass), IOVAs are addresses */
static void test_smmu_disabled(void)
{
    QTestState *qts = smmu_start("");

    qtest_writel(qts, SMMU + SMMU_CR0, 0);
    map_outbound(qts, 0, WINDOW, 0x10000000, 0x1000);
    map_inbound_bar(qts, 0, 0, RAM + 0x100000);
    qtest_writel(qts, WINDOW + 0x10, 0xfeedface);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x100010), ==, 0xfeedface);
    expect_no_event(qts);
    smmu_quit(qts);
}

/*
 * corrupt behind the SMMU: the write goes out at its CPU address, an
 * IOVA nothing maps, and faults there, as on the R-Car S4.  The positive
 * control first: drained in time, it lands through BAR0.
 */
/* Window region 0 onto BAR0, BAR0 onto IOVA page 0 (read-write) */
static QTestState *smmu_corrupt_start(void)
{
    QTestState *qts = smmu_start(",posted-write-latency-ns=1000,"
                                 "iatu-hazard=corrupt");

    smmu_map(qts, 0, PTE_RW);
    map_outbound(qts, 0, WINDOW, 0x10000000, 0x4000);
    map_inbound_bar(qts, 0, 0, IOVA);
    return qts;
}

static void test_hazard_corrupt_smmu(void)
{
    QTestState *qts = smmu_corrupt_start();

    qtest_writel(qts, WINDOW + 0x10, 0x600d600d);
    qtest_clock_step(qts, 1000);
    g_assert_cmphex(qtest_readl(qts, IOVA_PA + 0x10), ==, 0x600d600d);
    expect_no_event(qts);

    qtest_writel(qts, WINDOW + 0x40, 0xbad0bad0);
    qtest_writel(qts, OB(0) + CTRL2, 0);
    qtest_clock_step(qts, 1000);
    expect_event(qts, EVT_F_TRANSLATION, WINDOW + 0x40);
    expect_no_event(qts);
    g_assert_cmphex(qtest_readl(qts, IOVA_PA + 0x40), ==, 0);
    g_assert_cmpuint(ep_counter(qts, "x-posted-untranslated"), ==, 1);
    smmu_quit(qts);
}

/*
 * corrupt sends an untranslated write only to RAM, as an inbound TLP
 * may go: here the IOVA maps the page of the EP's own iATU registers,
 * which the write must not reach (it used to, inside the window read
 * that drained it).
 */
#define OWN_L2              (SMMU_TABLES + 0xe000)
#define OWN_L3              (SMMU_TABLES + 0xf000)

/* IOVA = the window's first page, mapped onto @pa */
static void smmu_map_window_page(QTestState *qts, uint64_t pa)
{
    qtest_writeq(qts, PT_L1, OWN_L2 | 3);
    qtest_writeq(qts, OWN_L2 + 8 * (WINDOW >> 21), OWN_L3 | 3);
    qtest_writeq(qts, OWN_L3 + 8 * ((WINDOW >> 12) & 0x1ff), pa | PTE_RW);
}

/* Where the guest mapped that IOVA onto RAM, the write lands there */
static void test_hazard_corrupt_smmu_mapped(void)
{
    QTestState *qts = smmu_corrupt_start();

    smmu_map_window_page(qts, IOVA_PA + 0x3000);
    qtest_writel(qts, WINDOW + 0x40, 0x0dd0beef);
    qtest_writel(qts, OB(0) + CTRL2, 0);
    qtest_clock_step(qts, 1000);
    g_assert_cmphex(qtest_readl(qts, IOVA_PA + 0x3040), ==, 0x0dd0beef);
    g_assert_cmpuint(ep_counter(qts, "x-posted-untranslated"), ==, 1);
    expect_no_event(qts);
    smmu_quit(qts);
}

static void test_hazard_corrupt_own_registers(void)
{
    QTestState *qts = smmu_corrupt_start();

    smmu_map_window_page(qts, OB(0) & ~0xfffULL);
    qtest_writel(qts, IOVA_PA + 0x100, 0x5a5a5a5a);

    qtest_writel(qts, WINDOW + (OB(0) & 0xfff) + CTRL2, REGION_EN);
    qtest_writel(qts, OB(0) + CTRL2, 0);
    g_assert_cmphex(qtest_readl(qts, WINDOW + 0x100), ==, 0xffffffff);
    g_assert_cmphex(qtest_readl(qts, OB(0) + CTRL2), ==, 0);
    g_assert_cmpuint(ep_counter(qts, "x-posted-untranslated"), ==, 1);
    smmu_quit(qts);
}

static void test_edma_legacy(void)
{
    QTestState *qts = edma_start(",ip-version=5.20a,edma-legacy=on,"
                                 "edma-wr-channels=2,edma-rd-channels=4");
    uint64_t base = DBI + 0x970, sel = base + 0xfc, ch = base + 0x100;

    g_assert_cmphex(qtest_readl(qts, base + EDMA_CTRL), ==, 0x00040002);
    fill(qts, REMOTE, 0x400, 0x66);
    put_data_element(qts, LL, CB | LIE, 0x400, REMOTE_PCI, LOCAL);
    put_link_element(qts, LL + 24, TCB, LL);
    qtest_writel(qts, base + EDMA_ENGINE_EN(RD), 1);
    qtest_writel(qts, base + EDMA_INT_MASK(RD), 0);
    qtest_writel(qts, sel, 0x80000003);         /* read channel 3 */
    qtest_writel(qts, ch + CH_CTRL1, CCS | LLE);
    qtest_writel(qts, ch + CH_LLP, LL);
    qtest_writel(qts, ch + CH_LLP + 4, LL >> 32);
    qtest_writel(qts, sel, 0x00000001);         /* write channel 1 */
    g_assert_cmphex(qtest_readl(qts, ch + CH_LLP), ==, 0);
    qtest_writel(qts, base + EDMA_DOORBELL(RD), 3);
    qtest_clock_step(qts, 1000 * 1000);
    qtest_writel(qts, sel, 0x80000003);
    g_assert_cmphex(CS(qtest_readl(qts, ch + CH_CTRL1)), ==, 3);
    g_assert(same(qts, LOCAL, REMOTE, 0x400));
    g_assert_cmphex(qtest_readl(qts, base + EDMA_INT_STATUS(RD)), ==, 8);
    qtest_quit(qts);
}


/* ---------------------------------------------------------------------- */
/* R-Car Gen4 (S4): the same core, Renesas' glue and BARs */

#define APP                 (ep_base + 0x3000)
#define PCIERSTCTRL1        0x14
#define PCIEINTSTS0         0x84
#define PCIEDMAINTSTSEN     0x314
#define LINK_SPEED_CONTROL  0x80c
#define SPEED_CHANGE        (1u << 17)
#define REBAR_CAP(i)        (4 + 8 * (i))
#define REBAR_CTRL(i)       (8 + 8 * (i))

static QTestState *rcar_start(const char *props)
{
    g_autofree char *smp = smp_args();

    return qtest_initf("-M virt,gic-version=3 -nic none %s "
                       "-device rcar-gen4-pcie-ep,id=ep%s%s", smp,
                       posted_default(props), props);
}

/*
 * The glue's registers: LTSSM enable in PCIERSTCTRL1 (with the PHY
 * reset held at reset), link status in PCIEINTSTS0, enables kept; a
 * directed speed change stays pending with no partner.
 */
static void test_rcar_app(void)
{
    QTestState *qts = rcar_start("");

    g_assert_cmphex(qtest_readl(qts, APP + PCIERSTCTRL1), ==, 0x00010000);
    g_assert_cmphex(qtest_readl(qts, APP + PCIEINTSTS0), ==, 0);
    /* r8a779f0_pcie_ltssm_control(true) */
    qtest_writel(qts, APP + PCIERSTCTRL1, 0x00000001);
    g_assert_cmphex(qtest_readl(qts, APP + PCIERSTCTRL1), ==, 0x00000001);
    /* No partner: the link stays down */
    g_assert_cmphex(qtest_readl(qts, APP + PCIEINTSTS0), ==, 0);
    g_assert_cmphex(qtest_readl(qts, DBI + PORT_DEBUG1) & 0x10, ==, 0);
    qtest_writel(qts, APP + PCIEDMAINTSTSEN, 0xffff);
    g_assert_cmphex(qtest_readl(qts, APP + PCIEDMAINTSTSEN), ==, 0xffff);
    /* Read-only: the write is refused, the status is what it was */
    qtest_writel(qts, APP + PCIEINTSTS0, 0xc0);
    g_assert_cmphex(qtest_readl(qts, APP + PCIEINTSTS0), ==, 0);
    qtest_writel(qts, DBI + LINK_SPEED_CONTROL,
                 qtest_readl(qts, DBI + LINK_SPEED_CONTROL) | SPEED_CHANGE);
    g_assert_cmphex(qtest_readl(qts, DBI + LINK_SPEED_CONTROL) & SPEED_CHANGE,
                    ==, SPEED_CHANGE);
    /* A reset drops the LTSSM enable and holds the PHY again */
    qtest_system_reset(qts);
    g_assert_cmphex(qtest_readl(qts, APP + PCIERSTCTRL1), ==, 0x00010000);
    g_assert_cmphex(qtest_readl(qts, APP + PCIEDMAINTSTSEN), ==, 0);
    qtest_quit(qts);
}

/* dw_pcie_ep_set_bar_resizable(): enable bit in DBI2, one size in CAP */
static void set_rebar(QTestState *qts, int bar, int entry, uint64_t size,
                      uint32_t flags)
{
    uint16_t rebar = find_ext_cap(qts, EXT_CAP_REBAR);

    ro_wr_en(qts, true);
    qtest_writel(qts, DBI2 + PCI_BAR(bar), 1);
    qtest_writel(qts, DBI + PCI_BAR(bar), flags);
    if (flags & 0x4) {
        qtest_writel(qts, DBI2 + PCI_BAR(bar + 1), 0);
        qtest_writel(qts, DBI + PCI_BAR(bar + 1), 0);
    }
    qtest_writel(qts, DBI + rebar + REBAR_CTRL(entry),
                 qtest_readl(qts, DBI + rebar + REBAR_CTRL(entry)) & 0xffff);
    qtest_writel(qts, DBI + rebar + REBAR_CAP(entry),
                 1u << (4 + __builtin_ctzll(size >> 20)));
    ro_wr_en(qts, false);
}

/*
 * R-Car's BARs: 0 and 2 resizable (the capability lists them, and the
 * BAR's size follows the selected one, not a DBI2 mask), 4 fixed at
 * 256 bytes (only the enable bit of its mask is writable).
 */
static void test_rcar_bars(void)
{
    QTestState *qts = rcar_start("");
    uint16_t rebar = find_ext_cap(qts, EXT_CAP_REBAR);

    g_assert_cmphex(rebar, !=, 0);
    /* Two resizable BARs, 0 and 2; 1 MB supported and selected at reset */
    g_assert_cmphex(qtest_readl(qts, DBI + rebar + REBAR_CTRL(0)), ==, 0x40);
    g_assert_cmphex(qtest_readl(qts, DBI + rebar + REBAR_CTRL(1)), ==, 0x2);
    g_assert_cmphex(qtest_readl(qts, DBI + rebar + REBAR_CAP(0)), ==, 0x10);
    g_assert_cmphex(size_bar(qts, 0), ==, 0);

    /* vNTB's config BAR: a 2 MB 32-bit BAR0 */
    set_rebar(qts, 0, 0, 2 * 1024 * 1024, 0);
    g_assert_cmphex(qtest_readl(qts, DBI + rebar + REBAR_CTRL(0)) & 0x3f00,
                    ==, 0x100);
    g_assert_cmphex(size_bar(qts, 0), ==, 0xffe00000);
    g_assert_cmphex(qtest_readl(qts, DBI2 + PCI_BAR(0)), ==, 0x001fffff);
    /* A DBI2 mask write does not resize it */
    ro_wr_en(qts, true);
    qtest_writel(qts, DBI2 + PCI_BAR(0), 0xffff);
    ro_wr_en(qts, false);
    g_assert_cmphex(size_bar(qts, 0), ==, 0xffe00000);
    /* The host selects 1 MB; the supported sizes stay read-only to it */
    qtest_writel(qts, DBI + rebar + REBAR_CTRL(0), 0x000);
    qtest_writel(qts, DBI + rebar + REBAR_CAP(0), 0xfffffff0);
    g_assert_cmphex(qtest_readl(qts, DBI + rebar + REBAR_CAP(0)), ==, 0x20);
    g_assert_cmphex(size_bar(qts, 0), ==, 0xfff00000);

    /* A 64-bit 8 GB BAR2: the upper half's mask follows too */
    set_rebar(qts, 2, 1, 8ULL << 30, 0xc);
    g_assert_cmphex(size_bar(qts, 2), ==, 0x0000000c);
    g_assert_cmphex(size_bar(qts, 3), ==, 0xfffffffe);

    /* BAR4, fixed: Linux's mask of 64 KiB leaves it at 256 bytes */
    set_bar(qts, 4, 0x10000, 0);
    g_assert_cmphex(qtest_readl(qts, DBI2 + PCI_BAR(4)), ==, 0xff);
    g_assert_cmphex(size_bar(qts, 4), ==, 0xffffff00);
    ro_wr_en(qts, true);
    qtest_writel(qts, DBI2 + PCI_BAR(4), 0);
    ro_wr_en(qts, false);
    g_assert_cmphex(size_bar(qts, 4), ==, 0);

    /* A programmable BAR stays so */
    set_bar(qts, 5, 0x4000, 0);
    g_assert_cmphex(size_bar(qts, 5), ==, 0xffffc000);
    qtest_quit(qts);
}

/*
 * 64-bit pairs: the upper half of a resizable BAR follows its size, and
 * is no BAR of its own when the pair is disabled or split (it used to
 * keep the enable bit of an 8 GB size); a resizable BAR that is the
 * upper half of a programmable one keeps what was written.
 */
static void test_rcar_bar_pairs(void)
{
    QTestState *qts = rcar_start("");
    uint16_t rebar = find_ext_cap(qts, EXT_CAP_REBAR);

    set_rebar(qts, 0, 0, 8ULL << 30, 0xc);
    g_assert_cmphex(qtest_readl(qts, DBI2 + PCI_BAR(1)), ==, 0x1);
    ro_wr_en(qts, true);
    qtest_writel(qts, DBI2 + PCI_BAR(0), 0);
    qtest_writel(qts, DBI + rebar + REBAR_CAP(0), 1u << 17);
    ro_wr_en(qts, false);
    g_assert_cmphex(size_bar(qts, 0), ==, 0);
    g_assert_cmphex(size_bar(qts, 1), ==, 0);

    /* 8 GB BAR2, made 32-bit: BAR3 is no 16-byte BAR */
    set_rebar(qts, 2, 1, 8ULL << 30, 0xc);
    g_assert_cmphex(size_bar(qts, 3), ==, 0xfffffffe);
    ro_wr_en(qts, true);
    qtest_writel(qts, DBI + PCI_BAR(2), 0);
    ro_wr_en(qts, false);
    g_assert_cmphex(size_bar(qts, 3), ==, 0);
    qtest_quit(qts);

    /* BAR1 programmable and 64-bit: BAR2 is its upper half */
    qts = rcar_start("");
    set_bar(qts, 1, 0x10000, 0xc);
    g_assert_cmphex(qtest_readl(qts, DBI2 + PCI_BAR(2)), ==, 0);
    ro_wr_en(qts, true);
    qtest_writel(qts, DBI + rebar + REBAR_CAP(1), 1u << 5);
    ro_wr_en(qts, false);
    g_assert_cmphex(qtest_readl(qts, DBI2 + PCI_BAR(2)), ==, 0);
    g_assert_cmphex(size_bar(qts, 1), ==, 0xffff000c);
    g_assert_cmphex(size_bar(qts, 2), ==, 0xffffffff);
    /* Split back to 32-bit: the resizable BAR2 is not enabled by it */
    ro_wr_en(qts, true);
    qtest_writel(qts, DBI + PCI_BAR(1), 0);
    ro_wr_en(qts, false);
    g_assert_cmphex(size_bar(qts, 2), ==, 0);
    qtest_quit(qts);

    /*
     * BAR1 with stale 64-bit type bits as BAR0's upper half (8 GB): BAR2
     * is no upper half of it, and keeps its own 1 MB
     */
    qts = rcar_start("");
    rebar = find_ext_cap(qts, EXT_CAP_REBAR);
    ro_wr_en(qts, true);
    qtest_writel(qts, DBI + PCI_BAR(1), 0xc);
    qtest_writel(qts, DBI + rebar + REBAR_CAP(0), 1u << 17);
    qtest_writel(qts, DBI2 + PCI_BAR(0), 1);
    qtest_writel(qts, DBI + PCI_BAR(0), 0xc);
    qtest_writel(qts, DBI2 + PCI_BAR(2), 1);
    qtest_writel(qts, DBI + PCI_BAR(2), 0);
    ro_wr_en(qts, false);
    g_assert_cmphex(qtest_readl(qts, DBI2 + PCI_BAR(1)), ==, 0x1);
    g_assert_cmphex(size_bar(qts, 2), ==, 0xfff00000);
    qtest_quit(qts);

    /* Enabled through DBI2 when already 64-bit: the upper half follows */
    qts = rcar_start("");
    rebar = find_ext_cap(qts, EXT_CAP_REBAR);
    ro_wr_en(qts, true);
    qtest_writel(qts, DBI + rebar + REBAR_CAP(0), 1u << 17);
    qtest_writel(qts, DBI + PCI_BAR(0), 0xc);
    qtest_writel(qts, DBI2 + PCI_BAR(0), 1);
    ro_wr_en(qts, false);
    g_assert_cmphex(qtest_readl(qts, DBI2 + PCI_BAR(1)), ==, 0x1);
    g_assert_cmphex(size_bar(qts, 1), ==, 0xfffffffe);
    qtest_quit(qts);
}

/* The fixed BAR decodes 256 bytes over the eDMA's registers (vNTB's DB) */
static void test_rcar_fixed_bar_inbound(void)
{
    QTestState *qts = rcar_start("");

    set_bar(qts, 4, 256, 0);
    qtest_writel(qts, DBI + PCI_BAR(4), 0x30000000);
    qtest_writew(qts, DBI + PCI_COMMAND, 0x0006);
    loopback(qts, true);
    map_outbound(qts, 0, WINDOW, 0x30000000, 0x1000);
    map_inbound_bar(qts, 0, 4, RAM + 0x200000);
    qtest_writel(qts, WINDOW + 0xfc, 0x600dcafe);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x2000fc), ==, 0x600dcafe);
    /* Past the 256 bytes, no BAR decodes */
    qtest_writel(qts, RAM + 0x200100, 0x11111111);
    qtest_writel(qts, WINDOW + 0x100, 0x22222222);
    g_assert_cmphex(qtest_readl(qts, RAM + 0x200100), ==, 0x11111111);
    qtest_quit(qts);
}

/*
 * Bad input from the EP's guest (docs/bad-input.md): each gets the
 * guest error (or LOG_UNIMP) line the table gives, and defined values.
 */
#define ELBI                (ep_base + 0x3000)

typedef struct BadInput {
    char *log;
    QTestState *qts;
} BadInput;

static void bad_start(BadInput *b, const char *props)
{
    g_autofree char *args = NULL;

    b->log = guest_log_path();
    args = g_strdup_printf("-d guest_errors,unimp -D %s", b->log);
    b->qts = loopback_start_args(args, props);
}

/* Quit, so that the log is complete, and look for each line */
static void bad_end(BadInput *b, const char *const *lines)
{
    qtest_quit(b->qts);
    for (; *lines; lines++) {
        if (!log_says(b->log, *lines)) {
            g_autofree char *text = NULL;

            g_file_get_contents(b->log, &text, NULL, NULL);
            g_error("the log lacks \"%s\"; it has:\n%s", *lines, text);
        }
    }
    log_remove(b->log);
}

static void test_bad_elbi_write(void)
{
    BadInput b;

    bad_start(&b, "");
    qtest_writel(b.qts, ELBI + 4, 1);
    qtest_writel(b.qts, ELBI + 8, 0xffffffff);
    /* Loopback is not a link to a host: the status says down */
    g_assert_cmphex(qtest_readl(b.qts, ELBI + 4), ==, 0);
    g_assert_cmphex(qtest_readl(b.qts, ELBI + 8), ==, 0);
    bad_end(&b, (const char *const[]) {
        "write to read-only or reserved ELBI register 0x4",
        "write to read-only or reserved ELBI register 0x8", NULL });
}

static void test_bad_viewport_access(void)
{
    BadInput b;

    bad_start(&b, ",atu-viewport=on");
    qtest_writel(b.qts, DBI + ATU_VIEWPORT, 0);
    qtest_writel(b.qts, DBI + 0x90c, 0x12345000);
    qtest_writew(b.qts, DBI + 0x90c, 0xffff);
    qtest_writeb(b.qts, DBI + 0x90e, 0xff);
    g_assert_cmphex(qtest_readl(b.qts, DBI + 0x90c), ==, 0x12345000);
    /* The unrolled space is not there: writes ignored, reads 0 */
    qtest_writel(b.qts, OB(0) + LOWER_BASE, 0xabcd0000);
    g_assert_cmphex(qtest_readl(b.qts, OB(0) + LOWER_BASE), ==, 0);
    g_assert_cmphex(qtest_readl(b.qts, DBI + 0x90c), ==, 0x12345000);
    bad_end(&b, (const char *const[]) {
        "2-byte write to the iATU viewport at 0x90c ignored",
        "1-byte write to the iATU viewport at 0x90e ignored",
        "write to the unrolled iATU space of a controller with the legacy "
        "viewport", NULL });
}

static void test_bad_iatu_offset(void)
{
    BadInput b;

    bad_start(&b, "");
    qtest_writel(b.qts, OB(0) + 0x30, 0xffffffff);
    qtest_writel(b.qts, IB(1) + 0x40, 0xffffffff);
    g_assert_cmphex(qtest_readl(b.qts, OB(0) + 0x30), ==, 0);
    g_assert_cmphex(qtest_readl(b.qts, IB(1) + 0x40), ==, 0);
    /* The region's own registers are untouched */
    g_assert_cmphex(qtest_readl(b.qts, OB(0) + CTRL2), ==, 0);
    bad_end(&b, (const char *const[]) {
        "write to reserved iATU offset 0x30",
        "write to reserved iATU offset 0x340", NULL });
}

static void test_bad_dbi2_register(void)
{
    BadInput b;

    bad_start(&b, "");
    qtest_writel(b.qts, DBI2 + 0x40, 0xffffffff);
    g_assert_cmphex(qtest_readl(b.qts, DBI2 + 0x40), ==, 0);
    /* BAR0's mask (0xfff from loopback_start) stays */
    g_assert_cmphex(qtest_readl(b.qts, DBI2 + PCI_BAR(0)), ==, 0xfff);
    bad_end(&b, (const char *const[]) {
        "DBI2 register 0x40 is not modelled", NULL });
}

/*
 * An outbound region whose limit is below its base, or whose type is
 * not memory, translates nothing: the window's write is discarded and
 * its read is all ones.
 */
static void bad_outbound_region(uint32_t limit_delta, uint32_t ctrl1)
{
    BadInput b;

    bad_start(&b, "");
    map_inbound_bar(b.qts, 0, 0, LANDS);
    map_outbound(b.qts, 0, WINDOW + 0x1000, 0x10000000, 0x1000);
    qtest_writel(b.qts, OB(0) + LIMIT, WINDOW + 0x1000 + limit_delta);
    qtest_writel(b.qts, OB(0) + CTRL1, ctrl1);
    qtest_writel(b.qts, WINDOW + 0x1010, 0x5a5a5a5a);
    g_assert_cmphex(qtest_readl(b.qts, LANDS + 0x10), ==, 0);
    g_assert_cmphex(qtest_readl(b.qts, WINDOW + 0x1010), ==, 0xffffffff);
    /* The same region made good again works */
    qtest_writel(b.qts, OB(0) + LIMIT, WINDOW + 0x1fff);
    qtest_writel(b.qts, OB(0) + CTRL1, 0);
    qtest_writel(b.qts, WINDOW + 0x1010, 0x5a5a5a5a);
    g_assert_cmphex(qtest_readl(b.qts, LANDS + 0x10), ==, 0x5a5a5a5a);
    bad_end(&b, (const char *const[]) {
        "is not inside an enabled outbound iATU region: discarded",
        "is not inside an enabled outbound iATU region: all ones", NULL });
}

static void test_bad_outbound_limit(void)
{
    bad_outbound_region(-0x10, 0);
}

static void test_bad_outbound_type(void)
{
    bad_outbound_region(0xfff, 2);      /* I/O */
}

static void test_bad_edma_doorbell(void)
{
    BadInput b;

    bad_start(&b, "");
    qtest_writel(b.qts, EDMA + EDMA_ENGINE_EN(WR), 1);
    qtest_writel(b.qts, EDMA + EDMA_DOORBELL(WR), 5);
    qtest_writel(b.qts, EDMA + EDMA_DOORBELL(RD), 2);
    /* STOP for a channel that does not run: nothing happens */
    qtest_writel(b.qts, EDMA + EDMA_DOORBELL(WR), 0x80000001);
    for (int ch = 0; ch < 2; ch++) {
        g_assert_cmphex(ch_cs(b.qts, WR, ch), ==, 0);
        g_assert_cmphex(ch_cs(b.qts, RD, ch), ==, 0);
    }
    g_assert_cmphex(qtest_readl(b.qts, EDMA + EDMA_INT_STATUS(WR)), ==, 0);
    g_assert_cmphex(qtest_readl(b.qts, EDMA + EDMA_INT_STATUS(RD)), ==, 0);
    bad_end(&b, (const char *const[]) {
        "doorbell for write channel 5, of 2: ignored",
        "doorbell for read channel 2, of 2: ignored", NULL });
}

static void test_bad_edma_running(void)
{
    QTestState *qts;
    BadInput b;

    bad_start(&b, ",edma-bandwidth=1");
    qts = b.qts;
    map_inbound_bar(qts, 0, 1, REMOTE);
    put_data_element(qts, LL, CB | LIE, 0x100000, LOCAL, REMOTE_PCI);
    edma_start_ll(qts, WR, 0, LL);
    qtest_clock_step(qts, 1000);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 1);
    /* A second doorbell, and channel writes, while it runs */
    qtest_writel(qts, EDMA + EDMA_DOORBELL(WR), 0);
    qtest_writel(qts, EDMA_CH(WR, 0) + CH_LLP, 0x1000);
    g_assert_cmphex(qtest_readl(qts, EDMA_CH(WR, 0) + CH_LLP), !=, 0x1000);
    g_assert_cmphex(ch_cs(qts, WR, 0), ==, 1);
    /* Past a channel's registers: nothing there */
    qtest_writel(qts, EDMA_CH(WR, 1) + 0x40, 0xffffffff);
    g_assert_cmphex(qtest_readl(qts, EDMA_CH(WR, 1) + 0x40), ==, 0);
    bad_end(&b, (const char *const[]) {
        "doorbell for write channel 0, which is running: ignored",
        "to register 0x1c of write channel 0 while it runs: ignored",
        "no channel register there", NULL });
}

/*
 * A realize error: QEMU exits at once with the message.  One that did
 * start would run until killed, so it gets 30 s and then fails.
 */
static void realize_fails(const char *props, const char *message)
{
    g_autofree char *cmd = g_strdup_printf(
        "%s -M virt,gic-version=3 -nic none -display none -S "
        "-device dw-pcie-ep%s", qtest_qemu_binary(NULL), props);
    g_auto(GStrv) argv = g_strsplit(cmd, " ", -1);
    g_autofree char *err = NULL;
    GPid pid;
    int err_fd, status = 0;
    pid_t done = 0;

    g_assert(g_spawn_async_with_pipes(NULL, argv, NULL,
                                      G_SPAWN_DO_NOT_REAP_CHILD |
                                      G_SPAWN_STDOUT_TO_DEV_NULL,
                                      NULL, NULL, &pid, NULL, NULL, &err_fd,
                                      NULL));
    for (int i = 0; i < 3000 && !done; i++) {
        done = waitpid(pid, &status, WNOHANG);
        if (!done) {
            g_usleep(10 * 1000);
        }
    }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        g_error("\"%s\" started: a bad property was accepted", cmd);
    }
    err = g_malloc0(4096);
    g_assert_cmpint(read(err_fd, err, 4095), >, 0);
    close(err_fd);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    if (!strstr(err, message)) {
        g_error("\"%s\" said \"%s\", not \"%s\"", cmd, err, message);
    }
}

static void test_bad_posted_depth(void)
{
    realize_fails(",posted-write-depth=0",
                  "posted-write-depth must be 1 to 64, not 0");
    realize_fails(",posted-write-depth=65",
                  "posted-write-depth must be 1 to 64, not 65");
}

/* An inbound BAR match on BAR 6 matches nothing: the TLP is refused */
static void test_bad_inbound_bar_num(void)
{
    BadInput b;

    bad_start(&b, "");
    map_outbound(b.qts, 0, WINDOW, 0x10000000, 0x1000);
    map_inbound_bar(b.qts, 0, 0, LANDS);
    qtest_writel(b.qts, IB(0) + CTRL2, REGION_EN | BAR_MATCH | 6 << 8);
    qtest_writel(b.qts, WINDOW + 0x10, 0x66666666);
    g_assert_cmphex(qtest_readl(b.qts, LANDS + 0x10), ==, 0);
    qtest_writel(b.qts, IB(0) + CTRL2, REGION_EN | BAR_MATCH);
    qtest_writel(b.qts, WINDOW + 0x10, 0x66666666);
    g_assert_cmphex(qtest_readl(b.qts, LANDS + 0x10), ==, 0x66666666);
    bad_end(&b, (const char *const[]) {
        "(BAR0) matches no inbound iATU region", NULL });
}

/* Two outbound regions over one range: the lower-numbered one wins */
static void test_bad_outbound_overlap(void)
{
    BadInput b;

    bad_start(&b, "");
    map_inbound_bar(b.qts, 0, 0, LANDS);
    map_inbound_bar(b.qts, 1, 1, REMOTE + 0x100000);
    map_outbound(b.qts, 1, WINDOW, 0x20000000, 0x1000);
    map_outbound(b.qts, 0, WINDOW, 0x10000000, 0x1000);
    qtest_writel(b.qts, WINDOW + 0x20, 0x01010101);
    g_assert_cmphex(qtest_readl(b.qts, LANDS + 0x20), ==, 0x01010101);
    g_assert_cmphex(qtest_readl(b.qts, REMOTE + 0x100020), ==, 0);
    qtest_writel(b.qts, OB(0) + CTRL2, 0);
    qtest_writel(b.qts, WINDOW + 0x20, 0x02020202);
    g_assert_cmphex(qtest_readl(b.qts, REMOTE + 0x100020), ==, 0x02020202);
    g_assert_cmphex(qtest_readl(b.qts, LANDS + 0x20), ==, 0x01010101);
    bad_end(&b, (const char *const[]) { NULL });
}

/* Start write channel @ch on a list at LL, ringing with @doorbell */
static void edma_ring_ll(QTestState *qts, int ch, uint64_t ll,
                         uint32_t doorbell)
{
    qtest_writel(qts, EDMA + EDMA_ENGINE_EN(WR), 1);
    qtest_writel(qts, EDMA + EDMA_INT_MASK(WR), 0);
    qtest_writel(qts, EDMA_CH(WR, ch) + CH_CTRL1, CCS | LLE);
    edma_wr64(qts, EDMA_CH(WR, ch) + CH_LLP, ll);
    qtest_writel(qts, EDMA + EDMA_DOORBELL(WR), doorbell);
}

/* Doorbell bits above CH are not the channel number: 9 rings 1 */
static void test_bad_edma_doorbell_high_bits(void)
{
    BadInput b;

    bad_start(&b, "");
    map_inbound_bar(b.qts, 0, 1, REMOTE);
    fill(b.qts, LOCAL, 0x100, 0x31);
    put_data_element(b.qts, LL, CB | LIE, 0x100, LOCAL, REMOTE_PCI);
    put_link_element(b.qts, LL + 24, TCB, LL);
    edma_ring_ll(b.qts, 1, LL, 9);
    qtest_clock_step(b.qts, 1000 * 1000);
    g_assert_cmphex(ch_cs(b.qts, WR, 1), ==, 3);
    g_assert(same(b.qts, LOCAL, REMOTE, 0x100));
    g_assert_cmphex(qtest_readl(b.qts, EDMA + EDMA_INT_STATUS(WR)), ==, 2);
    bad_end(&b, (const char *const[]) { NULL });
}

/*
 * A data element of size 0 moves nothing and is done; with RIE its
 * done IMWr goes to an address nothing decodes: said, and the status
 * is set all the same.
 */
static void test_bad_edma_size_0_imwr(void)
{
    BadInput b;

    bad_start(&b, "");
    map_inbound_bar(b.qts, 0, 1, REMOTE);
    fill(b.qts, LOCAL, 0x100, 0x77);
    edma_wr64(b.qts, EDMA + EDMA_DONE_IMWR(WR), UNMAPPED);
    put_data_element(b.qts, LL, CB | LIE | RIE, 0, LOCAL, REMOTE_PCI);
    put_link_element(b.qts, LL + 24, TCB, LL);
    edma_ring_ll(b.qts, 0, LL, 0);
    qtest_clock_step(b.qts, 1000 * 1000);
    g_assert_cmphex(ch_cs(b.qts, WR, 0), ==, 3);
    g_assert_cmphex(qtest_readl(b.qts, REMOTE), ==, 0);
    g_assert_cmphex(qtest_readl(b.qts, EDMA + EDMA_INT_STATUS(WR)), ==, 1);
    bad_end(&b, (const char *const[]) {
        "dw-edma: write channel 0: the done IMWr to 0x800000000 could not "
        "be sent", NULL });
}

/* Legacy eDMA: a viewport selecting a channel that is not there */
static void test_bad_edma_viewport_sel(void)
{
    uint64_t base = DBI + 0x970, sel = base + 0xfc, ch = base + 0x100;
    BadInput b;

    bad_start(&b, ",ip-version=5.20a,edma-legacy=on,edma-wr-channels=2,"
              "edma-rd-channels=2");
    qtest_writel(b.qts, sel, 0x00000005);           /* write channel 5 */
    qtest_writel(b.qts, ch + CH_LLP, 0x1000);
    g_assert_cmphex(qtest_readl(b.qts, ch + CH_LLP), ==, 0);
    qtest_writel(b.qts, sel, 0x00000001);           /* write channel 1 */
    g_assert_cmphex(qtest_readl(b.qts, ch + CH_LLP), ==, 0);
    bad_end(&b, (const char *const[]) {
        "dw-edma: write of 0x1000 at 0x11c, no channel register there",
        NULL });
}

/*
 * The window takes naturally aligned accesses of 1 to 8 bytes.  QEMU's
 * memory core splits any other access into such pieces
 * (memory_access_size()) and each is translated on its own, so no
 * access runs past a region's limit (regions are 4 KiB aligned at
 * least): an unaligned write inside a region lands whole, and one that
 * straddles the limit lands up to it, its piece beyond discarded with
 * the line of an access outside any region.
 */
static void test_bad_window_straddle(void)
{
    g_autofree char *beyond_wr = g_strdup_printf(
        "outbound write of 2 bytes at 0x%" PRIx64 " is not inside an "
        "enabled outbound iATU region: discarded", (uint64_t)WINDOW + 0x2000);
    g_autofree char *beyond_rd = g_strdup_printf(
        "outbound read of 2 bytes at 0x%" PRIx64 " is not inside an "
        "enabled outbound iATU region: all ones", (uint64_t)WINDOW + 0x2000);
    BadInput b;

    bad_start(&b, "");
    map_inbound_bar(b.qts, 0, 0, LANDS);
    map_outbound(b.qts, 0, WINDOW + 0x1000, 0x10000000, 0x1000);
    qtest_writel(b.qts, WINDOW + 0x1012, 0x44332211);
    g_assert_cmphex(qtest_readl(b.qts, LANDS + 0x10), ==, 0x22110000);
    g_assert_cmphex(qtest_readl(b.qts, LANDS + 0x14), ==, 0x00004433);
    g_assert_cmphex(qtest_readl(b.qts, WINDOW + 0x1012), ==, 0x44332211);
    qtest_writel(b.qts, WINDOW + 0x1ffe, 0x88776655);
    g_assert_cmphex(qtest_readl(b.qts, LANDS + 0xffc), ==, 0x66550000);
    g_assert_cmphex(qtest_readl(b.qts, WINDOW + 0x1ffe), ==, 0xffff6655);
    bad_end(&b, (const char *const[]) { beyond_wr, beyond_rd, NULL });
}

/*
 * Link Capabilities (under DBI_RO_WR_EN) and Link Control 2's target
 * speed keep what is written, out of range too; Link Status reports a
 * speed and a width of at least 1 and within max-link-speed and
 * num-lanes (3 and 4 by default).
 */
static void test_bad_link_caps(void)
{
    QTestState *qts = loopback_start();
    uint8_t exp = find_cap(qts, CAP_EXP);
    uint32_t lnkcap = qtest_readl(qts, DBI + exp + 0x0c) & ~0x3ffu;
    uint16_t lnkctl2 = qtest_readw(qts, DBI + exp + 0x30) & ~0xfu;

    ro_wr_en(qts, true);
    qtest_writel(qts, DBI + exp + 0x0c, lnkcap);            /* 0, x0 */
    g_assert_cmphex(qtest_readl(qts, DBI + exp + 0x0c) & 0x3ff, ==, 0);
    g_assert_cmphex(qtest_readw(qts, DBI + exp + 0x12) & 0x3ff, ==, 0x011);
    qtest_writel(qts, DBI + exp + 0x0c, lnkcap | 0x3ff);    /* 15, x63 */
    ro_wr_en(qts, false);
    g_assert_cmphex(qtest_readl(qts, DBI + exp + 0x0c) & 0x3ff, ==, 0x3ff);
    g_assert_cmphex(qtest_readw(qts, DBI + exp + 0x12) & 0x3ff, ==, 0x043);
    qtest_writew(qts, DBI + exp + 0x30, lnkctl2);           /* target 0 */
    g_assert_cmphex(qtest_readw(qts, DBI + exp + 0x30) & 0xf, ==, 0);
    g_assert_cmphex(qtest_readw(qts, DBI + exp + 0x12) & 0xf, ==, 1);
    qtest_writew(qts, DBI + exp + 0x30, lnkctl2 | 0xf);     /* target 15 */
    g_assert_cmphex(qtest_readw(qts, DBI + exp + 0x30) & 0xf, ==, 0xf);
    g_assert_cmphex(qtest_readw(qts, DBI + exp + 0x12) & 0xf, ==, 3);
    qtest_quit(qts);
}

/* R-Car's app and PHY registers that are not modelled: LOG_UNIMP, 0 */
#define RCAR_PHY            (ep_base + 0x6000)

static void test_bad_rcar_unmodelled(void)
{
    g_autofree char *smp = smp_args();
    BadInput b;

    b.log = guest_log_path();
    b.qts = qtest_initf("-M virt,gic-version=3 -nic none %s "
                        "-d guest_errors,unimp -D %s "
                        "-device rcar-gen4-pcie-ep,id=ep", smp, b.log);
    qtest_writel(b.qts, APP + 0x40, 0x12345678);
    g_assert_cmphex(qtest_readl(b.qts, APP + 0x40), ==, 0);
    qtest_writel(b.qts, RCAR_PHY + 0x10, 1);
    g_assert_cmphex(qtest_readl(b.qts, RCAR_PHY + 0x10), ==, 0);
    /* The modelled ones beside them keep what is written */
    qtest_writel(b.qts, APP + PCIEDMAINTSTSEN, 0xff);
    g_assert_cmphex(qtest_readl(b.qts, APP + PCIEDMAINTSTSEN), ==, 0xff);
    bad_end(&b, (const char *const[]) {
        "write to unmodelled app register 0x40",
        "app register 0x40 is not modelled",
        "PHY register 0x10 is not modelled", NULL });
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    /*
     * QEMU's tests/qtest/meson.build registers this test only where
     * CONFIG_DW_PCIE_EP is set: a build without the device is broken.
     */
    if (!qtest_has_device("dw-pcie-ep")) {
        g_printerr("dw-pcie-ep is missing from this QEMU build\n");
        return 1;
    }
    qtest_add_func("/dw-pcie-ep/dbi/header", test_header);
    qtest_add_func("/dw-pcie-ep/dbi/id-properties", test_id_properties);
    qtest_add_func("/dw-pcie-ep/dbi/version", test_version);
    qtest_add_func("/dw-pcie-ep/dbi/ro-wr-en", test_dbi_ro_wr_en);
    qtest_add_func("/dw-pcie-ep/dbi/rw-masks", test_rw_masks);
    qtest_add_func("/dw-pcie-ep/dbi/capabilities", test_capabilities);
    qtest_add_func("/dw-pcie-ep/dbi/msi", test_msi_cap);
    qtest_add_func("/dw-pcie-ep/dbi/msix", test_msix_cap);
    qtest_add_func("/dw-pcie-ep/dbi/ptm", test_ptm);
    qtest_add_func("/dw-pcie-ep/dbi/port-logic", test_port_logic);
    qtest_add_func("/dw-pcie-ep/dbi2/bar-masks", test_bar_masks);
    qtest_add_func("/dw-pcie-ep/atu/detect-default", test_atu_detect_default);
    qtest_add_func("/dw-pcie-ep/atu/detect-properties",
                   test_atu_detect_properties);
    qtest_add_func("/dw-pcie-ep/atu/detect-viewport",
                   test_atu_detect_viewport);
    qtest_add_func("/dw-pcie-ep/atu/registers", test_atu_registers);
    qtest_add_func("/dw-pcie-ep/link/loopback-status",
                   test_loopback_link_status);
    qtest_add_func("/dw-pcie-ep/addr-space/bar-match",
                   test_translate_bar_match);
    qtest_add_func("/dw-pcie-ep/addr-space/bar-at-zero", test_bar_at_zero);
    qtest_add_func("/dw-pcie-ep/addr-space/offset-and-target",
                   test_translate_offset_and_target);
    qtest_add_func("/dw-pcie-ep/addr-space/address-match",
                   test_translate_address_match);
    qtest_add_func("/dw-pcie-ep/addr-space/above-4g",
                   test_translate_above_4g);
    qtest_add_func("/dw-pcie-ep/addr-space/into-window",
                   test_loopback_into_window);
    qtest_add_func("/dw-pcie-ep/addr-space/disabled-region",
                   test_translate_disabled_region);
    qtest_add_func("/dw-pcie-ep/addr-space/link-down", test_window_link_down);
    qtest_add_func("/dw-pcie-ep/addr-space/memory-disabled",
                   test_memory_disabled);
    qtest_add_func("/dw-pcie-ep/edma/registers", test_edma_registers);
    qtest_add_func("/dw-pcie-ep/edma/ll-write", test_edma_ll_write);
    qtest_add_func("/dw-pcie-ep/edma/ll-read", test_edma_ll_read);
    qtest_add_func("/dw-pcie-ep/edma/cycle-bits", test_edma_cycle_bits);
    qtest_add_func("/dw-pcie-ep/edma/chunks", test_edma_chunks);
    qtest_add_func("/dw-pcie-ep/edma/done-settled", test_edma_done_settled);
    qtest_add_func("/dw-pcie-ep/edma/local-not-ram", test_edma_local_not_ram);
    qtest_add_func("/dw-pcie-ep/edma/unthrottled-loop",
                   test_edma_unthrottled_loop);
    qtest_add_func("/dw-pcie-ep/edma/high-bandwidth",
                   test_edma_high_bandwidth);
    qtest_add_func("/dw-pcie-ep/edma/non-ll", test_edma_non_ll);
    qtest_add_func("/dw-pcie-ep/edma/aborts", test_edma_aborts);
    qtest_add_func("/dw-pcie-ep/edma/stop", test_edma_stop);
    qtest_add_func("/dw-pcie-ep/edma/interrupts", test_edma_interrupts);
    qtest_add_func("/dw-pcie-ep/edma/imwr", test_edma_imwr);
    qtest_add_func("/dw-pcie-ep/edma/doorbell", test_edma_doorbell);
    qtest_add_func("/dw-pcie-ep/edma/looping-list", test_edma_looping_list);
    qtest_add_func("/dw-pcie-ep/edma/legacy", test_edma_legacy);
    qtest_add_func("/dw-pcie-ep/rcar/app", test_rcar_app);
    qtest_add_func("/dw-pcie-ep/rcar/bars", test_rcar_bars);
    qtest_add_func("/dw-pcie-ep/rcar/bar-pairs", test_rcar_bar_pairs);
    qtest_add_func("/dw-pcie-ep/rcar/fixed-bar-inbound",
                   test_rcar_fixed_bar_inbound);
    qtest_add_func("/dw-pcie-ep/edma/migration", test_edma_migration);
    qtest_add_func("/dw-pcie-ep/smmu/inbound", test_smmu_inbound);
    qtest_add_func("/dw-pcie-ep/smmu/edma", test_smmu_edma);
    qtest_add_func("/dw-pcie-ep/smmu/disabled", test_smmu_disabled);
    qtest_add_func("/dw-pcie-ep/bad-input/elbi-write", test_bad_elbi_write);
    qtest_add_func("/dw-pcie-ep/bad-input/viewport-access",
                   test_bad_viewport_access);
    qtest_add_func("/dw-pcie-ep/bad-input/iatu-offset", test_bad_iatu_offset);
    qtest_add_func("/dw-pcie-ep/bad-input/dbi2-register",
                   test_bad_dbi2_register);
    qtest_add_func("/dw-pcie-ep/bad-input/outbound-limit",
                   test_bad_outbound_limit);
    qtest_add_func("/dw-pcie-ep/bad-input/outbound-type",
                   test_bad_outbound_type);
    qtest_add_func("/dw-pcie-ep/bad-input/edma-doorbell",
                   test_bad_edma_doorbell);
    qtest_add_func("/dw-pcie-ep/bad-input/edma-running",
                   test_bad_edma_running);
    qtest_add_func("/dw-pcie-ep/bad-input/posted-depth",
                   test_bad_posted_depth);
    qtest_add_func("/dw-pcie-ep/bad-input/inbound-bar-num",
                   test_bad_inbound_bar_num);
    qtest_add_func("/dw-pcie-ep/bad-input/outbound-overlap",
                   test_bad_outbound_overlap);
    qtest_add_func("/dw-pcie-ep/bad-input/edma-doorbell-high-bits",
                   test_bad_edma_doorbell_high_bits);
    qtest_add_func("/dw-pcie-ep/bad-input/edma-size-0-imwr",
                   test_bad_edma_size_0_imwr);
    qtest_add_func("/dw-pcie-ep/bad-input/edma-viewport-sel",
                   test_bad_edma_viewport_sel);
    qtest_add_func("/dw-pcie-ep/bad-input/window-straddle",
                   test_bad_window_straddle);
    qtest_add_func("/dw-pcie-ep/bad-input/link-caps", test_bad_link_caps);
    qtest_add_func("/dw-pcie-ep/bad-input/rcar-unmodelled",
                   test_bad_rcar_unmodelled);
    qtest_add_func("/dw-pcie-ep/posted/latency", test_posted_latency);
    qtest_add_func("/dw-pcie-ep/posted/read-flush", test_posted_read_flush);
    qtest_add_func("/dw-pcie-ep/posted/full", test_posted_full);
    qtest_add_func("/dw-pcie-ep/posted/reset", test_posted_reset);
    qtest_add_func("/dw-pcie-ep/posted/link-change", test_posted_link_change);
    qtest_add_func("/dw-pcie-ep/posted/migration", test_posted_migration);
    qtest_add_func("/dw-pcie-ep/hazard/log", test_hazard_log);
    qtest_add_func("/dw-pcie-ep/hazard/ignore", test_hazard_ignore);
    qtest_add_func("/dw-pcie-ep/hazard/corrupt", test_hazard_corrupt);
    qtest_add_func("/dw-pcie-ep/hazard/edma", test_hazard_edma);
    qtest_add_func("/dw-pcie-ep/hazard/corrupt-smmu",
                   test_hazard_corrupt_smmu);
    qtest_add_func("/dw-pcie-ep/hazard/corrupt-smmu-mapped",
                   test_hazard_corrupt_smmu_mapped);
    qtest_add_func("/dw-pcie-ep/hazard/corrupt-own-registers",
                   test_hazard_corrupt_own_registers);
    return g_test_run();
}
