/*
 * Device tree node of the DesignWare PCIe endpoint controller
 *
 * The node follows Linux's snps,dw-pcie-ep binding: one reg entry per
 * register space, named by reg-names, and max-functions as an 8-bit cell.
 *
 * It sits at the root of the tree with CPU addresses, not below the
 * platform bus node with bus-relative ones: the DWC driver compares the
 * untranslated "addr_space" reg with the CPU address of the window
 * (dw_pcie_parent_bus_offset()) and calls a translating "ranges" broken.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "system/device_tree.h"
#include "hw/pci-ep/dw-pcie-ep.h"
#include "hw/pci-ep/dw-pcie-ep-fdt.h"

static const char *const dw_pcie_ep_reg_names[DW_PCIE_EP_MMIO_COUNT] = {
    [DW_PCIE_EP_MMIO_DBI] = "dbi",
    [DW_PCIE_EP_MMIO_DBI2] = "dbi2",
    [DW_PCIE_EP_MMIO_ATU] = "atu",
    [DW_PCIE_EP_MMIO_ADDR_SPACE] = "addr_space",
    [DW_PCIE_EP_MMIO_ELBI] = "elbi",
};

void dw_pcie_ep_add_fdt_node(SysBusDevice *sbdev, void *fdt,
                             const char *parent, PlatformBusDevice *pbus,
                             hwaddr bus_base, int irq_start)
{
    DWPCIeEPState *s = DW_PCIE_EP(sbdev);
    /* The root node has two address cells and two size cells. */
    uint64_t reg[DW_PCIE_EP_MMIO_COUNT * 2];
    const char *names[DW_PCIE_EP_MMIO_COUNT];
    const uint8_t max_functions = 1;
    int n = 0;
    char *node;

    for (int i = 0; i < DW_PCIE_EP_MMIO_COUNT; i++) {
        MemoryRegion *mr = sysbus_mmio_get_region(sbdev, i);

        /* With the legacy viewport, Linux finds the iATU in DBI. */
        if (i == DW_PCIE_EP_MMIO_ATU && s->atu_viewport_mode) {
            continue;
        }
        reg[2 * n] = cpu_to_be64(bus_base +
                                 platform_bus_get_mmio_addr(pbus, sbdev, i));
        reg[2 * n + 1] = cpu_to_be64(memory_region_size(mr));
        names[n++] = dw_pcie_ep_reg_names[i];
    }

    node = g_strdup_printf("/pcie-ep@%" PRIx64, be64_to_cpu(reg[0]));
    qemu_fdt_add_subnode(fdt, node);
    qemu_fdt_setprop_string(fdt, node, "compatible", "snps,dw-pcie-ep");
    qemu_fdt_setprop(fdt, node, "reg", reg, n * 2 * sizeof(reg[0]));
    qemu_fdt_setprop_string_array(fdt, node, "reg-names", (char **)names, n);
    qemu_fdt_setprop(fdt, node, "max-functions", &max_functions,
                     sizeof(max_functions));
    qemu_fdt_setprop(fdt, node, "dma-coherent", NULL, 0);
    g_free(node);
}
