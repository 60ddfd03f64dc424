/*
 * Synopsys DesignWare PCIe controller in endpoint mode
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCI_EP_DW_PCIE_EP_H
#define HW_PCI_EP_DW_PCIE_EP_H

#include "hw/sysbus.h"
#include "qom/object.h"

#define TYPE_DW_PCIE_EP "dw-pcie-ep"
OBJECT_DECLARE_SIMPLE_TYPE(DWPCIeEPState, DW_PCIE_EP)

/* Sysbus MMIO indexes, in the order of the device tree's reg-names. */
enum {
    DW_PCIE_EP_MMIO_DBI,
    DW_PCIE_EP_MMIO_DBI2,
    DW_PCIE_EP_MMIO_ATU,
    DW_PCIE_EP_MMIO_ADDR_SPACE,
    DW_PCIE_EP_MMIO_COUNT,
};

#define DW_PCIE_EP_DBI_SIZE         0x1000
#define DW_PCIE_EP_DBI2_SIZE        0x1000
/* One unrolled iATU region pair (outbound + inbound) takes 512 bytes. */
#define DW_PCIE_EP_ATU_REGION_SIZE  0x200

struct DWPCIeEPState {
    SysBusDevice parent_obj;

    MemoryRegion dbi;
    MemoryRegion dbi2;
    MemoryRegion atu;
    MemoryRegion addr_space;

    /* DBI: the function's configuration space and port logic. */
    uint8_t config[DW_PCIE_EP_DBI_SIZE];
    /* Bits the local CPU may write at any time. */
    uint8_t wmask[DW_PCIE_EP_DBI_SIZE];
    /* Bits the local CPU may write only while DBI_RO_WR_EN is set. */
    uint8_t romask[DW_PCIE_EP_DBI_SIZE];

    /* Properties */
    uint16_t vendor_id;
    uint16_t device_id;
    char *ip_version;
    uint32_t num_atu_regions;
    uint64_t addr_space_size;
};

#endif
