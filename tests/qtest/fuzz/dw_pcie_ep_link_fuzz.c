/*
 * Fuzz targets for the DesignWare PCIe endpoint's link: arbitrary bytes
 * from the link partner, into either end.
 *
 *   dw-pcie-ep-link-ep     a fake host's bytes into the EP's controller
 *   dw-pcie-ep-link-host   a fake EP's bytes into the host's function
 *
 * Each input is one connection.  Its first byte says how it starts:
 * bit 0 offers the fast path in our HELLO, bit 1 sends no HELLO at all
 * (the rest is the whole stream), bit 2 (EP) enables the LTSSM first, so
 * that requests find the link in L0.  The rest goes to the socket as it
 * is.  The target then runs QEMU until the stream is read and answered,
 * or the link is taken down, closes the connection and resets the
 * machine.  What the device sends back is read and dropped, file
 * descriptors (SHM) closed.  Not reached: SHM with a file descriptor of
 * ours (the stream carries none), and completions to the device's own
 * requests (nobody answers them; they time out).
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/sockios.h>

#include "qemu/cutils.h"
#include "qemu/main-loop.h"
#include "tests/qtest/libqtest.h"
#include "fuzz.h"

#define HDR_SIZE        16
#define LINK_MAGIC      0x4c455044
#define LINK_VERSION    3
#define ROLE_EP         1
#define ROLE_HOST       2
#define ELBI            0x0c003000
/* Main-loop rounds with nothing left to read or write: the input is done */
#define QUIET_ROUNDS    8
#define MAX_ROUNDS      2000

static char *sock_path;
static int listen_fd = -1;      /* the host target's: QEMU connects to us */
static bool fuzz_host;

/*
 * One round of QEMU's main loop, and a moment for its link IOThread,
 * which takes the BQL to serve a request: not held while we sleep.
 */
static void pump(void)
{
    main_loop_wait(true);
    bql_unlock();
    g_usleep(20);
    bql_lock();
}

static void close_fds(struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int *fds = (int *)CMSG_DATA(c);
            size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

            for (size_t i = 0; i < n; i++) {
                close(fds[i]);
            }
        }
    }
}

/* Read what the device sent; false once it has closed the connection */
static bool drain(int fd, bool *got)
{
    char buf[16384];
    char ctl[CMSG_SPACE(16 * sizeof(int))];
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };

    for (;;) {
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = ctl, .msg_controllen = sizeof(ctl),
        };
        ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

        if (n > 0) {
            close_fds(&msg);
            *got = true;
            continue;
        }
        return n < 0 && (errno == EAGAIN || errno == EINTR);
    }
}

/*
 * Non-blocking: a connect() that waited for a full backlog would hold
 * the BQL, which the link's IOThread may need before it accepts.
 */
static int connect_to_ep(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    pstrcpy(sa.sun_path, sizeof(sa.sun_path), sock_path);
    for (int i = 0; i < MAX_ROUNDS; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        0);

        g_assert(fd >= 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            return fd;
        }
        close(fd);
        pump();
    }
    return -1;
}

static int accept_host(void)
{
    for (int i = 0; i < MAX_ROUNDS * 10; i++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (fd >= 0) {
            return fd;
        }
        pump();
    }
    return -1;
}

/* Write all of @buf, running QEMU while the socket is full */
static bool send_all(int fd, const uint8_t *buf, size_t len)
{
    bool got = false;

    for (int rounds = 0; len && rounds < MAX_ROUNDS; rounds++) {
        ssize_t n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (n > 0) {
            buf += n;
            len -= n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return false;       /* the device closed the link */
        } else {
            pump();
            if (!drain(fd, &got)) {
                return false;
            }
        }
    }
    return !len;
}

static void send_hello(int fd, bool fast_path)
{
    uint8_t msg[HDR_SIZE + 12] = { 1 };

    stl_le_p(msg + 4, 12);
    stl_le_p(msg + HDR_SIZE, LINK_MAGIC);
    stw_le_p(msg + HDR_SIZE + 4, LINK_VERSION);
    stw_le_p(msg + HDR_SIZE + 6, fuzz_host ? ROLE_EP : ROLE_HOST);
    stl_le_p(msg + HDR_SIZE + 8, fast_path);
    send_all(fd, msg, sizeof(msg));
}

