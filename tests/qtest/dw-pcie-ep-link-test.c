/*
 * QTest for the endpoint link: two QEMU processes joined by a socket
 *
 * The EP process has the dw-pcie-ep controller; the host process has a
 * PCIe root port and the dw-pcie-ep-link that plugs the endpoint's
 * function into its slot.  The test plays the EP's driver on one side
 * and the host's firmware on the other.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include <sys/un.h>
#include "libqtest.h"

/* EP side: see dw-pcie-ep-test.c for the platform bus layout */
#define DBI                 0x0c000000ULL
#define DBI2                0x0c001000ULL
#define ATU                 0x0c002000ULL
#define ELBI                0x0c003000ULL
#define WINDOW              0x0d000000ULL
#define MISC_CONTROL_1      0x8bc
#define MSI_CAP             0x50
#define OB(i)               (ATU + 0x200 * (i))
#define IB(i)               (ATU + 0x200 * (i) + 0x100)

/* Host side: virt's high ECAM, the root port at 00:01.0 */
#define ECAM                0x4010000000ULL
#define CFG(bus, dev, off)  (ECAM + ((bus) << 20) + ((dev) << 15) + (off))
#define HOST_BAR0           0x10000000ULL
#define RAM                 0x40000000ULL

typedef struct Lab {
    char *dir;
    char *sock;
    QTestState *ep;
    QTestState *host;
} Lab;

static bool wait_for(QTestState *qts, uint64_t addr, uint32_t mask,
                     uint32_t want, bool cfg16)
{
    for (int i = 0; i < 1000; i++) {
        uint32_t v = cfg16 ? qtest_readw(qts, addr) : qtest_readl(qts, addr);

        if ((v & mask) == want) {
            return true;
        }
        g_usleep(10 * 1000);
    }
    return false;
}

/* The EP's driver: IDs, BAR0 (4 KiB) onto EP RAM, MSI capable */
static void ep_setup(QTestState *ep)
{
    qtest_writel(ep, DBI + MISC_CONTROL_1, 1);
    qtest_writel(ep, DBI + 0x00, 0xb500104c);
    qtest_writel(ep, DBI2 + 0x10, 0xfff);
    qtest_writel(ep, DBI + 0x10, 0);
    qtest_writew(ep, DBI + MSI_CAP + 2, 0x80 | 5 << 1);
    qtest_writel(ep, DBI + MISC_CONTROL_1, 0);
    qtest_writel(ep, IB(0) + 0x14, RAM + 0x100000);
    qtest_writel(ep, IB(0) + 0x18, 0);
    qtest_writel(ep, IB(0) + 0x00, 0);
    qtest_writel(ep, IB(0) + 0x04, 0xc0080000);
}

/* The host's firmware: bus 1 behind the root port, a memory window */
static void host_setup_port(QTestState *host)
{
    qtest_writel(host, CFG(0, 1, 0x18), 0x00010100);
    qtest_writew(host, CFG(0, 1, 0x20), 0x1000);
    qtest_writew(host, CFG(0, 1, 0x22), 0x1000);
    qtest_writew(host, CFG(0, 1, 0x04), 0x0006);
}

static void lab_start(Lab *lab)
{
    lab->dir = g_dir_make_tmp("dw-pcie-ep-link-XXXXXX", NULL);
    g_assert(lab->dir);
    lab->sock = g_build_filename(lab->dir, "link.sock", NULL);
    lab->ep = qtest_initf("-M virt,gic-version=3 -nic none "
                          "-chardev socket,id=link,path=%s,server=on,wait=off "
                          "-device dw-pcie-ep,id=ep,chardev=link", lab->sock);
    lab->host = qtest_initf("-M virt,gic-version=3 -nic none "
                            "-device pcie-root-port,id=rp0,chassis=1,slot=1 "
                            "-chardev socket,id=link,path=%s,reconnect-ms=100 "
                            "-device dw-pcie-ep-link,id=l,chardev=link,"
                            "port=rp0", lab->sock);
    ep_setup(lab->ep);
    host_setup_port(lab->host);
}

/* The root port's PCIe capability */
static uint64_t port_exp_cap(QTestState *host)
{
    uint8_t pos = qtest_readb(host, CFG(0, 1, 0x34));

    while (pos && qtest_readb(host, CFG(0, 1, pos)) != 0x10) {
        pos = qtest_readb(host, CFG(0, 1, pos + 1));
    }
    g_assert(pos);
    return CFG(0, 1, pos);
}

