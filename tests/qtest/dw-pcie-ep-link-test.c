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
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "qemu/atomic.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "dw-pcie-ep-common.h"
#include "dw-pcie-ep-smmu.h"

/*
 * EP side: see dw-pcie-ep-test.c for the platform bus layout; an SMMU
 * named before the controller moves its small regions up (ep_base).
 */
#define DBI                 (ep_base + 0x0000)
#define DBI2                (ep_base + 0x1000)
#define ATU                 (ep_base + 0x2000)
#define ELBI                (ep_base + 0x3000)
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
/* The EP's GIC ITS (virt, gic-version=3): its translation frame */
#define ITS_TRANSLATION     0x08090000ULL
#define GITS_TRANSLATER     0x40

static uint64_t ep_base = 0x0c000000ULL;

typedef struct Lab {
    const char *ep_device;  /* dw-pcie-ep unless set */
    const char *ep_args;    /* more options for the EP QEMU */
    const char *host_machine;   /* more -M options for the host QEMU */
    const char *host_port;  /* more properties for its root port */
    const char *ep_props;   /* more properties for its controller */
    const char *ep_trace;   /* trace events the EP logs to dir/ep.log */
    char *dir;
    char *sock;
    QTestState *ep;
    QTestState *host;
} Lab;

/*
 * Every test runs twice: with both VMs' RAM shareable and the fast path
 * on, and with the message path alone (fast-path=off on both ends).
 */
typedef struct LabMode {
    const char *name;
    bool fast;
} LabMode;

static const LabMode modes[] = {
    { "fast", true },
    { "message", false },
};

static const LabMode *mode;

/* Shareable RAM for -M virt's 128 MiB, and the fast-path setting */
static char *ram_args(void)
{
    return g_strdup("-object memory-backend-memfd,id=ram,size=128M "
                    "-machine memory-backend=ram");
}

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
    g_autofree char *ram = ram_args();
    g_autofree char *smp = smp_args();
    g_autofree char *trace = NULL;
    const char *fast = mode->fast ? "on" : "off";
    /* Posted writes only where a test asks: the others check at once. */
    const char *posted = lab->ep_props &&
        strstr(lab->ep_props, "posted-write-latency-ns") ? "" :
        ",posted-write-latency-ns=0";

    lab->dir = g_dir_make_tmp("dw-pcie-ep-link-XXXXXX", NULL);
    g_assert(lab->dir);
    lab->sock = g_build_filename(lab->dir, "link.sock", NULL);
    trace = lab->ep_trace ? g_strdup_printf("-trace %s -D %s/ep.log",
                                            lab->ep_trace, lab->dir)
                          : g_strdup("");
    lab->ep = qtest_initf("-M virt,gic-version=3 -nic none %s %s %s %s "
                          "-chardev socket,id=link,path=%s,server=on,wait=off "
                          "-device %s,id=ep,chardev=link,fast-path=%s"
                          "%s%s", smp, ram, trace,
                          lab->ep_args ? lab->ep_args : "", lab->sock,
                          lab->ep_device ? lab->ep_device : "dw-pcie-ep", fast,
                          posted, lab->ep_props ? lab->ep_props : "");
    lab->host = qtest_initf("-M virt,gic-version=3%s -nic none %s %s "
                            "-device pcie-root-port,id=rp0,chassis=1,slot=1%s "
                            "-chardev socket,id=link,path=%s,reconnect-ms=100 "
                            "-device dw-pcie-ep-link,id=l,chardev=link,"
                            "port=rp0,fast-path=%s",
                            lab->host_machine ? lab->host_machine : "", smp,
                            ram, lab->host_port ? lab->host_port : "",
                            lab->sock, fast);
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
#define RCAR_PCIERSTCTRL1   (ELBI + 0x14)     /* R-Car's app block */
#define RCAR_PCIEINTSTS0    (ELBI + 0x84)

static void lab_link_up(Lab *lab)
{
    uint64_t exp = port_exp_cap(lab->host);

    if (lab->ep_device && !strcmp(lab->ep_device, "rcar-gen4-pcie-ep")) {
        qtest_writel(lab->ep, RCAR_PCIERSTCTRL1, 1);
        g_assert(wait_for(lab->ep, RCAR_PCIEINTSTS0, 0xc0, 0xc0, false));
    } else {
        qtest_writel(lab->ep, ELBI, 1);
        g_assert(wait_for(lab->ep, ELBI + 4, 1, 1, false));
    }
    g_assert(wait_for(lab->host, exp + 0x1a, 0x40, 0x40, true));
    qtest_writew(lab->host, exp + 0x18,
                 (qtest_readw(lab->host, exp + 0x18) & ~0x7c0) | 0x100);
    /* As pciehp does: the plug's events are handled */
    qtest_writew(lab->host, exp + 0x1a, 0x9);
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
    if (lab->ep_trace) {
        g_autofree char *log = g_build_filename(lab->dir, "ep.log", NULL);

        unlink(log);
    }
    rmdir(lab->dir);
    g_free(lab->sock);
    g_free(lab->dir);
}

static void test_config_round_trip(void)
{
    Lab lab = { 0 };

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
    /* The writes are posted: the EP sees them soon, not at once. */
    g_assert(wait_for(lab.ep, DBI + MSI_CAP + 2, 1, 1, true));
    g_assert_cmphex(qtest_readl(lab.ep, DBI + MSI_CAP + 4), ==, 0x08090040);
    g_assert_cmphex(qtest_readw(lab.ep, DBI + MSI_CAP + 0xc), ==, 0x1234);
    lab_stop(&lab);
}

static void test_bar_round_trip(void)
{
    Lab lab = { 0 };

    lab_start(&lab);
    lab_link_up(&lab);

    /* BAR0's size comes from the EP's DBI2 mask */
    qtest_writel(lab.host, CFG(1, 0, 0x10), 0xffffffff);
    g_assert_cmphex(qtest_readl(lab.host, CFG(1, 0, 0x10)), ==, 0xfffff000);
    qtest_writel(lab.host, CFG(1, 0, 0x10), HOST_BAR0);
    qtest_writew(lab.host, CFG(1, 0, 0x04), 0x0006);
    g_assert(wait_for(lab.ep, DBI + 0x04, 0x6, 0x6, true));
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
    Lab lab = { 0 };

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
    Lab lab = { 0 };
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
    /* HELLO, magic "DPEL", version 3, role host, no features */
    const uint8_t hello[] = {
        1, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x44, 0x50, 0x45, 0x4c, 3, 0, 2, 0, 0, 0, 0, 0,
    };
    /* The same from a version-1 peer, which has no features word */
    const uint8_t hello_v1[] = {
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

    /* A version-1 peer is refused: the link stays down. */
    fd = connect_unix(sock);
    g_assert_cmpint(send(fd, hello_v1, sizeof(hello_v1), 0), ==,
                    sizeof(hello_v1));
    g_assert(peer_closes(fd));
    close(fd);
    g_assert_cmpint(qtest_readl(ep, ELBI + 4), ==, 0);

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
    Lab lab = { 0 };

    lab_start(&lab);
    lab_link_up(&lab);
    host_enable_function(&lab);
    /* The positive control: the function is there and its BAR answers. */
    qtest_writel(lab.ep, RAM + 0x100000, 0x11223344);
    g_assert_cmphex(qtest_readl(lab.host, CFG(1, 0, 0)), ==, 0xb500104c);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0), ==, 0x11223344);

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
    Lab lab = { 0 };

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
    Lab lab = { 0 };

    lab_start(&lab);
    lab_link_up(&lab);
    qtest_writel(lab.ep, ELBI, 0);
    g_assert_cmphex(qtest_readl(lab.ep, ELBI + 4), ==, 0);
    g_assert(wait_for(lab.host, CFG(1, 0, 0), 0xffff, 0xffff, true));
    lab_stop(&lab);
}

/*
 * Fast path
 */

static bool mtree_has(QTestState *qts, const char *what)
{
    g_autofree char *out = qtest_hmp(qts, "info mtree");

    return strstr(out, what) != NULL;
}

