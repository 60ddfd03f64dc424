/*
 * Device tree node of the DesignWare PCIe endpoint controller
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCI_EP_DW_PCIE_EP_FDT_H
#define HW_PCI_EP_DW_PCIE_EP_FDT_H

#include "hw/platform-bus.h"

/*
 * Add the "snps,dw-pcie-ep" node of @sbdev, from where the platform bus
 * at @bus_base placed its MMIO regions.
 */
void dw_pcie_ep_add_fdt_node(SysBusDevice *sbdev, void *fdt,
                             const char *parent, PlatformBusDevice *pbus,
                             hwaddr bus_base, int irq_start);

#endif