/*
 * Link up: the LTSSM enable, then the function appears in the slot and
 * the host powers the slot on, as pciehp does on Presence Detect.
 */
static void lab_link_up(Lab *lab)
{
    uint64_t exp = port_exp_cap(lab->host);

    qtest_writel(lab->ep, ELBI, 1);
    g_assert(wait_for(lab->ep, ELBI + 4, 1, 1, false));
    g_assert(wait_for(lab->host, exp + 0x1a, 0x40, 0x40, true));
    qtest_writew(lab->host, exp + 0x18,
                 (qtest_readw(lab->host, exp + 0x18) & ~0x7c0) | 0x100);
    g_assert(wait_for(lab->host, CFG(1, 0, 0), 0xffffffff, 0xb500104c,
                      false));
}

/* The host's firmware: BAR0 assigned, memory and bus mastering on */
static void host_enable_function(Lab *lab)
{
    qtest_writel(lab->host, CFG(1, 0, 0x10), HOST_BAR0);
    qtest_writew(lab->host, CFG(1, 0, 0x04), 0x0006);
}

/* The EP's driver: the first page of the window onto host RAM + 2 MiB */
static void ep_map_window(Lab *lab)
{
    qtest_writel(lab->ep, OB(0) + 0x08, WINDOW);
    qtest_writel(lab->ep, OB(0) + 0x0c, 0);
    qtest_writel(lab->ep, OB(0) + 0x10, WINDOW + 0xfff);
    qtest_writel(lab->ep, OB(0) + 0x20, 0);
    qtest_writel(lab->ep, OB(0) + 0x14, RAM + 0x200000);
    qtest_writel(lab->ep, OB(0) + 0x18, 0);
    qtest_writel(lab->ep, OB(0) + 0x00, 0);
    qtest_writel(lab->ep, OB(0) + 0x04, 0x80000000);
}

static void lab_stop(Lab *lab)
{
    if (lab->ep) {
        qtest_quit(lab->ep);
    }
    if (lab->host) {
        qtest_quit(lab->host);
    }
    unlink(lab->sock);
    rmdir(lab->dir);
    g_free(lab->sock);
    g_free(lab->dir);
}

static void test_config_round_trip(void)
{
    Lab lab;

    lab_start(&lab);
    /* No function before the link is up */
    g_assert_cmphex(qtest_readl(lab.host, CFG(1, 0, 0)), ==, 0xffffffff);
    lab_link_up(&lab);

    /* The host reads the EP's DBI ... */
    g_assert_cmphex(qtest_readb(lab.host, CFG(1, 0, 0x0e)), ==, 0);
    g_assert_cmphex(qtest_readb(lab.host, CFG(1, 0, 0x34)), ==, 0x40);
    /* ... and what it writes is what the EP's driver reads. */
    qtest_writel(lab.host, CFG(1, 0, MSI_CAP + 4), 0x08090040);
    qtest_writel(lab.host, CFG(1, 0, MSI_CAP + 8), 0);
    qtest_writew(lab.host, CFG(1, 0, MSI_CAP + 0xc), 0x1234);
    qtest_writew(lab.host, CFG(1, 0, MSI_CAP + 2), 0x81);
    g_assert_cmphex(qtest_readl(lab.host, CFG(1, 0, MSI_CAP + 4)), ==,
                    0x08090040);
    g_assert_cmphex(qtest_readl(lab.ep, DBI + MSI_CAP + 4), ==, 0x08090040);
    g_assert_cmphex(qtest_readw(lab.ep, DBI + MSI_CAP + 0xc), ==, 0x1234);
    g_assert_cmphex(qtest_readw(lab.ep, DBI + MSI_CAP + 2) & 1, ==, 1);
    lab_stop(&lab);
}