/* The BAR and the window are RAM under the fast path, messages without. */
static void test_fast_path_mapped(void)
{
    Lab lab = { 0 };

    lab_start(&lab);
    lab_link_up(&lab);
    host_enable_function(&lab);
    ep_map_window(&lab);

    qtest_writel(lab.host, HOST_BAR0 + 0x10, 0x5a5a0001);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x10), ==, 0x5a5a0001);
    g_assert_cmpint(mtree_has(lab.host, "bar0.fast"), ==, mode->fast);
    /* The EP's own writes show through the mapping at once. */
    qtest_writel(lab.ep, RAM + 0x100014, 0x5a5a0002);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x14), ==, 0x5a5a0002);

    qtest_writel(lab.ep, WINDOW + 0x80, 0x5a5a0003);
    g_assert_cmphex(qtest_readl(lab.ep, WINDOW + 0x80), ==, 0x5a5a0003);
    g_assert_cmpint(mtree_has(lab.ep, "ob0.fast"), ==, mode->fast);
    qtest_writel(lab.host, RAM + 0x200084, 0x5a5a0004);
    g_assert_cmphex(qtest_readl(lab.ep, WINDOW + 0x84), ==, 0x5a5a0004);
    g_assert_cmphex(qtest_readl(lab.host, RAM + 0x200080), ==, 0x5a5a0003);
    lab_stop(&lab);
}

typedef struct Streamer {
    QTestState *qts;
    uint64_t addr;
    uint32_t count;
    bool stop;
} Streamer;

static gpointer stream_writes(gpointer opaque)
{
    Streamer *st = opaque;

    while (!qatomic_read(&st->stop)) {
        qtest_writel(st->qts, st->addr, ++st->count);
    }
    return NULL;
}

/* A thread that writes a counter to @addr of @qts until stopped */
static GThread *stream_start(Streamer *st, QTestState *qts, uint64_t addr)
{
    *st = (Streamer) { .qts = qts, .addr = addr };
    return g_thread_new("streamer", stream_writes, st);
}

static void stream_stop(Streamer *st, GThread *t)
{
    qatomic_set(&st->stop, true);
    g_thread_join(t);
}

/* Wait until the streamer's writes show at @addr of @qts */
static bool stream_lands(QTestState *qts, uint64_t addr)
{
    uint32_t first = qtest_readl(qts, addr);

    for (int i = 0; i < 500; i++) {
        uint32_t now = qtest_readl(qts, addr);

        if (now && now != first) {
            return true;
        }
        g_usleep(10 * 1000);
    }
    return false;
}

/* After @addr stops changing it must stay put: nothing lands there. */
static void assert_quiet(QTestState *qts, uint64_t addr)
{
    uint32_t before = qtest_readl(qts, addr);

    g_usleep(100 * 1000);
    g_assert_cmphex(qtest_readl(qts, addr), ==, before);
}

/*
 * The EP retargets the inbound region while the host streams writes to
 * the BAR: once the iATU write has returned, no write lands at the old
 * target, and the new target gets them.
 */
static void test_inbound_revoke(void)
{
    Lab lab = { 0 };
    Streamer st;
    GThread *t;

    lab_start(&lab);
    lab_link_up(&lab);
    host_enable_function(&lab);
    t = stream_start(&st, lab.host, HOST_BAR0 + 0x40);
    g_assert(stream_lands(lab.ep, RAM + 0x100040));

    qtest_writel(lab.ep, IB(0) + 0x14, RAM + 0x300000);
    assert_quiet(lab.ep, RAM + 0x100040);
    g_assert(stream_lands(lab.ep, RAM + 0x300040));

    stream_stop(&st, t);
    lab_stop(&lab);
}

/*
 * The host clears Bus Master Enable while the EP streams writes through
 * the window: once the config write has returned, none reaches host RAM.
 */
static void test_outbound_revoke(void)
{
    Lab lab = { 0 };
    Streamer st;
    GThread *t;

    lab_start(&lab);
    lab_link_up(&lab);
    host_enable_function(&lab);
    ep_map_window(&lab);
    t = stream_start(&st, lab.ep, WINDOW + 0x40);
    g_assert(stream_lands(lab.host, RAM + 0x200040));

    qtest_writew(lab.host, CFG(1, 0, 0x04), 0x0002);
    assert_quiet(lab.host, RAM + 0x200040);

    /* Bus mastering back on: the writes land again. */
    qtest_writew(lab.host, CFG(1, 0, 0x04), 0x0006);
    g_assert(stream_lands(lab.host, RAM + 0x200040));

    stream_stop(&st, t);
    lab_stop(&lab);
}

#define SMMU_EP_PROPS       ",iommu=smmu,stream-id=16"

/*
 * Both VMs, the EP's controller behind an SMMU set up by smmu_setup().
 * Tests that stop the host for a while hold the SMMU's CMD_SYNC for it:
 * longer than the default cap (500 ms), so that a loaded machine does
 * not end the hold before the host runs again.
 */
static void smmu_lab_boot(Lab *lab)
{
    lab->ep_args = "-device arm-smmuv3,primary-bus=pcie.0,id=smmu";
    if (!lab->ep_props) {
        lab->ep_props = SMMU_EP_PROPS ",x-iommu-hold-max-ms=10000";
    }
    ep_base = SMMU + SMMU_SIZE;
    lab_start(lab);
    smmu_setup(lab->ep);
}

/*
 * And the SMMU maps IOVA (page 0 read-write), the EP's BAR0 is on IOVA +
 * @offset, and the host's BAR0 is assigned.
 */
static void smmu_lab_start(Lab *lab, uint64_t offset)
{
    smmu_lab_boot(lab);
    smmu_map(lab->ep, 0, PTE_RW);
    qtest_writel(lab->ep, IB(0) + 0x14, IOVA + offset);
    lab_link_up(lab);
    host_enable_function(lab);
}

static void smmu_lab_stop(Lab *lab)
{
    expect_no_event(lab->ep);
    lab_stop(lab);
    ep_base = 0x0c000000ULL;
}

/*
 * The EP's bus-master side behind an SMMU: what the host's BAR accesses
 * reach follows the SMMU's page tables, with the fast path too.  A page
 * the host has mapped and the EP's driver unmaps (TLBI) faults on the
 * host's next write, which does not land; a read-only page is read but
 * not written.  Each access that faults makes one event, for the access
 * itself: the fast path's lookups make none.
 */
static void test_smmu_coherent(void)
{
    Lab lab = { 0 };
    QTestState *ep;

    smmu_lab_start(&lab, 0);
    ep = lab.ep;

    qtest_writel(lab.host, HOST_BAR0 + 0x10, 0x5a5a0001);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x10), ==, 0x5a5a0001);
    g_assert_cmphex(qtest_readl(ep, IOVA_PA + 0x10), ==, 0x5a5a0001);
    g_assert_cmpint(mtree_has(lab.host, "bar0.fast"), ==, mode->fast);
    expect_no_event(ep);

    /* Unmapped by the EP's driver: the host's next write faults */
    smmu_map(ep, 0, 0);
    smmu_tlbi(ep);
    qtest_writel(lab.host, HOST_BAR0 + 0x10, 0x5a5a0002);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x14), ==, 0xffffffff);
    g_assert_cmphex(qtest_readl(ep, IOVA_PA + 0x10), ==, 0x5a5a0001);
    expect_event(ep, EVT_F_TRANSLATION, IOVA + 0x10);
    expect_event(ep, EVT_F_TRANSLATION, IOVA + 0x14);
    g_assert_cmpint(qom_get_uint(ep, "/machine/peripheral/ep",
                                 "x-iommu-revokes"), ==, mode->fast);

    /* Mapped read-only: read, but a write faults and does not land */
    smmu_map(ep, 0, PTE_RO);
    smmu_tlbi(ep);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x10), ==, 0x5a5a0001);
    qtest_writel(lab.host, HOST_BAR0 + 0x10, 0x5a5a0003);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x10), ==, 0x5a5a0001);
    expect_event(ep, EVT_F_PERMISSION, IOVA + 0x10);
    smmu_lab_stop(&lab);
}

/* SIGSTOP @pid, and return once it has stopped */
static void stop_process(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);

    kill(pid, SIGSTOP);
    for (int i = 0; i < 10000; i++) {
        g_autofree char *stat = NULL;
        const char *end;

        g_assert_true(g_file_get_contents(path, &stat, NULL, NULL));
        end = strrchr(stat, ')');
        if (end && end[1] == ' ' && end[2] == 'T') {
            return;
        }
        g_usleep(1000);
    }
    g_assert_not_reached();
}

