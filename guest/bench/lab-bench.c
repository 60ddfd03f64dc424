/*
 * lab-bench: figures measured inside the host VM, printed as lines
 * "@@lab bench NAME VALUE UNIT" for scripts/lab bench.
 *
 *   lab-bench access NAME PHYS SIZE COUNT
 *       ns per 4-byte read and per 4-byte write of COUNT accesses that
 *       walk [PHYS, PHYS + SIZE) through /dev/mem; PHYS 0 means a
 *       buffer of this process (guest RAM)
 *   lab-bench xfer DEV SIZE COUNT
 *       pci-epf-test READ and WRITE commands of SIZE bytes each, COUNT
 *       times, on DEV: the EP moves the data through its outbound
 *       window with memcpy_fromio()/memcpy_toio()
 *   lab-bench load DEV KIND IRQ COUNT SIZE
 *       COUNT rounds of load on DEV with interrupts of type IRQ (msi or
 *       msix): KIND irq raises one interrupt a round; dma and memcpy do
 *       a READ and a WRITE command of SIZE bytes a round, with the eDMA
 *       or through the window, each ending with an interrupt.  Prints
 *       "@@lab load KIND-IRQ OK FAILED"; works with the ABI of 6.12
 *       (ioctls return 1 for success) and of 7.2 (0)
 *   lab-bench tcp-recv PORT NAME MIB TIMEOUT
 *       accept one TCP connection on PORT and read it to its end, all
 *       within TIMEOUT seconds; prints "@@lab ok NAME" with the bytes
 *       and the rate (first byte to end) if MIB MiB came, "@@lab fail"
 *       otherwise (a step for scripts/lab)
 *   lab-bench tcp-send ADDR PORT MIB TIMEOUT
 *       connect to ADDR:PORT (retrying while nothing listens), send MIB
 *       MiB and wait for the receiver to close, all within TIMEOUT
 *       seconds; 0 MiB makes a bare "go" signal
 *
 * Copyright (c) 2026 The pciep-lab authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* From the kernel's uapi <linux/pcitest.h>, a stable ABI */
#define PCITEST_WRITE           _IOW('P', 0x4, unsigned long)
#define PCITEST_READ            _IOW('P', 0x5, unsigned long)
#define PCITEST_MSI             _IOW('P', 0x3, int)
#define PCITEST_MSIX            _IOW('P', 0x7, int)
#define PCITEST_SET_IRQTYPE     _IOW('P', 0x8, int)
#define PCITEST_IRQ_TYPE_MSI    1
#define PCITEST_IRQ_TYPE_MSIX   2
#define PCITEST_FLAGS_USE_DMA   0x1

struct pci_endpoint_test_xfer_param {
    unsigned long size;
    unsigned char flags;
};

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static volatile uint32_t *map(unsigned long phys, size_t size)
{
    void *p;
    int fd;

    if (!phys) {
        p = aligned_alloc(4096, size);
        if (p) {
            memset(p, 0, size);
        }
        return p;
    }
    fd = open("/dev/mem", O_RDWR | O_SYNC);
    if (fd < 0) {
        perror("/dev/mem");
        return NULL;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, phys);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

static int bench_access(const char *name, unsigned long phys, size_t size,
                        long count)
{
    volatile uint32_t *p = map(phys, size);
    size_t words = size / 4;
    uint32_t sum = 0;
    double t0, t1;

    if (!p || !words) {
        fprintf(stderr, "lab-bench: cannot map %s\n", name);
        return 1;
    }
    t0 = now_ns();
    for (long i = 0; i < count; i++) {
        p[i % words] = (uint32_t)i;
    }
    t1 = now_ns();
    printf("@@lab bench %s-write %.1f ns\n", name, (t1 - t0) / count);
    t0 = now_ns();
    for (long i = 0; i < count; i++) {
        sum += p[i % words];
    }
    t1 = now_ns();
    printf("@@lab bench %s-read %.1f ns\n", name, (t1 - t0) / count);
    return sum == 0xdeadbeef;   /* keep the reads */
}

static int bench_xfer(const char *dev, unsigned long size, long count)
{
    struct pci_endpoint_test_xfer_param param = { .size = size };
    static const struct { const char *name; unsigned long cmd; } ops[] = {
        /* PCITEST_READ: the host reads what the EP wrote, and back */
        { "window-write", PCITEST_READ }, { "window-read", PCITEST_WRITE },
    };
    int fd = open(dev, O_RDWR);

    if (fd < 0) {
        perror(dev);
        return 1;
    }
    if (ioctl(fd, PCITEST_SET_IRQTYPE, PCITEST_IRQ_TYPE_MSI) < 0) {
        perror("PCITEST_SET_IRQTYPE");
        return 1;
    }
    for (int op = 0; op < 2; op++) {
        double t0 = now_ns();

        for (long i = 0; i < count; i++) {
            if (ioctl(fd, ops[op].cmd, &param) < 0) {
                fprintf(stderr, "lab-bench: %s of %lu bytes failed\n",
                        ops[op].name, size);
                return 1;
            }
        }
        printf("@@lab bench %s %.2f MiB/s\n", ops[op].name,
               (double)size * count / (1 << 20) / ((now_ns() - t0) / 1e9));
    }
    close(fd);
    return 0;
}

/*
 * Before 6.15 the driver's ioctls return a bool (1: it worked); since,
 * 0 or a negative errno.  A 1 from SET_IRQTYPE tells them apart.
 */
static int old_abi = -1;

static int ioctl_ok(int ret)
{
    return old_abi ? ret == 1 : ret == 0;
}

static int bench_load(const char *dev, const char *kind, const char *irq,
                      long count, unsigned long size)
{
    int msix = !strcmp(irq, "msix");
    int type = msix ? PCITEST_IRQ_TYPE_MSIX : PCITEST_IRQ_TYPE_MSI;
    struct pci_endpoint_test_xfer_param param = {
        .size = size, .flags = !strcmp(kind, "dma") ? PCITEST_FLAGS_USE_DMA : 0,
    };
    long ok = 0, failed = 0;
    int fd = open(dev, O_RDWR), ret;

    if (fd < 0) {
        perror(dev);
        return 1;
    }
    ret = ioctl(fd, PCITEST_SET_IRQTYPE, type);
    if (ret < 0) {
        perror("PCITEST_SET_IRQTYPE");
        return 1;
    }
    old_abi = ret == 1;
    for (long i = 0; i < count; i++) {
        if (!strcmp(kind, "irq")) {
            ret = ioctl(fd, msix ? PCITEST_MSIX : PCITEST_MSI, 1);
            ioctl_ok(ret) ? ok++ : failed++;
            continue;
        }
        ret = ioctl(fd, PCITEST_READ, &param);
        ioctl_ok(ret) ? ok++ : failed++;
        ret = ioctl(fd, PCITEST_WRITE, &param);
        ioctl_ok(ret) ? ok++ : failed++;
    }
    printf("@@lab load %s-%s %ld %ld\n", kind, irq, ok, failed);
    close(fd);
    return 0;
}


#define TCP_CHUNK   (64 * 1024)

static void on_alarm(int sig)
{
    (void)sig;  /* only interrupts the blocking call */
}

static int tcp_recv(int port, const char *name, long mib, int timeout)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons(port) };
    static char buf[TCP_CHUNK];
    long long bytes = 0, want = (long long)mib << 20;
    double t0 = 0, t1;
    int one = 1, ls, fd;
    ssize_t n;

    sigaction(SIGALRM, &(struct sigaction){ .sa_handler = on_alarm }, NULL);
    alarm(timeout);
    ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 1)) {
        printf("@@lab fail %s cannot listen on port %d: %s\n", name, port,
               strerror(errno));
        return 1;
    }
    fd = accept(ls, NULL, NULL);
    if (fd < 0) {
        printf("@@lab fail %s no connection on port %d in %d s\n", name, port,
               timeout);
        return 1;
    }
    t0 = now_ns();
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (!bytes) {
            t0 = now_ns();
        }
        bytes += n;
    }
    t1 = now_ns();
    alarm(0);
    close(fd);
    close(ls);
    if (n < 0 || bytes != want) {
        printf("@@lab fail %s %lld of %lld bytes in %.3f s%s%s\n", name, bytes,
               want, (t1 - t0) / 1e9, n < 0 ? ": " : "",
               n < 0 ? strerror(errno) : "");
        return 1;
    }
    if (want) {
        printf("@@lab ok %s %lld bytes in %.3f s: %.1f MiB/s\n", name, bytes,
               (t1 - t0) / 1e9,
               bytes / 1048576.0 / ((t1 - t0 > 1e3 ? t1 - t0 : 1e3) / 1e9));
    }
    return 0;
}

