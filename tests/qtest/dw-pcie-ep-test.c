/*
 * QTest for the DesignWare PCIe controller in endpoint mode
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"

/*
 * virt's platform bus starts at 0x0c000000 and places MMIO regions
 * first-fit at their natural alignment, in the order the device
 * registers them: dbi, dbi2, atu, then the 16 MiB addr_space window.
 */
#define PLATFORM_BUS_BASE   0x0c000000ULL
#define DBI                 (PLATFORM_BUS_BASE + 0x0000)
#define ATU                 (PLATFORM_BUS_BASE + 0x2000)
#define ADDR_SPACE          (PLATFORM_BUS_BASE + 0x1000000)

#define PCI_VENDOR_ID       0x00
#define PCI_DEVICE_ID       0x02
#define PCI_CLASS_DEVICE    0x0a
#define PCI_HEADER_TYPE     0x0e
#define MISC_CONTROL_1      0x8bc
#define DBI_RO_WR_EN        0x1
#define VERSION_NUMBER      0x8f8
#define ATU_VIEWPORT        0x900

static QTestState *ep_start(const char *props)
{
    return qtest_initf("-M virt,gic-version=3 -nic none "
                       "-device dw-pcie-ep,id=ep%s", props);
}

static void test_header(void)
{
    QTestState *qts = ep_start("");

    g_assert_cmphex(qtest_readw(qts, DBI + PCI_VENDOR_ID), ==, 0x16c3);
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_DEVICE_ID), ==, 0xabcd);
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_CLASS_DEVICE), ==, 0xff00);
    /* Linux refuses an endpoint whose header type is not 0. */
    g_assert_cmphex(qtest_readb(qts, DBI + PCI_HEADER_TYPE) & 0x7f, ==, 0);
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

    qtest_writel(qts, DBI + MISC_CONTROL_1, DBI_RO_WR_EN);
    g_assert_cmphex(qtest_readl(qts, DBI + MISC_CONTROL_1), ==, DBI_RO_WR_EN);
    qtest_writew(qts, DBI + PCI_DEVICE_ID, 0x1234);
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_DEVICE_ID), ==, 0x1234);

    qtest_writel(qts, DBI + MISC_CONTROL_1, 0);
    qtest_writew(qts, DBI + PCI_DEVICE_ID, 0x5678);
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_DEVICE_ID), ==, 0x1234);

    /* The header type stays 0 even with DBI_RO_WR_EN set */
    qtest_writel(qts, DBI + MISC_CONTROL_1, DBI_RO_WR_EN);
    qtest_writeb(qts, DBI + PCI_HEADER_TYPE, 0x01);
    g_assert_cmphex(qtest_readb(qts, DBI + PCI_HEADER_TYPE), ==, 0);
    qtest_quit(qts);
}

static void test_reset_restores_ids(void)
{
    QTestState *qts = ep_start("");

    qtest_writel(qts, DBI + MISC_CONTROL_1, DBI_RO_WR_EN);
    qtest_writew(qts, DBI + PCI_VENDOR_ID, 0x1111);
    qtest_system_reset(qts);
    g_assert_cmphex(qtest_readw(qts, DBI + PCI_VENDOR_ID), ==, 0x16c3);
    g_assert_cmphex(qtest_readl(qts, DBI + MISC_CONTROL_1), ==, 0);
    qtest_quit(qts);
}

static void test_unrolled_atu(void)
{
    QTestState *qts = ep_start("");

    /* Linux takes an all-ones viewport register for an unrolled iATU. */
    g_assert_cmphex(qtest_readl(qts, DBI + ATU_VIEWPORT), ==, 0xffffffff);
    qtest_quit(qts);
}

static void test_window_link_down(void)
{
    QTestState *qts = ep_start("");

    /* No link: reads complete with all ones, writes are discarded. */
    qtest_writel(qts, ADDR_SPACE + 0x100, 0x12345678);
    g_assert_cmphex(qtest_readl(qts, ADDR_SPACE + 0x100), ==, 0xffffffff);
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    if (!qtest_has_device("dw-pcie-ep")) {
        g_test_skip("dw-pcie-ep is not part of this build");
        return g_test_run();
    }
    qtest_add_func("/dw-pcie-ep/dbi/header", test_header);
    qtest_add_func("/dw-pcie-ep/dbi/id-properties", test_id_properties);
    qtest_add_func("/dw-pcie-ep/dbi/version", test_version);
    qtest_add_func("/dw-pcie-ep/dbi/ro-wr-en", test_dbi_ro_wr_en);
    qtest_add_func("/dw-pcie-ep/dbi/reset", test_reset_restores_ids);
    qtest_add_func("/dw-pcie-ep/atu/unrolled", test_unrolled_atu);
    qtest_add_func("/dw-pcie-ep/addr-space/link-down", test_window_link_down);
    return g_test_run();
}