static void test_bar_round_trip(void)
{
    Lab lab;

    lab_start(&lab);
    lab_link_up(&lab);

    /* BAR0's size comes from the EP's DBI2 mask */
    qtest_writel(lab.host, CFG(1, 0, 0x10), 0xffffffff);
    g_assert_cmphex(qtest_readl(lab.host, CFG(1, 0, 0x10)), ==, 0xfffff000);
    qtest_writel(lab.host, CFG(1, 0, 0x10), HOST_BAR0);
    qtest_writew(lab.host, CFG(1, 0, 0x04), 0x0006);
    g_assert_cmphex(qtest_readl(lab.ep, DBI + 0x10), ==, HOST_BAR0);

    /* Host writes to the BAR land in EP RAM, through the inbound iATU */
    qtest_writel(lab.host, HOST_BAR0 + 0x10, 0xdeadbeef);
    qtest_writeq(lab.host, HOST_BAR0 + 0x18, 0x0123456789abcdefULL);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x10), ==, 0xdeadbeef);
    g_assert_cmphex(qtest_readl(lab.ep, RAM + 0x100010), ==, 0xdeadbeef);
    g_assert_cmphex(qtest_readq(lab.ep, RAM + 0x100018), ==,
                    0x0123456789abcdefULL);
    qtest_writel(lab.ep, RAM + 0x100ffc, 0x600dcafe);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0xffc), ==,
                    0x600dcafe);
    lab_stop(&lab);
}

/*
 * EP -> outbound iATU -> link -> host bus master -> host RAM (an MSI-like
 * write, here to RAM so that it can be read back)
 */
static void test_ep_to_host(void)
{
    Lab lab;

    lab_start(&lab);
    lab_link_up(&lab);
    host_enable_function(&lab);

    ep_map_window(&lab);

    qtest_writel(lab.ep, WINDOW + 0x40, 0x00000021);
    /* A read after the posted write sees it: PCIe ordering */
    g_assert_cmphex(qtest_readl(lab.ep, WINDOW + 0x40), ==, 0x21);
    g_assert_cmphex(qtest_readl(lab.host, RAM + 0x200040), ==, 0x21);

    /* Without Bus Master Enable the host drops the EP's requests */
    qtest_writew(lab.host, CFG(1, 0, 0x04), 0x0002);
    qtest_writel(lab.ep, WINDOW + 0x44, 0x22);
    g_assert_cmphex(qtest_readl(lab.ep, WINDOW + 0x44), ==, 0xffffffff);
    g_assert_cmphex(qtest_readl(lab.host, RAM + 0x200044), ==, 0);
    lab_stop(&lab);
}

typedef struct CrossReads {
    QTestState *qts;
    uint64_t addr;
    uint32_t want;
    int bad;
} CrossReads;

static gpointer cross_reads(gpointer opaque)
{
    CrossReads *c = opaque;

    for (int i = 0; i < 2000; i++) {
        c->bad += qtest_readl(c->qts, c->addr) != c->want;
    }
    return NULL;
}

/*
 * Both sides read from each other at the same time, each holding its
 * BQL when it starts: no read may end in a completion timeout.
 */
static void test_cross_reads(void)
{
    Lab lab;
    CrossReads host_side, ep_side;
    GThread *a, *b;

    lab_start(&lab);
    lab_link_up(&lab);
    host_enable_function(&lab);
    ep_map_window(&lab);
    qtest_writel(lab.ep, RAM + 0x100020, 0x11111111);
    qtest_writel(lab.host, RAM + 0x200020, 0x22222222);

    host_side = (CrossReads) { lab.host, HOST_BAR0 + 0x20, 0x11111111 };
    ep_side = (CrossReads) { lab.ep, WINDOW + 0x20, 0x22222222 };
    a = g_thread_new("host-reads", cross_reads, &host_side);
    b = g_thread_new("ep-reads", cross_reads, &ep_side);
    g_thread_join(a);
    g_thread_join(b);
    g_assert_cmpint(host_side.bad, ==, 0);
    g_assert_cmpint(ep_side.bad, ==, 0);
    lab_stop(&lab);
}

static int connect_unix(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    g_assert(fd >= 0);
    g_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    return fd;
}

/* Read until the peer closes the socket; false if it stays open */
static bool peer_closes(int fd)
{
    char buf[256];

    for (int i = 0; i < 500; i++) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (n == 0) {
            return true;
        }
        g_usleep(10 * 1000);
    }
    return false;
}

/*
 * A peer that does not speak the protocol, or breaks it after HELLO,
 * gets disconnected; the EP keeps running with its link down.
 */