/* Until the device has read everything and gone quiet, or hung up */
static void settle(int fd)
{
    int quiet = 0;

    for (int i = 0; i < MAX_ROUNDS && quiet < QUIET_ROUNDS; i++) {
        bool got = false;
        int unread = 0;

        flush_events(NULL);
        pump();
        if (!drain(fd, &got)) {
            return;
        }
        ioctl(fd, SIOCOUTQ, &unread);
        quiet = (got || unread) ? 0 : quiet + 1;
    }
}

static void link_fuzz(QTestState *s, const unsigned char *data, size_t size)
{
    uint8_t mode = size ? data[0] : 0;
    int fd;

    if (!fuzz_host && (mode & 4)) {
        qtest_writel(s, ELBI, 1);
    }
    fd = fuzz_host ? accept_host() : connect_to_ep();
    if (fd < 0) {
        return;
    }
    if (!(mode & 2)) {
        send_hello(fd, mode & 1);
    }
    if (size > 1 && send_all(fd, data + 1, size - 1)) {
        settle(fd);
    }
    shutdown(fd, SHUT_RDWR);
    close(fd);
    /* Let the device see the close before the next connection */
    for (int i = 0; i < QUIET_ROUNDS; i++) {
        flush_events(NULL);
        pump();
    }
    /* Each input from a machine just reset, as generic-fuzz does */
    fuzz_reset(s);
}

static void make_sock_path(void)
{
    g_autofree char *dir = g_dir_make_tmp("dw-pcie-ep-link-fuzz-XXXXXX", NULL);

    g_assert(dir);
    sock_path = g_build_filename(dir, "link.sock", NULL);
}

/* The host's end connects to us: listen before QEMU starts */
static void host_pre_vm_init(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    make_sock_path();
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                       0);
    g_assert(listen_fd >= 0);
    pstrcpy(sa.sun_path, sizeof(sa.sun_path), sock_path);
    g_assert(bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    g_assert(listen(listen_fd, 1) == 0);
    fuzz_host = true;
}

static GString *common_args(void)
{
    return g_string_new(TARGET_NAME " -machine virt,gic-version=3 "
                        "-accel qtest "
                        "-display none -nic none -m 128M "
                        "-object memory-backend-memfd,id=ram,size=128M,"
                        "share=on -machine memory-backend=ram ");
}

static GString *ep_cmdline(FuzzTarget *t)
{
    GString *cmd = common_args();

    make_sock_path();
    g_string_append_printf(cmd, "-chardev socket,id=link,path=%s,server=on,"
                           "wait=off -device dw-pcie-ep,id=ep,chardev=link,"
                           "link-timeout-ms=20,posted-write-latency-ns=0",
                           sock_path);
    return cmd;
}

static GString *host_cmdline(FuzzTarget *t)
{
    GString *cmd = common_args();

    g_string_append_printf(cmd, "-device pcie-root-port,id=rp0,chassis=1,"
                           "slot=1 -chardev socket,id=link,path=%s,"
                           "reconnect-ms=1 -device dw-pcie-ep-link,id=l,"
                           "chardev=link,port=rp0,link-timeout-ms=20",
                           sock_path);
    return cmd;
}

static void register_link_fuzz_targets(void)
{
    fuzz_add_target(&(FuzzTarget){
        .name = "dw-pcie-ep-link-ep",
        .description = "Bytes from a fake host into the DesignWare PCIe "
                       "endpoint's link",
        .get_init_cmdline = ep_cmdline,
        .fuzz = link_fuzz,
    });
    fuzz_add_target(&(FuzzTarget){
        .name = "dw-pcie-ep-link-host",
        .description = "Bytes from a fake endpoint into the host's "
                       "dw-pcie-ep-link function",
        .pre_vm_init = host_pre_vm_init,
        .get_init_cmdline = host_cmdline,
        .fuzz = link_fuzz,
    });
}

fuzz_target_init(register_link_fuzz_targets);
