/*
 * DesignWare PCIe endpoint: DBI register map
 *
 * The layout of the function's configuration space (the capability
 * offsets are the model's choice) and the port logic registers, with
 * the offsets Linux uses (drivers/pci/controller/dwc/pcie-designware.h).
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCI_EP_DW_PCIE_EP_REGS_H
#define HW_PCI_EP_DW_PCIE_EP_REGS_H

#include "hw/registerfields.h"

/* Capabilities in the standard list, in this order */
#define DW_PCIE_EP_PM_CAP       0x40
#define DW_PCIE_EP_MSI_CAP      0x50
#define DW_PCIE_EP_PCIE_CAP     0x70
#define DW_PCIE_EP_MSIX_CAP     0xb0
/* Extended capabilities */
#define DW_PCIE_EP_PTM_CAP      0x100
#define DW_PCIE_EP_REBAR_CAP    0x110   /* with resizable BARs only */

#define DW_PCIE_EP_NUM_BARS     6

/* Resizable BAR Control (PCIe 6.0 7.8.6.3; pci_regs.h has 5 size bits) */
FIELD(REBAR_CTRL, BAR_IDX, 0, 3)
FIELD(REBAR_CTRL, NBAR, 5, 3)
FIELD(REBAR_CTRL, BAR_SIZE, 8, 6)
FIELD(REBAR_CTRL, SIZES, 16, 16)

/* PCIe capability: Link Capabilities' width (not a field of pcie_regs.h) */
FIELD(LNKCAP, MLW, 4, 6)

/* Port logic */
REG32(PORT_ACK_LATENCY, 0x700)
REG32(PORT_VENDOR_DLLP, 0x704)
REG32(PORT_FORCE, 0x708)
REG32(PORT_AFR, 0x70c)
    FIELD(PORT_AFR, ACK_FREQ, 0, 8)
    FIELD(PORT_AFR, N_FTS, 8, 8)
    FIELD(PORT_AFR, CC_N_FTS, 16, 8)
    FIELD(PORT_AFR, L0S_ENTRANCE_LAT, 24, 3)
    FIELD(PORT_AFR, L1_ENTRANCE_LAT, 27, 3)
REG32(PORT_LINK_CONTROL, 0x710)
    FIELD(PORT_LINK_CONTROL, LOW, 0, 8)     /* bits 7:0, all writable */
    FIELD(PORT_LINK_CONTROL, LOOPBACK_ENABLE, 2, 1)
    FIELD(PORT_LINK_CONTROL, DLL_LINK_EN, 5, 1)
    FIELD(PORT_LINK_CONTROL, FAST_LINK_MODE, 7, 1)
    FIELD(PORT_LINK_CONTROL, LINK_MODE, 16, 6)
REG32(PORT_LANE_SKEW, 0x714)
REG32(PORT_TIMER_CTRL, 0x718)
REG32(PORT_SYMBOL_TIMER, 0x71c)
REG32(PORT_DEBUG0, 0x728)
    FIELD(PORT_DEBUG0, LTSSM, 0, 6)
REG32(PORT_DEBUG1, 0x72c)
    FIELD(PORT_DEBUG1, LINK_UP, 4, 1)
    FIELD(PORT_DEBUG1, LINK_IN_TRAINING, 29, 1)
REG32(LINK_WIDTH_SPEED_CONTROL, 0x80c)
    FIELD(LINK_WIDTH_SPEED_CONTROL, N_FTS, 0, 8)
    FIELD(LINK_WIDTH_SPEED_CONTROL, NUM_LANES, 8, 5)
    FIELD(LINK_WIDTH_SPEED_CONTROL, AUTO_LANE_FLIP, 16, 1)
    FIELD(LINK_WIDTH_SPEED_CONTROL, SPEED_CHANGE, 17, 1)
    FIELD(LINK_WIDTH_SPEED_CONTROL, TX_SWING, 18, 1)
    FIELD(LINK_WIDTH_SPEED_CONTROL, DEEMPHASIS, 19, 1)