/* @ok stays false for 200 ms: what a hold looks like */
static void assert_held(QTestState *qts, bool (*ok)(QTestState *))
{
    for (int i = 0; i < 20; i++) {
        g_assert_false(ok(qts));
        g_usleep(10 * 1000);
    }
}

/*
 * The host maps what the SMMU translated: the EP's driver unmaps it and
 * waits for its CMD_SYNC.  That completes only once the host has dropped
 * its mapping (while the host is stopped, it does not), and nothing
 * waits meanwhile: the vCPU that wrote CMDQ_PROD is not held.
 */
static void test_smmu_sync_held(void)
{
    Lab lab = { 0 };
    QTestState *ep;
    pid_t host_pid;

    smmu_lab_start(&lab, 0);
    ep = lab.ep;
    host_pid = qtest_pid(lab.host);
    qtest_writel(lab.host, HOST_BAR0 + 0x10, 0x5a5a0001);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x10), ==, 0x5a5a0001);

    stop_process(host_pid);
    smmu_map(ep, 0, 0);
    smmu_tlbi_nowait(ep);
    if (mode->fast) {
        assert_held(ep, smmu_synced);
    }
    kill(host_pid, SIGCONT);
    smmu_sync_wait(ep);
    qtest_writel(lab.host, HOST_BAR0 + 0x10, 0x5a5a0002);
    expect_event(ep, EVT_F_TRANSLATION, IOVA + 0x10);
    g_assert_cmphex(qtest_readl(ep, IOVA_PA + 0x10), ==, 0x5a5a0001);
    g_assert_cmphex(qtest_readl(lab.host, CFG(1, 0, 0)), ==, 0xb500104c);
    smmu_lab_stop(&lab);
}

/*
 * The host stops for good while it maps what the SMMU translated: the
 * hold ends at its cap (500 ms, within Linux's 1 s), with the link.
 */
static void test_smmu_hold_timeout(void)
{
    Lab lab = { .ep_props = SMMU_EP_PROPS };
    pid_t host_pid;

    smmu_lab_start(&lab, 0);
    host_pid = qtest_pid(lab.host);
    qtest_writel(lab.host, HOST_BAR0 + 0x10, 0x5a5a0001);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x10), ==, 0x5a5a0001);
    g_assert_cmpint(mtree_has(lab.host, "bar0.fast"), ==, mode->fast);
    stop_process(host_pid);
    smmu_map(lab.ep, 0, 0);
    smmu_tlbi(lab.ep);
    g_assert_cmpuint(qom_get_uint(lab.ep, "/machine/peripheral/ep",
                                  "x-iommu-hold-timeouts"), ==, mode->fast);
    g_assert_cmpuint(qtest_readl(lab.ep, ELBI + 4) & 1, ==, !mode->fast);
    kill(host_pid, SIGCONT);
    smmu_lab_stop(&lab);
}

static bool smmu_cr0_acked(QTestState *qts)
{
    return qtest_readl(qts, SMMU + SMMU_CR0ACK) ==
           qtest_readl(qts, SMMU + SMMU_CR0);
}

/*
 * The EP's driver turns the SMMU off while the host maps what it
 * translated: CR0ACK follows CR0 once the host has dropped its mapping.
 */
static void test_smmu_cr0ack_held(void)
{
    Lab lab = { 0 };
    pid_t host_pid;

    smmu_lab_start(&lab, 0);
    host_pid = qtest_pid(lab.host);
    qtest_writel(lab.host, HOST_BAR0 + 0x10, 0x5a5a0001);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x10), ==, 0x5a5a0001);

    stop_process(host_pid);
    qtest_writel(lab.ep, SMMU + SMMU_CR0, 1 << 2 | 1 << 3);
    if (mode->fast) {
        assert_held(lab.ep, smmu_cr0_acked);
    }
    kill(host_pid, SIGCONT);
    for (int i = 0; i < 10000 && !smmu_cr0_acked(lab.ep); i++) {
        g_usleep(1000);
    }
    g_assert_true(smmu_cr0_acked(lab.ep));
    g_assert_cmphex(qtest_readl(lab.host, CFG(1, 0, 0)), ==, 0xb500104c);
    smmu_lab_stop(&lab);
}

/*
 * The EP's driver remaps its page again and again while the host writes
 * it: every CMD_SYNC completes, the link stays up, and no access faults
 * (the page is always mapped).
 */
static void test_smmu_tlbi_under_traffic(void)
{
    Lab lab = { 0 };
    Streamer st;
    GThread *t;

    smmu_lab_start(&lab, 0);
    t = stream_start(&st, lab.host, HOST_BAR0 + 0x20);
    for (int i = 0; i < 200; i++) {
        smmu_map(lab.ep, 0, PTE_RW);
        smmu_tlbi(lab.ep);
    }
    stream_stop(&st, t);
    g_assert_cmpuint(st.count, >, 0);
    /* A read behind the posted writes: the last one has landed */
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x20), ==, st.count);
    g_assert_cmphex(qtest_readl(lab.ep, IOVA_PA + 0x20), ==, st.count);
    /*
     * The fast path is still in use: the host maps the page again, once
     * a REVOKE sent when the last hold ended (if any) has been served.
     */
    for (int i = 0; i < 500 && mode->fast &&
         !mtree_has(lab.host, "bar0.fast"); i++) {
        qtest_writel(lab.host, HOST_BAR0 + 0x20, 0);
        g_usleep(10 * 1000);
    }
    g_assert_cmpint(mtree_has(lab.host, "bar0.fast"), ==, mode->fast);
    smmu_lab_stop(&lab);
}

/*
 * A 2 MiB block, the BAR on its second MiB: the EP's driver unmaps the
 * block and invalidates it by its base address, as one leaf, the way
 * Linux does on an SMMU without range invalidation.  The SMMU tells its
 * notifiers of one page there, not of the BAR's: the host's mapping
 * goes all the same.
 */
static void test_smmu_block(void)
{
    Lab lab = { 0 };
    uint64_t block_pa = RAM + 0x600000;

    smmu_lab_start(&lab, 0x100000);
    qtest_writeq(lab.ep, PT_L2, block_pa | PTE_BLOCK);
    smmu_tlbi(lab.ep);
    qtest_writel(lab.host, HOST_BAR0 + 0x10, 0x5a5a0001);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x10), ==, 0x5a5a0001);
    g_assert_cmphex(qtest_readl(lab.ep, block_pa + 0x100010), ==, 0x5a5a0001);

    qtest_writeq(lab.ep, PT_L2, 0);
    smmu_tlbi_va(lab.ep, IOVA);
    qtest_writel(lab.host, HOST_BAR0 + 0x10, 0x5a5a0002);
    expect_event(lab.ep, EVT_F_TRANSLATION, IOVA + 0x100010);
    g_assert_cmphex(qtest_readl(lab.ep, block_pa + 0x100010), ==, 0x5a5a0001);
    smmu_lab_stop(&lab);
}

/*
 * The EP's driver changes its STE (Linux attaching the device to another
 * domain): to abort, then to bypass.  After the CFGI_STE the host's
 * writes follow the new STE: dropped with no event, then straight to
 * the physical address, which the fast path maps too.
 */
static void test_smmu_ste_change(void)
{
    Lab lab = { 0 };

    smmu_lab_start(&lab, 0);
    qtest_writel(lab.host, HOST_BAR0 + 0x10, 0x5a5a0001);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x10), ==, 0x5a5a0001);

    smmu_set_ste(lab.ep, STE_ABORT);
    smmu_cfgi_ste(lab.ep);
    qtest_writel(lab.host, HOST_BAR0 + 0x10, 0x5a5a0002);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x10), ==, 0xffffffff);
    g_assert_cmphex(qtest_readl(lab.ep, IOVA_PA + 0x10), ==, 0x5a5a0001);
    expect_no_event(lab.ep);

    smmu_set_ste(lab.ep, STE_BYPASS);
    smmu_cfgi_ste(lab.ep);
    qtest_writel(lab.ep, IB(0) + 0x14, IOVA_PA);
    qtest_writel(lab.host, HOST_BAR0 + 0x10, 0x5a5a0003);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x10), ==, 0x5a5a0003);
    g_assert_cmphex(qtest_readl(lab.ep, IOVA_PA + 0x10), ==, 0x5a5a0003);
    g_assert_cmpint(mtree_has(lab.host, "bar0.fast"), ==, mode->fast);
    smmu_lab_stop(&lab);
}