static int tcp_send(const char *addr, int port, long mib, int timeout)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_port = htons(port) };
    static char buf[TCP_CHUNK];
    long long left = (long long)mib << 20;
    int fd = -1;

    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "lab-bench: bad address %s\n", addr);
        return 2;
    }
    /* Everything below gives up at the alarm: a peer may be dead */
    sigaction(SIGALRM, &(struct sigaction){ .sa_handler = on_alarm }, NULL);
    alarm(timeout);
    for (;;) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
            break;
        }
        close(fd);
        fd = -1;
        if (errno == EINTR || usleep(200 * 1000)) {
            printf("@@lab fail tcp-send nothing listens on %s:%d in %d s\n",
                   addr, port, timeout);
            return 1;
        }
    }
    memset(buf, 0x5a, sizeof(buf));
    while (left > 0) {
        ssize_t n = write(fd, buf, left < TCP_CHUNK ? left : TCP_CHUNK);

        if (n <= 0) {
            printf("@@lab fail tcp-send write to %s:%d: %s\n", addr, port,
                   strerror(errno));
            return 1;
        }
        left -= n;
    }
    /* The receiver's close says everything has arrived */
    shutdown(fd, SHUT_WR);
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    alarm(0);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "access")) {
        return bench_access(argv[2], strtoul(argv[3], NULL, 0),
                            strtoul(argv[4], NULL, 0), atol(argv[5]));
    }
    if (argc == 5 && !strcmp(argv[1], "xfer")) {
        return bench_xfer(argv[2], strtoul(argv[3], NULL, 0), atol(argv[4]));
    }
    if (argc == 7 && !strcmp(argv[1], "load")) {
        return bench_load(argv[2], argv[3], argv[4], atol(argv[5]),
                          strtoul(argv[6], NULL, 0));
    }
    if (argc == 6 && !strcmp(argv[1], "tcp-recv")) {
        return tcp_recv(atoi(argv[2]), argv[3], atol(argv[4]), atoi(argv[5]));
    }
    if (argc == 6 && !strcmp(argv[1], "tcp-send")) {
        return tcp_send(argv[2], atoi(argv[3]), atol(argv[4]), atoi(argv[5]));
    }
    fprintf(stderr, "usage: lab-bench access NAME PHYS SIZE COUNT\n"
                    "       lab-bench xfer DEV SIZE COUNT\n"
                    "       lab-bench load DEV irq|dma|memcpy msi|msix "
                    "COUNT SIZE\n"
                    "       lab-bench tcp-recv PORT NAME MIB TIMEOUT\n"
                    "       lab-bench tcp-send ADDR PORT MIB TIMEOUT\n");
    return 2;
}
