/*
 * The host side of the endpoint link
 *
 * dw-pcie-ep-link (a device without a bus) holds the host's end of the
 * link to a dw-pcie-ep controller in another QEMU.  When the endpoint's
 * link comes up it hot-plugs a dw-pcie-ep-function into a PCIe slot,
 * with the BARs the endpoint's DBI2 masks describe; when the link goes
 * down it asks the guest to remove it.  The function forwards its
 * configuration space and BARs to the endpoint, and runs the endpoint's
 * memory requests (outbound window, MSI and MSI-X writes) on its own
 * bus-master address space with its requester ID.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCI_EP_DW_PCIE_EP_HOST_H
#define HW_PCI_EP_DW_PCIE_EP_HOST_H

#include "hw/pci/pci_device.h"
#include "qom/object.h"
#include "hw/pci-ep/pcie-ep-link.h"
#include "hw/pci-ep/pcie-ep-fastpath.h"

#define TYPE_DW_PCIE_EP_LINK "dw-pcie-ep-link"
OBJECT_DECLARE_SIMPLE_TYPE(DWPCIeEPLinkPort, DW_PCIE_EP_LINK)

#define TYPE_DW_PCIE_EP_FUNCTION "dw-pcie-ep-function"
OBJECT_DECLARE_SIMPLE_TYPE(DWPCIeEPFunction, DW_PCIE_EP_FUNCTION)

typedef struct DWPCIeEPFunctionBar {
    DWPCIeEPFunction *fn;
    int index;
    MemoryRegion mr;        /* what the host maps: io, fast maps above */
    MemoryRegion io;        /* by message to the endpoint */
    PCIeEPFastWindow fast;
} DWPCIeEPFunctionBar;

/* The endpoint's config space as its CFG_IMAGE messages sent it */
typedef struct DWPCIeEPImage {
    uint8_t config[PCIE_EP_LINK_IMAGE_SIZE];
    uint8_t wmask[PCIE_EP_LINK_IMAGE_SIZE];
    uint8_t w1cmask[PCIE_EP_LINK_IMAGE_SIZE];
} DWPCIeEPImage;

struct DWPCIeEPFunction {
    PCIDevice parent_obj;

    DWPCIeEPLinkPort *port;
    bool down;              /* the link went down: all ones from now on */
    bool powered;           /* its slot's power at its last reset */
    PCIeEPLinkUp bars;      /* as the endpoint sent them at link-up */
    DWPCIeEPFunctionBar bar[PCI_NUM_REGIONS - 1];
    /*
     * Per dword: we wrote it and the EP has not yet shown us it has seen
     * that (pending), and the port's count of config writes after it.
     */
    bool pending[PCIE_EP_LINK_IMAGE_SIZE / 4];
    uint16_t written[PCIE_EP_LINK_IMAGE_SIZE / 4];
};

struct DWPCIeEPLinkPort {
    DeviceState parent_obj;

    PCIeEPLink link;
    char *port;

    /* The function in the slot, if any; the slot follows the link. */
    DWPCIeEPFunction *function;
    bool unplug_requested;
    bool link_up;
    PCIeEPLinkUp up;
    QEMUTimer *sync_timer;
    DWPCIeEPImage image;
    uint16_t image_seen;    /* config writes the last image had seen */
    uint16_t cfg_writes;    /* config writes sent, this connection */
};

#endif