/*
 * An 8 KiB BAR on IOVA whose first page is unmapped and second mapped:
 * the fast path maps the second.
 */
static void test_smmu_hole(void)
{
    Lab lab = { 0 };

    smmu_lab_boot(&lab);
    smmu_map(lab.ep, 1, PTE_RW);
    qtest_writel(lab.ep, DBI + MISC_CONTROL_1, 1);
    qtest_writel(lab.ep, DBI2 + 0x10, 0x1fff);
    qtest_writel(lab.ep, DBI + MISC_CONTROL_1, 0);
    qtest_writel(lab.ep, IB(0) + 0x14, IOVA);
    lab_link_up(&lab);
    host_enable_function(&lab);

    qtest_writel(lab.host, HOST_BAR0 + 0x1010, 0x5a5a0001);
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x1010), ==,
                    0x5a5a0001);
    g_assert_cmphex(qtest_readl(lab.ep, IOVA_PA + 0x1010), ==, 0x5a5a0001);
    g_assert_cmpint(mtree_has(lab.host, "bar0.fast"), ==, mode->fast);
    qtest_writel(lab.host, HOST_BAR0 + 0x10, 0x5a5a0002);
    expect_event(lab.ep, EVT_F_TRANSLATION, IOVA + 0x10);
    g_assert_cmphex(qtest_readl(lab.ep, IOVA_PA + 0x10), ==, 0);
    smmu_lab_stop(&lab);
}

/*
 * The host VM's SMMU (virt's iommu=smmuv3) in front of the EP's function
 * (RID 01:00.0, its StreamID): the EP's writes through its window land
 * where the host's page tables map them.  One to an unmapped IOVA faults
 * in the host's SMMU and is dropped; the link stays up.
 */
static void test_host_iommu(void)
{
    Lab lab = { .host_machine = ",iommu=smmuv3" };

    lab_start(&lab);
    lab_link_up(&lab);
    host_enable_function(&lab);
    smmu_base = VIRT_SMMU;
    smmu_sid = 0x100;
    smmu_setup(lab.host);
    smmu_map(lab.host, 0, PTE_RW);
    ep_map_window(&lab);
    qtest_writel(lab.ep, OB(0) + 0x14, IOVA);

    qtest_writel(lab.ep, WINDOW + 0x40, 0x21);
    g_assert_cmphex(qtest_readl(lab.ep, WINDOW + 0x40), ==, 0x21);
    g_assert_cmphex(qtest_readl(lab.host, IOVA_PA + 0x40), ==, 0x21);
    expect_no_event(lab.host);

    /* Page 1 is not mapped: a translation fault for the function's RID */
    qtest_writel(lab.ep, OB(0) + 0x14, IOVA + 0x1000);
    qtest_writel(lab.ep, WINDOW + 0x40, 0x22);
    expect_event(lab.host, EVT_F_TRANSLATION, IOVA + 0x1040);
    g_assert_cmphex(qtest_readl(lab.host, IOVA_PA + 0x1040), ==, 0);
    expect_no_event(lab.host);
    g_assert_cmphex(qtest_readl(lab.host, CFG(1, 0, 0)), ==, 0xb500104c);
    smmu_base = 0x0c000000ULL;
    smmu_sid = 0x10;
    lab_stop(&lab);
}

/*
 * Posted writes over the link: a write reaches host RAM when the EP's
 * virtual clock says it drains, not before, and a read pushes it ahead
 * of itself.  The fast path keeps that: host RAM is not mapped into the
 * window, the drained write goes to it directly.
 */
static void test_posted_over_link(void)
{
    Lab lab = { .ep_props = ",posted-write-latency-ns=1000000" };

    lab_start(&lab);
    lab_link_up(&lab);
    host_enable_function(&lab);
    ep_map_window(&lab);

    qtest_writel(lab.ep, WINDOW + 0x40, 0x21);
    g_usleep(50 * 1000);
    g_assert_cmphex(qtest_readl(lab.host, RAM + 0x200040), ==, 0);
    qtest_clock_step(lab.ep, 1000 * 1000);
    g_assert(wait_for(lab.host, RAM + 0x200040, ~0u, 0x21, false));

    qtest_writel(lab.ep, WINDOW + 0x44, 0x22);
    g_assert_cmphex(qtest_readl(lab.ep, WINDOW + 0x48), ==, 0);
    g_assert_cmphex(qtest_readl(lab.host, RAM + 0x200044), ==, 0x22);
    g_assert_cmpuint(ep_counter(lab.ep, "x-posted-drains-read"), ==, 1);
    g_assert_cmpuint(ep_counter(lab.ep, "x-posted-drains-latency"), ==, 1);
    g_assert(!mtree_has(lab.ep, "ob0.fast"));
    g_assert_cmpint(mtree_has(lab.ep, "edma.fast"), ==, mode->fast);
    lab_stop(&lab);
}

/*
 * Once a window write has gone by message (here to the host's UART, not
 * RAM), the next one to host RAM goes by message too, behind it, until
 * a round trip (the read, or the window's own) has come back; then
 * straight to RAM again.  The host is stopped while the two drain, so
 * that the window's own round trip cannot come back between them.
 */
#define HOST_UART_ICR       0x09000044ULL

/* Outbound region 1: the window's second 4 KiB onto the host's UART */
static void ep_map_uart_window(Lab *lab)
{
    qtest_writel(lab->ep, OB(1) + 0x08, WINDOW + 0x1000);
    qtest_writel(lab->ep, OB(1) + 0x0c, 0);
    qtest_writel(lab->ep, OB(1) + 0x10, WINDOW + 0x1fff);
    qtest_writel(lab->ep, OB(1) + 0x20, 0);
    qtest_writel(lab->ep, OB(1) + 0x14, HOST_UART_ICR & ~0xfffULL);
    qtest_writel(lab->ep, OB(1) + 0x18, 0);
    qtest_writel(lab->ep, OB(1) + 0x00, 0);
    qtest_writel(lab->ep, OB(1) + 0x04, 0x80000000);
}

/* Both VMs up, the window onto host RAM and the UART, one write done */
static void fence_lab_start(Lab *lab)
{
    lab_start(lab);
    lab_link_up(lab);
    host_enable_function(lab);
    ep_map_window(lab);
    ep_map_uart_window(lab);
    qtest_writel(lab->ep, WINDOW + 0x40, 1);
    qtest_readl(lab->ep, WINDOW + 0x48);
}

static void test_posted_fence(void)
{
    Lab lab = { .ep_props = ",posted-write-latency-ns=1000000" };
    uint64_t msgs;

    fence_lab_start(&lab);
    msgs = ep_counter(lab.ep, "x-window-msg-writes");
    /* Stopped, the host cannot complete the round trip before write 2 */
    stop_process(qtest_pid(lab.host));
    qtest_writel(lab.ep, WINDOW + 0x1000 + (HOST_UART_ICR & 0xfff), 0x7ff);
    qtest_writel(lab.ep, WINDOW + 0x40, 2);
    qtest_clock_step(lab.ep, 1000 * 1000);
    kill(qtest_pid(lab.host), SIGCONT);
    qtest_readl(lab.ep, WINDOW + 0x48);
    g_assert_cmphex(qtest_readl(lab.host, RAM + 0x200040), ==, 2);
    g_assert_cmpuint(ep_counter(lab.ep, "x-window-msg-writes"), ==,
                     msgs + 2);
    qtest_writel(lab.ep, WINDOW + 0x40, 3);
    qtest_readl(lab.ep, WINDOW + 0x48);
    g_assert_cmphex(qtest_readl(lab.host, RAM + 0x200040), ==, 3);
    g_assert_cmpuint(ep_counter(lab.ep, "x-window-msg-writes"), ==,
                     msgs + 2 + !mode->fast);
    lab_stop(&lab);
}

/*
 * Nothing need read for the fence to lift: the write by message sends a
 * round trip of its own, and once that has come back, host RAM is
 * written straight again.  The host is stopped (SIGSTOP) while the
 * first round trip is in flight, so that a write to host RAM goes by
 * message behind it: the fence must lift after one more round trip,
 * not chase the writes for ever (it once did: each round trip covered
 * all but the write that had sent it).
 */
