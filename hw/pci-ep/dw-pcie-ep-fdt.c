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
#include "qemu/error-report.h"
#include "system/device_tree.h"
#include "hw/arm/fdt.h"
#include "hw/pci-ep/dw-pcie-ep.h"
#include "hw/pci-ep/dw-pcie-ep-fdt.h"

static const char *const dw_pcie_ep_reg_names[DW_PCIE_EP_MMIO_COUNT] = {
    [DW_PCIE_EP_MMIO_DBI] = "dbi",
    [DW_PCIE_EP_MMIO_DBI2] = "dbi2",
    [DW_PCIE_EP_MMIO_ATU] = "atu",
    [DW_PCIE_EP_MMIO_ADDR_SPACE] = "addr_space",
    [DW_PCIE_EP_MMIO_DMA] = "dma",
};

/* The reg-name of sysbus MMIO region @i: the core's, then the glue's */
static const char *reg_name(DWPCIeEPClass *dc, int i)
{
    if (i == DW_PCIE_EP_MMIO_ELBI) {
        return dc->glue.name;
    }
    if (i >= DW_PCIE_EP_MMIO_COUNT) {
        return dc->extra_regions[i - DW_PCIE_EP_MMIO_COUNT].name;
    }
    return dw_pcie_ep_reg_names[i];
}

static void set_compatible(DWPCIeEPClass *dc, void *fdt, const char *node)
{
    unsigned n = 0;

    while (dc->compatible[n]) {
        n++;
    }
    qemu_fdt_setprop_string_array(fdt, node, "compatible",
                                  (char **)dc->compatible, n);
}

/* The eDMA's lines, named as Linux looks them up: "dma" or "dma0".."dmaN" */
static void add_edma_interrupts(SysBusDevice *sbdev, void *fdt,
                                const char *node, PlatformBusDevice *pbus,
                                int irq_start)
{
    DWPCIeEPState *s = DW_PCIE_EP(sbdev);
    unsigned n = dw_edma_num_irqs(&s->edma);
    g_autofree uint32_t *cells = g_new(uint32_t, 3 * n);
    g_autofree char **names = g_new0(char *, n + 1);

    for (unsigned i = 0; i < n; i++) {
        cells[3 * i] = cpu_to_be32(GIC_FDT_IRQ_TYPE_SPI);
        cells[3 * i + 1] = cpu_to_be32(irq_start +
                                       platform_bus_get_irqn(pbus, sbdev, i));
        cells[3 * i + 2] = cpu_to_be32(GIC_FDT_IRQ_FLAGS_LEVEL_HI);
        names[i] = dw_edma_irq_name(&s->edma, i);
    }
    qemu_fdt_setprop(fdt, node, "interrupts", cells, 3 * n * sizeof(*cells));
    qemu_fdt_setprop_string_array(fdt, node, "interrupt-names", names, n);
    for (unsigned i = 0; i < n; i++) {
        g_free(names[i]);
    }
}

/*
 * Where inbound writes reach the GIC ITS (its-doorbell), the ITS is the
 * controller's MSI controller, with its requester-id as the DeviceID:
 * Linux's pci-ep-msi then gives the EP function platform MSIs for its
 * doorbells.  Linux 7.2 wants both forms: pci-ep-msi finds the domain
 * through msi-map (of_msi_map_get_device_domain() with ID 0 takes no
 * msi-parent with a DeviceID cell), and the ITS's platform-MSI code
 * takes the DeviceID from msi-parent (of_pmsi_get_msi_info()).
 */
static void add_msi_parent(DWPCIeEPState *s, void *fdt, const char *node)
{
    g_auto(GStrv) its = NULL;
    uint32_t phandle;

    if (!s->its_doorbell) {
        return;
    }
    its = qemu_fdt_node_path(fdt, NULL, "arm,gic-v3-its", NULL);
    if (!its || !its[0]) {
        return;             /* no ITS (GICv2): no MSI parent */
    }
    phandle = qemu_fdt_get_phandle(fdt, its[0]);
    if (phandle) {
        qemu_fdt_setprop_cells(fdt, node, "msi-map", 0, phandle,
                               s->requester_id, 1);
        qemu_fdt_setprop_cells(fdt, node, "msi-parent", phandle,
                               s->requester_id);
    }
}