REG32(PIPE_LOOPBACK_CONTROL, 0x8b8)
    FIELD(PIPE_LOOPBACK_CONTROL, PIPE_LOOPBACK, 31, 1)
REG32(MISC_CONTROL_1, 0x8bc)
    FIELD(MISC_CONTROL_1, DBI_RO_WR_EN, 0, 1)
REG32(VERSION_NUMBER, 0x8f8)
REG32(VERSION_TYPE, 0x8fc)
REG32(ATU_VIEWPORT, 0x900)
    FIELD(ATU_VIEWPORT, INDEX, 0, 8)
    FIELD(ATU_VIEWPORT, INBOUND, 31, 1)
/* The selected region's registers follow the viewport register. */
#define DW_PCIE_EP_VIEWPORT_REGS    0x904
#define DW_PCIE_EP_VIEWPORT_END     0x928
REG32(DMA_VIEWPORT_CTRL, 0x978)
REG32(PL_CHK_REG_CONTROL_STATUS, 0xb20)
    FIELD(PL_CHK_REG_CONTROL_STATUS, CHK_REG_START, 0, 1)
    FIELD(PL_CHK_REG_CONTROL_STATUS, CHK_REG_CONTINUOUS, 1, 1)

/* The bits of the port logic registers that the local CPU may write */
#define DW_PCIE_EP_PORT_FORCE_RW    MAKE_64BIT_MASK(0, 24)  /* 23:0 */
#define DW_PCIE_EP_PORT_AFR_RW \
    (R_PORT_AFR_ACK_FREQ_MASK | R_PORT_AFR_N_FTS_MASK | \
     R_PORT_AFR_CC_N_FTS_MASK | R_PORT_AFR_L0S_ENTRANCE_LAT_MASK | \
     R_PORT_AFR_L1_ENTRANCE_LAT_MASK)
#define DW_PCIE_EP_PORT_LINK_CONTROL_RW \
    (R_PORT_LINK_CONTROL_LOW_MASK | R_PORT_LINK_CONTROL_LINK_MODE_MASK)
#define DW_PCIE_EP_LINK_WIDTH_SPEED_CONTROL_RW \
    (R_LINK_WIDTH_SPEED_CONTROL_N_FTS_MASK | \
     R_LINK_WIDTH_SPEED_CONTROL_NUM_LANES_MASK | \
     R_LINK_WIDTH_SPEED_CONTROL_AUTO_LANE_FLIP_MASK | \
     R_LINK_WIDTH_SPEED_CONTROL_SPEED_CHANGE_MASK | \
     R_LINK_WIDTH_SPEED_CONTROL_TX_SWING_MASK | \
     R_LINK_WIDTH_SPEED_CONTROL_DEEMPHASIS_MASK)
#define DW_PCIE_EP_PL_CHK_REG_CONTROL_RW \
    (R_PL_CHK_REG_CONTROL_STATUS_CHK_REG_START_MASK | \
     R_PL_CHK_REG_CONTROL_STATUS_CHK_REG_CONTINUOUS_MASK)

/* PORT_DEBUG0.LTSSM states the model reports */
#define DW_LTSSM_DETECT_QUIET   0x00
#define DW_LTSSM_L0             0x11
#define DW_LTSSM_LPBK_ACTIVE    0x1b
#define DW_LTSSM_HOT_RESET      0x1f

/*
 * ELBI: the SoC glue's registers.  Real glues hold an LTSSM enable that
 * their start_link() sets; the generic platform driver has none, so the
 * model's is set by whoever starts the link (the lab's EP script), or
 * at reset with ltssm-enable=on.
 */
REG32(APP_LTSSM_CONTROL, 0x0)
    FIELD(APP_LTSSM_CONTROL, LTSSM_ENABLE, 0, 1)
REG32(APP_LINK_STATUS, 0x4)
    FIELD(APP_LINK_STATUS, LINK_UP, 0, 1)

/* DBI2: the BAR masks behind the BAR registers */
#define DW_PCIE_EP_DBI2_BAR0        0x10
#define DW_PCIE_EP_DBI2_ROM         0x30
#define DW_PCIE_EP_BAR_MASK_ENABLE  0x1

#endif