static void test_malformed(void)
{
    g_autofree char *dir = g_dir_make_tmp("dw-pcie-ep-link-XXXXXX", NULL);
    g_autofree char *sock = g_build_filename(dir, "link.sock", NULL);
    /* HELLO, magic "DPEL", version 1, role host */
    const uint8_t hello[] = {
        1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x44, 0x50, 0x45, 0x4c, 1, 0, 2, 0,
    };
    /* An unknown message type */
    const uint8_t bogus[16] = { 0x42 };
    QTestState *ep;
    int fd;

    ep = qtest_initf("-M virt,gic-version=3 -nic none "
                     "-chardev socket,id=link,path=%s,server=on,wait=off "
                     "-device dw-pcie-ep,id=ep,chardev=link,ltssm-enable=on",
                     sock);

    fd = connect_unix(sock);
    g_assert_cmpint(send(fd, "GET / HTTP/1.0\r\n\r\n", 18, 0), ==, 18);
    g_assert(peer_closes(fd));
    close(fd);

    fd = connect_unix(sock);
    g_assert_cmpint(send(fd, hello, sizeof(hello), 0), ==, sizeof(hello));
    /* A well-behaved host: the link trains */
    g_assert(wait_for(ep, ELBI + 4, 1, 1, false));
    g_assert_cmpint(send(fd, bogus, sizeof(bogus), 0), ==, sizeof(bogus));
    g_assert(peer_closes(fd));
    close(fd);

    /* Still alive, link down */
    g_assert(wait_for(ep, ELBI + 4, 1, 0, false));
    g_assert_cmphex(qtest_readw(ep, DBI), ==, 0x16c3);
    qtest_quit(ep);
    unlink(sock);
    rmdir(dir);
}

/* The EP process dies: the host keeps running, the function reads ~0 */
static void test_link_down(void)
{
    Lab lab;

    lab_start(&lab);
    lab_link_up(&lab);
    host_enable_function(&lab);

    qtest_quit(lab.ep);
    lab.ep = NULL;
    g_assert(wait_for(lab.host, CFG(1, 0, 0), 0xffff, 0xffff, true));
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0), ==, 0xffffffff);
    /* The host QEMU is still alive and answering */
    g_assert_cmphex(qtest_readw(lab.host, CFG(0, 1, 0)), ==, 0x1b36);
    lab_stop(&lab);
}

/* The host process dies: the EP keeps running, its link goes down. */
static void test_host_dies(void)
{
    Lab lab;

    lab_start(&lab);
    lab_link_up(&lab);
    qtest_quit(lab.host);
    lab.host = NULL;
    g_assert(wait_for(lab.ep, ELBI + 4, 1, 0, false));
    /* Detect.Quiet, and the outbound window behaves as for a dead link */
    g_assert_cmphex(qtest_readl(lab.ep, DBI + 0x728) & 0x3f, ==, 0);
    g_assert_cmphex(qtest_readl(lab.ep, DBI), ==, 0xb500104c);
    lab_stop(&lab);
}

/* The EP takes its LTSSM down: the host sees the link go away. */
static void test_ltssm_disable(void)
{
    Lab lab;

    lab_start(&lab);
    lab_link_up(&lab);
    qtest_writel(lab.ep, ELBI, 0);
    g_assert_cmphex(qtest_readl(lab.ep, ELBI + 4), ==, 0);
    g_assert(wait_for(lab.host, CFG(1, 0, 0), 0xffff, 0xffff, true));
    lab_stop(&lab);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    if (!qtest_has_device("dw-pcie-ep") ||
        !qtest_has_device("dw-pcie-ep-link")) {
        g_test_skip("the endpoint link is not part of this build");
        return g_test_run();
    }
    qtest_add_func("/dw-pcie-ep-link/config", test_config_round_trip);
    qtest_add_func("/dw-pcie-ep-link/bar", test_bar_round_trip);
    qtest_add_func("/dw-pcie-ep-link/ep-to-host", test_ep_to_host);
    qtest_add_func("/dw-pcie-ep-link/cross-reads", test_cross_reads);
    qtest_add_func("/dw-pcie-ep-link/link-down", test_link_down);
    qtest_add_func("/dw-pcie-ep-link/host-dies", test_host_dies);
    qtest_add_func("/dw-pcie-ep-link/ltssm-disable", test_ltssm_disable);
    qtest_add_func("/dw-pcie-ep-link/malformed", test_malformed);
    return g_test_run();
}