static void test_posted_fence_lifts(void)
{
    Lab lab = { .ep_props = ",posted-write-latency-ns=1000" };
    uint64_t msgs, before, sent, rts, rts_after;
    uint32_t val;

    if (!mode->fast) {
        g_test_skip("host RAM is reached by message anyway");
        return;
    }
    fence_lab_start(&lab);

    msgs = ep_counter(lab.ep, "x-window-msg-writes");
    stop_process(qtest_pid(lab.host));
    qtest_writel(lab.ep, WINDOW + 0x1000 + (HOST_UART_ICR & 0xfff), 0x7ff);
    qtest_clock_step(lab.ep, 1000);
    rts = ep_counter(lab.ep, "x-window-round-trips");
    qtest_writel(lab.ep, WINDOW + 0x40, 2);
    qtest_clock_step(lab.ep, 1000);
    sent = ep_counter(lab.ep, "x-window-msg-writes");
    rts_after = ep_counter(lab.ep, "x-window-round-trips");
    kill(qtest_pid(lab.host), SIGCONT);
    /* Behind the UART write, by message; no second round trip yet */
    g_assert_cmpuint(rts, ==, 1);
    g_assert_cmpuint(sent, ==, msgs + 2);
    g_assert_cmpuint(rts_after, ==, 1);
    g_assert(wait_for(lab.host, RAM + 0x200040, ~0u, 2, false));

    for (val = 3; val < 1000; val++) {
        before = ep_counter(lab.ep, "x-window-msg-writes");
        qtest_writel(lab.ep, WINDOW + 0x40, val);
        qtest_clock_step(lab.ep, 1000);
        g_assert(wait_for(lab.host, RAM + 0x200040, ~0u, val, false));
        if (ep_counter(lab.ep, "x-window-msg-writes") == before) {
            break;
        }
        g_usleep(10 * 1000);
    }
    /*
     * Straight again, after a round trip or two more: the first write
     * after the first round trip came back goes by message and sends
     * the second (or, if that completion had not been seen yet, the
     * next write does).  The chase the old code ran never ended.
     */
    g_assert_cmpuint(val, <, 1000);
    g_assert_cmpuint(ep_counter(lab.ep, "x-window-msg-writes"), <=, msgs + 5);
    g_assert_cmpuint(ep_counter(lab.ep, "x-window-round-trips"), <=, 3);
    lab_stop(&lab);
}

typedef struct ModeTest {
    const LabMode *mode;
    void (*fn)(void);
} ModeTest;

static void run_in_mode(const void *data)
{
    const ModeTest *mt = data;

    mode = mt->mode;
    mt->fn();
}

static void add_mode_tests(const char *name, void (*fn)(void))
{
    for (int i = 0; i < ARRAY_SIZE(modes); i++) {
        ModeTest *mt = g_new(ModeTest, 1);
        g_autofree char *path = g_strdup_printf("/dw-pcie-ep-link/%s/%s",
                                                modes[i].name, name);

        *mt = (ModeTest) { &modes[i], fn };
        qtest_add_data_func(path, mt, run_in_mode);
    }
}

/*
 * The host's config reads are answered from its copy of the EP's config
 * space: with the EP process stopped they still read the EP's values,
 * at once (they used to time out and read all ones).  A change the EP's
 * driver makes after UP reaches the copy.
 */
static void test_config_copy(void)
{
    Lab lab = { 0 };

    lab_start(&lab);
    lab_link_up(&lab);
    qtest_writel(lab.ep, DBI + MISC_CONTROL_1, 1);
    qtest_writel(lab.ep, DBI + 0x2c, 0xa5a51234);
    qtest_writel(lab.ep, DBI + MISC_CONTROL_1, 0);
    g_assert(wait_for(lab.host, CFG(1, 0, 0x2c), 0xffffffff, 0xa5a51234,
                      false));

    g_assert_cmpint(kill(qtest_pid(lab.ep), SIGSTOP), ==, 0);
    g_assert_cmphex(qtest_readl(lab.host, CFG(1, 0, 0)), ==, 0xb500104c);
    g_assert_cmphex(qtest_readb(lab.host, CFG(1, 0, 0x34)), ==, 0x40);
    /* The host's own write stands until the EP has seen it */
    qtest_writeb(lab.host, CFG(1, 0, 0x3c), 0x5a);
    g_assert_cmphex(qtest_readb(lab.host, CFG(1, 0, 0x3c)), ==, 0x5a);
    g_assert_cmpint(kill(qtest_pid(lab.ep), SIGCONT), ==, 0);
    g_assert(wait_for(lab.ep, DBI + 0x3c, 0xff, 0x5a, false));
    g_assert_cmphex(qtest_readb(lab.host, CFG(1, 0, 0x3c)), ==, 0x5a);
    lab_stop(&lab);
}

/* The host powers the slot off, as pciehp does after the attention button */
static void host_slot_power_off(Lab *lab)
{
    uint64_t exp = port_exp_cap(lab->host);

    g_assert(wait_for(lab->host, exp + 0x1a, 0x1, 0x1, true));
    qtest_writew(lab->host, exp + 0x1a, 0x1);
    qtest_writew(lab->host, exp + 0x18,
                 qtest_readw(lab->host, exp + 0x18) | 0x400 | 0x300);
}

/*
 * The EP's driver adds a BAR after the link is up: the host gets a new
 * UP and plugs the function again with it, as after a rescan (the BAR
 * used to stay unmapped).
 */
static void test_bars_change(void)
{
    Lab lab = { 0 };
    uint64_t exp;

    lab_start(&lab);
    lab_link_up(&lab);
    /* BAR1: 4 KiB onto EP RAM + 2 MiB through inbound region 1 */
    qtest_writel(lab.ep, RAM + 0x200000, 0x0ba51ba5);
    qtest_writel(lab.ep, DBI2 + 0x14, 0xfff);
    qtest_writel(lab.ep, IB(1) + 0x14, RAM + 0x200000);
    qtest_writel(lab.ep, IB(1) + 0x18, 0);
    qtest_writel(lab.ep, IB(1) + 0x00, 0);
    qtest_writel(lab.ep, IB(1) + 0x04, 0xc0080100);

    host_slot_power_off(&lab);
    g_assert(wait_for(lab.host, CFG(1, 0, 0), 0xffff, 0xffff, true));
    exp = port_exp_cap(lab.host);
    g_assert(wait_for(lab.host, exp + 0x1a, 0x40, 0x40, true));
    qtest_writew(lab.host, exp + 0x18,
                 (qtest_readw(lab.host, exp + 0x18) & ~0x7c0) | 0x100);
    qtest_writew(lab.host, exp + 0x1a, 0x9);
    g_assert(wait_for(lab.host, CFG(1, 0, 0), 0xffffffff, 0xb500104c,
                      false));
    qtest_writel(lab.host, CFG(1, 0, 0x14), 0xffffffff);
    g_assert_cmphex(qtest_readl(lab.host, CFG(1, 0, 0x14)), ==, 0xfffff000);
    qtest_writel(lab.host, CFG(1, 0, 0x14), HOST_BAR0 + 0x1000);
    qtest_writew(lab.host, CFG(1, 0, 0x04), 0x0006);
    g_assert(wait_for(lab.ep, DBI + 0x14, 0xffffffff, HOST_BAR0 + 0x1000,
                      false));
    g_assert_cmphex(qtest_readl(lab.host, HOST_BAR0 + 0x1000), ==,
                    0x0ba51ba5);
    lab_stop(&lab);
}

/* What the host wrote, seen by the EP: the interrupt line and BAR0 */
static void host_writes_non_sticky(Lab *lab)
{
    qtest_writeb(lab->host, CFG(1, 0, 0x3c), 0x5a);
    host_enable_function(lab);
    g_assert(wait_for(lab->ep, DBI + 0x04, 0x6, 0x6, true));
    g_assert_cmphex(qtest_readb(lab->ep, DBI + 0x3c), ==, 0x5a);
    g_assert_cmphex(qtest_readl(lab->ep, DBI + 0x10), ==, HOST_BAR0);
}

/* What goes back to its reset value: the host's writes, not the IDs */
static void assert_non_sticky_reset(Lab *lab)
{
    g_assert_cmphex(qtest_readb(lab->ep, DBI + 0x3c), ==, 0);
    g_assert_cmphex(qtest_readw(lab->ep, DBI + 0x04) & 0x6, ==, 0);
    g_assert_cmphex(qtest_readl(lab->ep, DBI + 0x10), ==, 0);
    g_assert_cmphex(qtest_readl(lab->ep, DBI), ==, 0xb500104c);
    g_assert_cmphex(qtest_readl(lab->ep, DBI2 + 0x10), ==, 0xfff);
}

