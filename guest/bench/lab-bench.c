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
 *
 * Copyright (c) 2026 The pciep-lab authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* From the kernel's uapi <linux/pcitest.h>, a stable ABI */
#define PCITEST_WRITE           _IOW('P', 0x4, unsigned long)
#define PCITEST_READ            _IOW('P', 0x5, unsigned long)
#define PCITEST_SET_IRQTYPE     _IOW('P', 0x8, int)
#define PCITEST_IRQ_TYPE_MSI    1

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

int main(int argc, char **argv)
{
    if (argc == 6 && !strcmp(argv[1], "access")) {
        return bench_access(argv[2], strtoul(argv[3], NULL, 0),
                            strtoul(argv[4], NULL, 0), atol(argv[5]));
    }
    if (argc == 5 && !strcmp(argv[1], "xfer")) {
        return bench_xfer(argv[2], strtoul(argv[3], NULL, 0), atol(argv[4]));
    }
    fprintf(stderr, "usage: lab-bench access NAME PHYS SIZE COUNT\n"
                    "       lab-bench xfer DEV SIZE COUNT\n");
    return 2;
}
