/*
 * Synopsys DesignWare PCIe controller in endpoint mode: what the device
 * (dw-pcie-ep.c) and its configuration space (dw-pcie-ep-config.c) share
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCI_EP_DW_PCIE_EP_INTERNAL_H
#define HW_PCI_EP_DW_PCIE_EP_INTERNAL_H

#include "hw/pci-ep/dw-pcie-ep.h"
#include "hw/pci-ep/pcie-ep-fastpath.h"

/* The viewport reads as all ones when the iATU is unrolled. */
#define DW_PCIE_EP_ATU_UNROLLED  0xffffffffu
/* VERSION_NUMBER of IP 5.40a: from it on, Linux takes the eDMA unrolled */
#define DW_PCIE_EP_VER_540A      0x3534302au

/* dw-pcie-ep-config.c: layout, reset and link status */
bool dw_pcie_ep_parse_ip_version(const char *str, uint32_t *val);
void dw_pcie_ep_init_config(DWPCIeEPState *s);
void dw_pcie_ep_update_link_status(DWPCIeEPState *s);
void dw_pcie_ep_reset_non_sticky(DWPCIeEPState *s);

/* dw-pcie-ep-config.c: BAR registers and decode */
bool dw_pcie_ep_is_bar_reg(hwaddr addr);
bool dw_pcie_ep_bar_is_64bit(DWPCIeEPState *s, int bar);
uint32_t dw_pcie_ep_bar_writable_bits(DWPCIeEPState *s, int bar);
uint32_t dw_pcie_ep_bar_mask_write(DWPCIeEPState *s, int bar, uint32_t val);
bool dw_pcie_ep_bar_is_upper_half(DWPCIeEPState *s, int bar);
bool dw_pcie_ep_derive_bar_masks(DWPCIeEPState *s);
bool dw_pcie_ep_bar_decode(DWPCIeEPState *s, uint64_t pci_addr,
                           DWiATUBarHit *hit);

/* dw-pcie-ep-config.c: accesses, from the local CPU or (!local) the host */
uint32_t dw_pcie_ep_config_read(DWPCIeEPState *s, hwaddr addr,
                                unsigned size);
void dw_pcie_ep_config_write(DWPCIeEPState *s, hwaddr addr, uint32_t val,
                             unsigned size, bool local);

/* dw-pcie-ep-config.c: the host's copy (CFG_IMAGE) */
void dw_pcie_ep_host_image_sync(DWPCIeEPState *s, bool all);
void dw_pcie_ep_host_image_confirm(DWPCIeEPState *s, hwaddr addr,
                                   unsigned size);

/* dw-pcie-ep.c: what a change of the configuration space sets off */
void dw_pcie_ep_link_state_changed(DWPCIeEPState *s);
void dw_pcie_ep_inbound_changed(DWPCIeEPState *s, bool can_wait);
void dw_pcie_ep_bars_changed(DWPCIeEPState *s);

/* dw-pcie-ep-iommu.c: the bus-master side behind an SMMU */
bool dw_pcie_ep_iommu_realize(DWPCIeEPState *s, Error **errp);
void dw_pcie_ep_iommu_unrealize(DWPCIeEPState *s);
/*
 * A hold of the SMMU's CMD_SYNC ends if its revoke is settled: call when
 * the link goes up or down, and before a MAP_RD (the IOThread may have
 * seen the confirmation before the bottom half that reports it ran)
 */
void dw_pcie_ep_iommu_hold_check(DWPCIeEPState *s);
uint64_t dw_pcie_ep_iommu_add_extent(DWPCIeEPState *s, hwaddr iova,
                                     uint64_t size, uint64_t offset,
                                     PCIeEPExtents *ext);

/* dw-pcie-ep-bridge.c: posted writes and the iATU-update hazard */
void dw_pcie_ep_bridge_class_init(ObjectClass *oc);
void dw_pcie_ep_bridge_instance_init(Object *obj);
void dw_pcie_ep_bridge_init(DWPCIeEPState *s);
void dw_pcie_ep_bridge_cleanup(DWPCIeEPState *s);
void dw_pcie_ep_bridge_reset(DWPCIeEPState *s);
/* Before an iATU region register write takes effect */
void dw_pcie_ep_iatu_hazard_check(DWPCIeEPState *s, DWiATUDir dir,
                                  unsigned index, hwaddr reg);

/* dw-pcie-ep.c: a write out of the bridge, to its PCI address */
void dw_pcie_ep_window_send(DWPCIeEPState *s, uint64_t pci_addr,
                            const uint8_t *buf, unsigned len);

#endif