/* Where @smmu's registers are: on the platform bus, or mapped by the board */
static hwaddr smmu_base(SysBusDevice *smmu, PlatformBusDevice *pbus,
                        hwaddr bus_base)
{
    hwaddr off = platform_bus_get_mmio_addr(pbus, smmu, 0);

    return off != (hwaddr)-1 ? bus_base + off : smmu->mmio[0].addr;
}

/*
 * Behind an SMMU: "iommus" with our StreamID, on the SMMU's node, which
 * is the arm,smmu-v3 node whose registers are the linked SMMU's.
 */
static void add_iommus(DWPCIeEPState *s, void *fdt, const char *node,
                       PlatformBusDevice *pbus, hwaddr bus_base)
{
    hwaddr base;
    g_auto(GStrv) smmus = NULL;

    if (!s->iommu) {
        return;
    }
    base = smmu_base(SYS_BUS_DEVICE(s->iommu), pbus, bus_base);
    smmus = qemu_fdt_node_path(fdt, NULL, "arm,smmu-v3", NULL);
    for (int i = 0; smmus && smmus[i]; i++) {
        int len;
        const void *reg = qemu_fdt_getprop(fdt, smmus[i], "reg", &len, NULL);
        uint32_t phandle;

        if (!reg || len < sizeof(uint64_t) || ldq_be_p(reg) != base) {
            continue;
        }
        phandle = qemu_fdt_get_phandle(fdt, smmus[i]);
        if (!phandle) {
            phandle = qemu_fdt_alloc_phandle(fdt);
            qemu_fdt_setprop_cell(fdt, smmus[i], "phandle", phandle);
        }
        qemu_fdt_setprop_cells(fdt, node, "iommus", phandle, s->sid);
        return;
    }
    warn_report("%s: no device tree node for its SMMU at 0x%" HWADDR_PRIx
                ": the guest will not see that it is behind an SMMU",
                TYPE_DW_PCIE_EP, base);
}

void dw_pcie_ep_add_fdt_node(SysBusDevice *sbdev, void *fdt,
                             const char *parent, PlatformBusDevice *pbus,
                             hwaddr bus_base, int irq_start)
{
    DWPCIeEPState *s = DW_PCIE_EP(sbdev);
    DWPCIeEPClass *dc = DW_PCIE_EP_GET_CLASS(s);
    /* The root node has two address cells and two size cells. */
    g_autofree uint64_t *reg = g_new(uint64_t, sbdev->num_mmio * 2);
    g_autofree const char **names = g_new(const char *, sbdev->num_mmio);
    const uint8_t max_functions = 1;
    int n = 0;
    char *node;

    for (int i = 0; i < sbdev->num_mmio; i++) {
        MemoryRegion *mr;

        /* With the legacy viewports, Linux finds them in DBI. */
        if ((i == DW_PCIE_EP_MMIO_ATU && s->atu_viewport_mode) ||
            (i == DW_PCIE_EP_MMIO_DMA && s->edma.legacy)) {
            continue;
        }
        mr = sysbus_mmio_get_region(sbdev, i);
        reg[2 * n] = cpu_to_be64(bus_base +
                                 platform_bus_get_mmio_addr(pbus, sbdev, i));
        reg[2 * n + 1] = cpu_to_be64(memory_region_size(mr));
        names[n++] = reg_name(dc, i);
    }

    node = g_strdup_printf("/pcie-ep@%" PRIx64, be64_to_cpu(reg[0]));
    qemu_fdt_add_subnode(fdt, node);
    set_compatible(dc, fdt, node);
    qemu_fdt_setprop(fdt, node, "reg", reg, n * 2 * sizeof(reg[0]));
    qemu_fdt_setprop_string_array(fdt, node, "reg-names", (char **)names, n);
    qemu_fdt_setprop(fdt, node, "max-functions", &max_functions,
                     sizeof(max_functions));
    qemu_fdt_setprop(fdt, node, "dma-coherent", NULL, 0);
    add_edma_interrupts(sbdev, fdt, node, pbus, irq_start);
    add_msi_parent(s, fdt, node);
    add_iommus(s, fdt, node, pbus, bus_base);
    g_free(node);
}