/* Link down resets the EP's non-sticky registers (they used to stay). */
static void test_link_down_resets(void)
{
    Lab lab = { 0 };

    lab_start(&lab);
    lab_link_up(&lab);
    host_writes_non_sticky(&lab);
    qtest_writel(lab.ep, ELBI, 0);
    g_assert_cmphex(qtest_readl(lab.ep, ELBI + 4), ==, 0);
    assert_non_sticky_reset(&lab);
    lab_stop(&lab);
}

/* The EP's Link Status, in the host's copy (PCIe capability at 0x70) */
#define LNKSTA  (0x70 + 0x12)

/* Until the EP has had @n HOT_RESET messages (a reset of the host's copy) */
static void wait_hot_resets(Lab *lab, uint64_t n)
{
    for (int i = 0; i < 1000 && ep_counter(lab->ep, "x-hot-resets") < n; i++) {
        g_usleep(10 * 1000);
    }
    g_assert_cmpuint(ep_counter(lab->ep, "x-hot-resets"), ==, n);
}

/*
 * A secondary bus reset on the host's port, once the EP is out of any
 * earlier pulse (the host sends a hot reset when it plugs the function
 * too, and the virtual clock moves only when a test steps it): the
 * hot reset has come when the LTSSM reads Hot Reset.
 */
static void host_hot_reset(Lab *lab)
{
    qtest_clock_step(lab->ep, 3 * 1000 * 1000);
    g_assert_cmphex(qtest_readl(lab->ep, DBI + 0x728) & 0x3f, ==, 0x11);
    qtest_writew(lab->host, CFG(0, 1, 0x3e), 0x40);
    qtest_writew(lab->host, CFG(0, 1, 0x3e), 0);
    g_assert(wait_for(lab->ep, DBI + 0x728, 0x3f, 0x1f, false));
}

/*
 * A secondary bus reset on the host is a hot reset for the EP: its
 * non-sticky registers reset, and the link shows Hot Reset a moment.
 */
static void test_hot_reset(void)
{
    Lab lab = { 0 };

    uint16_t lnksta;

    lab_start(&lab);
    lab_link_up(&lab);
    /* Plugging the function and powering its slot are no hot reset */
    wait_hot_resets(&lab, 2);
    g_assert_cmphex(qtest_readl(lab.ep, DBI + 0x728) & 0x3f, ==, 0x11);
    host_writes_non_sticky(&lab);
    lnksta = qtest_readw(lab.host, CFG(1, 0, LNKSTA));
    g_assert_cmphex(lnksta & 0x3ff, !=, 0);
    host_hot_reset(&lab);
    assert_non_sticky_reset(&lab);
    /* The LTSSM in Hot Reset, the link-up bits down, for 2 ms */
    g_assert_cmphex(qtest_readl(lab.ep, DBI + 0x728) & 0x3f, ==, 0x1f);
    g_assert_cmphex(qtest_readl(lab.ep, DBI + 0x72c) & 0x10, ==, 0);
    g_assert_cmphex(qtest_readl(lab.ep, ELBI + 4), ==, 0);
    qtest_clock_step(lab.ep, 1900 * 1000);
    g_assert_cmphex(qtest_readl(lab.ep, ELBI + 4), ==, 0);
    /* Then trained again, and the host's copy follows */
    qtest_clock_step(lab.ep, 200 * 1000);
    g_assert_cmphex(qtest_readl(lab.ep, DBI + 0x728) & 0x3f, ==, 0x11);
    g_assert_cmphex(qtest_readl(lab.ep, DBI + 0x72c) & 0x10, ==, 0x10);
    g_assert_cmphex(qtest_readl(lab.ep, ELBI + 4), ==, 1);
    g_assert_cmphex(qtest_readl(lab.host, CFG(1, 0, 0)), ==, 0xb500104c);
    /* The host's Link Status never showed the pulse */
    g_assert_cmphex(qtest_readw(lab.host, CFG(1, 0, LNKSTA)), ==, lnksta);

    /*
     * The host's first request after its reset ends the pulse, before it
     * is served: the clock stands still here, and the write lands.
     */
    host_hot_reset(&lab);
    qtest_writeb(lab.host, CFG(1, 0, 0x3c), 0x5a);
    g_assert(wait_for(lab.ep, DBI + 0x3c, 0xff, 0x5a, false));
    g_assert_cmphex(qtest_readl(lab.ep, DBI + 0x728) & 0x3f, ==, 0x11);
    g_assert_cmphex(qtest_readl(lab.ep, ELBI + 4), ==, 1);

    /* A link that goes down in the pulse trains again without it */
    host_hot_reset(&lab);
    g_assert_cmphex(qtest_readl(lab.ep, DBI + 0x728) & 0x3f, ==, 0x1f);
    qtest_writel(lab.ep, ELBI, 0);
    qtest_writel(lab.ep, ELBI, 1);
    g_assert_cmphex(qtest_readl(lab.ep, DBI + 0x728) & 0x3f, ==, 0x11);
    g_assert_cmphex(qtest_readl(lab.ep, ELBI + 4), ==, 1);

    lab_stop(&lab);
}

/*
 * A slot with no power controller is powered from the plug on: its first
 * secondary bus reset, and a reset of the host, are hot resets already.
 */
static void test_hot_reset_powered_slot(void)
{
    Lab lab = { .host_port = ",power_controller_present=off" };

    lab_start(&lab);
    lab_link_up(&lab);
    wait_hot_resets(&lab, 1);
    g_assert_cmphex(qtest_readl(lab.ep, DBI + 0x728) & 0x3f, ==, 0x11);
    host_hot_reset(&lab);
    wait_hot_resets(&lab, 2);

    qtest_clock_step(lab.ep, 3 * 1000 * 1000);
    g_assert_cmphex(qtest_readl(lab.ep, DBI + 0x728) & 0x3f, ==, 0x11);
    qtest_system_reset(lab.host);
    g_assert(wait_for(lab.ep, DBI + 0x728, 0x3f, 0x1f, false));
    g_assert_cmphex(qtest_readl(lab.ep, ELBI + 4), ==, 0);
    lab_stop(&lab);
}

/* The host's slot has seen its function go: its events cleared */
static void wait_slot_empty(Lab *lab, uint64_t exp)
{
    g_assert(wait_for(lab->host, exp + 0x1a, 0x40, 0, true));
    qtest_writew(lab->host, exp + 0x1a, 0x9);
}

/* The EP trains again: the host's slot has a new function, not yet on */
static void ep_link_back(Lab *lab, uint64_t exp)
{
    qtest_writel(lab->ep, ELBI, 1);
    g_assert(wait_for(lab->ep, ELBI + 4, 1, 1, false));
    g_assert(wait_for(lab->host, exp + 0x1a, 0x40, 0x40, true));
}

/*
 * The EP goes down and comes back: the host's pciehp powers the slot off
 * (QEMU then removes the function) and on again after the new plug.  A
 * link down while the slot is off removes the function at once.  The
 * power-on resets the new function without a hot reset; the secondary
 * bus reset after it is one.
 */
static void test_hot_reset_replug(void)
{
    Lab lab = { 0 };
    uint64_t exp = 0;

    lab_start(&lab);
    lab_link_up(&lab);
    wait_hot_resets(&lab, 2);   /* the plug, the power-on */
    qtest_clock_step(lab.ep, 3 * 1000 * 1000);
    qtest_writel(lab.ep, ELBI, 0);
    exp = port_exp_cap(lab.host);
    /* pciehp on the attention button: power and its indicator off */
    g_assert(wait_for(lab.host, exp + 0x1a, 0x1, 0x1, true));
    qtest_writew(lab.host, exp + 0x18,
                 qtest_readw(lab.host, exp + 0x18) | 0x700);
    wait_slot_empty(&lab, exp);

    /* Plugged into a slot that is off, then powered on: no hot reset */
    ep_link_back(&lab, exp);
    wait_hot_resets(&lab, 3);

    /* Down again while its slot is off: QEMU removes it at once */
    qtest_writel(lab.ep, ELBI, 0);
    wait_slot_empty(&lab, exp);
    ep_link_back(&lab, exp);
    wait_hot_resets(&lab, 4);

    qtest_writew(lab.host, exp + 0x18,
                 (qtest_readw(lab.host, exp + 0x18) & ~0x7c0) | 0x100);
    g_assert(wait_for(lab.host, CFG(1, 0, 0), 0xffffffff, 0xb500104c,
                      false));
    wait_hot_resets(&lab, 5);
    g_assert_cmphex(qtest_readl(lab.ep, DBI + 0x728) & 0x3f, ==, 0x11);

    host_hot_reset(&lab);
    wait_hot_resets(&lab, 6);
    lab_stop(&lab);
}

