/*
 * What the dw-pcie-ep qtests share: the CPU count and QOM counters
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef DW_PCIE_EP_COMMON_H
#define DW_PCIE_EP_COMMON_H

#include "libqtest.h"
#include "qobject/qdict.h"

/* "-smp N" when scripts/lab runs the test with N CPUs per QEMU */
static inline char *smp_args(void)
{
    const char *n = g_getenv("DW_PCIE_EP_QTEST_SMP");

    return g_strdup_printf("-smp %s", n ? n : "1");
}

static inline uint64_t qom_get_uint(QTestState *qts, const char *path,
                                    const char *prop)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'qom-get', 'arguments': "
                           "{ 'path': %s, 'property': %s } }", path, prop);
    uint64_t v = qdict_get_int(rsp, "return");

    qobject_unref(rsp);
    return v;
}

/* A counter of the controller with id "ep" */
static inline uint64_t ep_counter(QTestState *qts, const char *prop)
{
    return qom_get_uint(qts, "/machine/peripheral/ep", prop);
}

#endif