/*
 * R-Car's controller on the link: its glue trains the link, a directed
 * speed change completes, the host sees BAR0 resizable (1 MB, from the
 * capability, not the DBI2 mask), and a link down takes the selected
 * size back to the smallest supported (it is non-sticky), and BAR0's
 * mask with it.
 */
#define REBAR               0x110
#define LINK_SPEED_CONTROL  0x80c

static void test_rcar(void)
{
    Lab lab = { .ep_device = "rcar-gen4-pcie-ep" };

    lab_start(&lab);
    /* A speed change asked for before the link trains completes with it */
    qtest_writel(lab.ep, DBI + LINK_SPEED_CONTROL,
                 qtest_readl(lab.ep, DBI + LINK_SPEED_CONTROL) | 1u << 17);
    lab_link_up(&lab);
    g_assert_cmphex(qtest_readl(lab.ep, DBI + LINK_SPEED_CONTROL) & 1u << 17,
                    ==, 0);
    g_assert_cmphex(qtest_readl(lab.host, CFG(1, 0, REBAR)) & 0xffff, ==,
                    0x15);
    qtest_writel(lab.host, CFG(1, 0, 0x10), 0xffffffff);
    g_assert_cmphex(qtest_readl(lab.host, CFG(1, 0, 0x10)), ==, 0xfff00000);

    qtest_writel(lab.ep, DBI + LINK_SPEED_CONTROL,
                 qtest_readl(lab.ep, DBI + LINK_SPEED_CONTROL) | 1u << 17);
    g_assert_cmphex(qtest_readl(lab.ep, DBI + LINK_SPEED_CONTROL) & 1u << 17,
                    ==, 0);

    /* 1 and 2 MB supported, 2 MB selected */
    qtest_writel(lab.ep, DBI + MISC_CONTROL_1, 1);
    qtest_writel(lab.ep, DBI + REBAR + 4, 0x30);
    qtest_writel(lab.ep, DBI + MISC_CONTROL_1, 0);
    qtest_writel(lab.ep, DBI + REBAR + 8,
                 (qtest_readl(lab.ep, DBI + REBAR + 8) & ~0x3f00) | 0x100);
    g_assert_cmphex(qtest_readl(lab.ep, DBI2 + 0x10), ==, 0x001fffff);

    /* The glue drops the LTSSM enable: link down */
    qtest_writel(lab.ep, RCAR_PCIERSTCTRL1, 0);
    g_assert_cmphex(qtest_readl(lab.ep, RCAR_PCIEINTSTS0), ==, 0);
    g_assert_cmphex(qtest_readl(lab.ep, DBI + REBAR + 8) & 0x3f00, ==, 0);
    g_assert_cmphex(qtest_readl(lab.ep, DBI2 + 0x10), ==, 0x000fffff);
    lab_stop(&lab);
}

/*
 * The eDMA over the link: the write channel copies EP RAM into host RAM
 * (its PCI address: no IOMMU, bus mastering on), the read channel copies
 * it back.  With the fast path, host RAM is mapped into the eDMA's view
 * of PCI space after its first request.
 */
#define EDMA                0x0c004000ULL
#define EDMA_CH(d, n)       (EDMA + 0x200 + 0x200 * (n) + ((d) ? 0x100 : 0))

/* Start a one-element copy on channel 0 of direction @d; wait till it ends */
static void edma_start(Lab *lab, int d, uint64_t sar, uint64_t dar,
                       uint32_t size, uint64_t ll)
{
    uint64_t ch = EDMA_CH(d, 0);

    /* A data element (CB, LIE), then a link element (LLP, TCB) */
    qtest_writel(lab->ep, ll, 0x9);
    qtest_writel(lab->ep, ll + 4, size);
    qtest_writeq(lab->ep, ll + 8, sar);
    qtest_writeq(lab->ep, ll + 16, dar);
    qtest_writel(lab->ep, ll + 24, 0x6);
    qtest_writeq(lab->ep, ll + 32, ll);
    qtest_writel(lab->ep, EDMA + (d ? 0x2c : 0x0c), 1);
    qtest_writel(lab->ep, ch, 0x300);
    qtest_writel(lab->ep, ch + 0x1c, ll);
    qtest_writel(lab->ep, ch + 0x20, ll >> 32);
    qtest_writel(lab->ep, EDMA + (d ? 0x30 : 0x10), 0);
}

static void edma_run(Lab *lab, int d, uint64_t sar, uint64_t dar,
                     uint32_t size, uint64_t ll)
{
    uint64_t ch = EDMA_CH(d, 0);

    edma_start(lab, d, sar, dar, size, ll);
    for (int i = 0; i < 1000 && (qtest_readl(lab->ep, ch) >> 5 & 3) == 1;
         i++) {
        qtest_clock_step(lab->ep, 1000 * 1000);
    }
}

static void edma_copy(Lab *lab, int d, uint64_t sar, uint64_t dar,
                      uint32_t size, uint64_t ll)
{
    edma_run(lab, d, sar, dar, size, ll);
    g_assert_cmphex(qtest_readl(lab->ep, EDMA_CH(d, 0)) >> 5 & 3, ==, 3);
    g_assert_cmphex(qtest_readl(lab->ep, EDMA + (d ? 0xa0 : 0x4c)), ==, 1);
}

static void test_edma_over_link(void)
{
    Lab lab = { 0 };
    g_autofree uint8_t *data = g_malloc(0x10000);
    g_autofree uint8_t *back = g_malloc(0x10000);

    for (int i = 0; i < 0x10000; i++) {
        data[i] = i * 13 + (i >> 9);
    }
    lab_start(&lab);
    lab_link_up(&lab);
    host_enable_function(&lab);
    qtest_memwrite(lab.ep, RAM + 0x400000, data, 0x10000);
    edma_copy(&lab, 0, RAM + 0x400000, RAM + 0x300000, 0x10000,
              RAM + 0x600000);
    /* The writes are posted: they land soon after DONE, in order */
    for (int i = 0; i < 500; i++) {
        qtest_memread(lab.host, RAM + 0x300000, back, 0x10000);
        if (!memcmp(data, back, 0x10000)) {
            break;
        }
        g_usleep(10 * 1000);
    }
    g_assert(!memcmp(data, back, 0x10000));
    edma_copy(&lab, 1, RAM + 0x300000, RAM + 0x500000, 0x10000,
              RAM + 0x700000);
    qtest_memread(lab.ep, RAM + 0x500000, back, 0x10000);
    g_assert(!memcmp(data, back, 0x10000));
    g_assert_cmpint(mtree_has(lab.ep, "edma.fast"), ==, mode->fast);

    /*
     * A read of the host's UART is an Unsupported Request there: the
     * channel aborts with UR in rd_err_status high (it used to say CA).
     */
    qtest_writel(lab.ep, EDMA + 0xac, 0xffffffff);
    edma_run(&lab, 1, 0x09000000, RAM + 0x500000, 0x100, RAM + 0x700000);
    g_assert_cmphex(qtest_readl(lab.ep, EDMA_CH(1, 0)) >> 5 & 3, ==, 2);
    g_assert_cmphex(qtest_readl(lab.ep, EDMA + 0xa0), ==, 1u << 16);
    g_assert_cmphex(qtest_readl(lab.ep, EDMA + 0xb8), ==, 1);
    lab_stop(&lab);
}

/*
 * The host dies with a transfer of each direction under way (1 MiB at
 * 1 MiB/s of virtual time, which stands still under qtest until
 * stepped: each channel is running with most of its data still to go,
 * though no request is outstanding on the link at that moment).  Once
 * the link is down, each channel aborts at its next chunk (CS = halted,
 * its abort bit), the read with a completion timeout in its error
 * status, as for a request no completion will answer; nothing hangs.
 */
static void test_edma_host_dies(void)
{
    Lab lab = { .ep_props = ",edma-bandwidth=1" };

    lab_start(&lab);
    lab_link_up(&lab);
    host_enable_function(&lab);
    edma_start(&lab, 0, RAM + 0x400000, RAM + 0x300000, 0x100000,
               RAM + 0x600000);
    edma_start(&lab, 1, RAM + 0x300000, RAM + 0x500000, 0x100000,
               RAM + 0x700000);
    qtest_clock_step(lab.ep, 10 * 1000 * 1000);
    g_assert_cmphex(qtest_readl(lab.ep, EDMA_CH(0, 0)) >> 5 & 3, ==, 1);
    g_assert_cmphex(qtest_readl(lab.ep, EDMA_CH(1, 0)) >> 5 & 3, ==, 1);
    g_assert_cmpuint(ep_counter(lab.ep, "x-edma-aborts"), ==, 0);

    qtest_quit(lab.host);
    lab.host = NULL;
    g_assert(wait_for(lab.ep, ELBI + 4, 1, 0, false));
    for (int i = 0; i < 100 && ep_counter(lab.ep, "x-edma-aborts") < 2;
         i++) {
        qtest_clock_step(lab.ep, 100 * 1000 * 1000);
    }
    g_assert_cmphex(qtest_readl(lab.ep, EDMA_CH(0, 0)) >> 5 & 3, ==, 2);
    g_assert_cmphex(qtest_readl(lab.ep, EDMA_CH(1, 0)) >> 5 & 3, ==, 2);
    g_assert_cmphex(qtest_readl(lab.ep, EDMA + 0x4c), ==, 1u << 16);
    g_assert_cmphex(qtest_readl(lab.ep, EDMA + 0xa0), ==, 1u << 16);
    /* A read that no completion answers: a completion timeout */
    g_assert_cmphex(qtest_readl(lab.ep, EDMA + 0xb8), ==, 1u << 16);
    g_assert_cmpuint(ep_counter(lab.ep, "x-edma-aborts"), ==, 2);
    lab_stop(&lab);
}

/* The EP's log (lab->ep_trace) says @what, within a few seconds */
static bool ep_log_says(Lab *lab, const char *what)
{
    g_autofree char *path = g_build_filename(lab->dir, "ep.log", NULL);

    for (int i = 0; i < 500; i++) {
        g_autofree char *text = NULL;

        if (g_file_get_contents(path, &text, NULL, NULL) &&
            strstr(text, what)) {
            return true;
        }
        g_usleep(10 * 1000);
    }
    return false;
}

/* Start @lab; the host writes @data to the EP's ITS (BAR0, inbound 0) */
static void host_writes_its(Lab *lab, uint32_t data)
{
    lab_start(lab);
    lab_link_up(lab);
    host_enable_function(lab);
    g_assert(wait_for(lab->ep, DBI + 0x04, 0x6, 0x6, true));
    qtest_writel(lab->ep, IB(0) + 0x14, ITS_TRANSLATION);
    qtest_writel(lab->host, HOST_BAR0 + GITS_TRANSLATER, data);
}

/*
 * A host write that an inbound window sends to the EP's GIC ITS carries
 * the controller's requester-id, which the ITS takes as the DeviceID.
 */
static void test_its_device_id(void)
{
    Lab lab = {
        .ep_args = "-global dw-pcie-ep.requester-id=0x1234",
        .ep_trace = "gicv3_its_translation_write",
    };

    host_writes_its(&lab, 0x2a);
    g_assert(ep_log_says(&lab, "data 0x2a size 4 requester_id 0x1234"));
    lab_stop(&lab);
}

/*
 * On a platform whose inbound writes cannot reach the ITS (its-doorbell
 * off), the same write is an Unsupported Request, and the ITS sees
 * nothing.  By default the controller's DeviceID is 0x1000.
 */
static void test_its_doorbell_off(void)
{
    Lab lab = {
        .ep_args = "-global dw-pcie-ep.its-doorbell=off -d guest_errors",
        .ep_trace = "gicv3_its_translation_write",
    };

    host_writes_its(&lab, 0x2b);
    g_assert(ep_log_says(&lab, "which inbound TLPs do not reach"));
    {
        /* Refused as it came in: the ITS saw nothing by then */
        g_autofree char *path = g_build_filename(lab.dir, "ep.log", NULL);
        g_autofree char *text = NULL;

        g_assert(g_file_get_contents(path, &text, NULL, NULL));
        g_assert(!strstr(text, "data 0x2b"));
    }
    lab_stop(&lab);

    /* The positive control, with the default requester-id */
    lab = (Lab) { .ep_trace = "gicv3_its_translation_write" };
    host_writes_its(&lab, 0x2c);
    g_assert(ep_log_says(&lab, "data 0x2c size 4 requester_id 0x1000"));
    lab_stop(&lab);
}

/* Neither VM migrates while a link exists: the link's state would not. */
static void test_migration_blocked(void)
{
    Lab lab = { 0 };

    mode = &modes[0];
    lab_start(&lab);
    lab_link_up(&lab);
    /* The plug's and the power-on's resets have come: no pulse to see */
    wait_hot_resets(&lab, 2);
    for (int i = 0; i < 2; i++) {
        QTestState *qts = i ? lab.host : lab.ep;
        QDict *rsp = qtest_qmp(qts, "{ 'execute': 'migrate', 'arguments': "
                               "{ 'uri': 'exec:cat > /dev/null' } }");
        QDict *err = qdict_get_qdict(rsp, "error");

        g_assert(err);
        g_assert(strstr(qdict_get_str(err, "desc"),
                        "with an endpoint link cannot migrate"));
        qobject_unref(rsp);
        /* The link is still up for the positive control */
        g_assert_cmphex(qtest_readl(qts, i ? CFG(1, 0, 0) : ELBI + 4), ==,
                        i ? 0xb500104c : 1);
    }
    lab_stop(&lab);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    /* Registered only where CONFIG_DW_PCIE_EP is set, as dw-pcie-ep-test */
    if (!qtest_has_device("dw-pcie-ep") ||
        !qtest_has_device("dw-pcie-ep-link")) {
        g_printerr("the endpoint link is missing from this QEMU build\n");
        return 1;
    }
    add_mode_tests("config", test_config_round_trip);
    add_mode_tests("bar", test_bar_round_trip);
    add_mode_tests("ep-to-host", test_ep_to_host);
    add_mode_tests("cross-reads", test_cross_reads);
    add_mode_tests("link-down", test_link_down);
    add_mode_tests("host-dies", test_host_dies);
    add_mode_tests("ltssm-disable", test_ltssm_disable);
    add_mode_tests("fast-path-mapped", test_fast_path_mapped);
    add_mode_tests("inbound-revoke", test_inbound_revoke);
    add_mode_tests("outbound-revoke", test_outbound_revoke);
    add_mode_tests("config-copy", test_config_copy);
    add_mode_tests("bars-change", test_bars_change);
    add_mode_tests("link-down-resets", test_link_down_resets);
    add_mode_tests("hot-reset", test_hot_reset);
    add_mode_tests("hot-reset-powered-slot", test_hot_reset_powered_slot);
    add_mode_tests("hot-reset-replug", test_hot_reset_replug);
    add_mode_tests("rcar", test_rcar);
    add_mode_tests("its-device-id", test_its_device_id);
    add_mode_tests("its-doorbell-off", test_its_doorbell_off);
    add_mode_tests("edma", test_edma_over_link);
    add_mode_tests("edma-host-dies", test_edma_host_dies);
    add_mode_tests("smmu-coherent", test_smmu_coherent);
    add_mode_tests("smmu-sync-held", test_smmu_sync_held);
    add_mode_tests("smmu-cr0ack-held", test_smmu_cr0ack_held);
    add_mode_tests("smmu-hold-timeout", test_smmu_hold_timeout);
    add_mode_tests("smmu-tlbi-under-traffic", test_smmu_tlbi_under_traffic);
    add_mode_tests("smmu-block", test_smmu_block);
    add_mode_tests("smmu-ste-change", test_smmu_ste_change);
    add_mode_tests("smmu-hole", test_smmu_hole);
    add_mode_tests("host-iommu", test_host_iommu);
    add_mode_tests("posted", test_posted_over_link);
    add_mode_tests("posted-fence", test_posted_fence);
    add_mode_tests("posted-fence-lifts", test_posted_fence_lifts);
    qtest_add_func("/dw-pcie-ep-link/malformed", test_malformed);
    qtest_add_func("/dw-pcie-ep-link/migration-blocked",
                   test_migration_blocked);
    return g_test_run();
}
