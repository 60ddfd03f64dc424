/*
 * Renesas R-Car Gen4 (S4, r8a779f0) PCIe controller in endpoint mode:
 * the DesignWare core of dw-pcie-ep.c with Renesas' glue around it
 *
 * What Linux's pcie-rcar-gen4 driver needs beyond the core:
 *  - "app", the glue's registers: the mode (PCIEMSR0), the LTSSM enable
 *    (PCIERSTCTRL1), the link status (PCIEINTSTS0), interrupt enables;
 *  - "phy", which the driver maps; on the S4 it programs nothing there;
 *  - the BARs R-Car's controller was built with (its pci_epc_features):
 *    BAR0 and BAR2 resizable, BAR4 fixed at 256 bytes.  The fixed BAR
 *    is what lets Linux put a doorbell BAR over the eDMA's registers
 *    with its 4 KiB alignment (see docs/design.md, "vNTB").
 *
 * The rest (DBI, DBI2, iATU, eDMA, the link) is the core's.  Register
 * names and bits are those of the driver (pcie-rcar-gen4.c); the
 * datasheet is not public.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/units.h"
#include "hw/registerfields.h"
#include "migration/vmstate.h"
#include "hw/pci-ep/dw-pcie-ep.h"
#include "trace.h"

#define TYPE_RCAR_GEN4_PCIE_EP "rcar-gen4-pcie-ep"
OBJECT_DECLARE_SIMPLE_TYPE(RCarGen4PCIeEPState, RCAR_GEN4_PCIE_EP)

#define RCAR_APP_SIZE   0x1000
#define RCAR_PHY_SIZE   0x1000

REG32(PCIEMSR0, 0x0000)
REG32(PCIERSTCTRL1, 0x0014)
    FIELD(PCIERSTCTRL1, APP_LTSSM_ENABLE, 0, 1)
    FIELD(PCIERSTCTRL1, APP_HOLD_PHY_RST, 16, 1)
REG32(PCIEPWRMNGCTRL, 0x0070)
REG32(PCIEINTSTS0, 0x0084)
    FIELD(PCIEINTSTS0, RDLH_LINK_UP, 6, 1)
    FIELD(PCIEINTSTS0, SMLH_LINK_UP, 7, 1)
REG32(PCIEINTSTS0EN, 0x0310)
REG32(PCIEDMAINTSTSEN, 0x0314)

struct RCarGen4PCIeEPState {
    DWPCIeEPState parent_obj;

    /*
     * Kept as written.  PCIEDMAINTSTSEN does not gate the eDMA's lines
     * here: they reach the GIC as the core raises them (Linux sets all
     * of it before it uses the eDMA, and clears it only at removal).
     */
    uint32_t msr0;
    uint32_t rstctrl1;          /* APP_LTSSM_ENABLE is the core's */
    uint32_t pwrmngctrl;
    uint32_t intsts0en;
    uint32_t dmaintstsen;
};

static uint32_t *app_reg(RCarGen4PCIeEPState *r, hwaddr addr)
{
    switch (addr) {
    case A_PCIEMSR0:
        return &r->msr0;
    case A_PCIERSTCTRL1:
        return &r->rstctrl1;
    case A_PCIEPWRMNGCTRL:
        return &r->pwrmngctrl;
    case A_PCIEINTSTS0EN:
        return &r->intsts0en;
    case A_PCIEDMAINTSTSEN:
        return &r->dmaintstsen;
    default:
        return NULL;
    }
}

static uint64_t app_read(void *opaque, hwaddr addr, unsigned size)
{
    RCarGen4PCIeEPState *r = RCAR_GEN4_PCIE_EP(opaque);
    DWPCIeEPState *s = &r->parent_obj;
    uint32_t *reg = app_reg(r, addr);
    uint32_t val = reg ? *reg : 0;

    switch (addr) {
    case A_PCIERSTCTRL1:
        val = FIELD_DP32(val, PCIERSTCTRL1, APP_LTSSM_ENABLE, s->ltssm_enable);
        break;
    case A_PCIEINTSTS0:
        val = dw_pcie_ep_link_is_up(s) ? R_PCIEINTSTS0_RDLH_LINK_UP_MASK |
                                         R_PCIEINTSTS0_SMLH_LINK_UP_MASK : 0;
        break;
    default:
        if (!reg) {
            qemu_log_mask(LOG_UNIMP, "%s: app register 0x%" HWADDR_PRIx
                          " is not modelled\n", TYPE_RCAR_GEN4_PCIE_EP, addr);
        }
        break;
    }
    trace_rcar_gen4_pcie_ep_app_read(addr, val);
    return val;
}

static void app_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    RCarGen4PCIeEPState *r = RCAR_GEN4_PCIE_EP(opaque);
    uint32_t *reg = app_reg(r, addr);

    trace_rcar_gen4_pcie_ep_app_write(addr, val);
    if (!reg) {
        qemu_log_mask(addr == A_PCIEINTSTS0 ? LOG_GUEST_ERROR : LOG_UNIMP,
                      "%s: write to %s app register 0x%" HWADDR_PRIx "\n",
                      TYPE_RCAR_GEN4_PCIE_EP,
                      addr == A_PCIEINTSTS0 ? "the read-only" : "unmodelled",
                      addr);
        return;
    }
    *reg = val;
    if (addr == A_PCIERSTCTRL1) {
        dw_pcie_ep_set_ltssm_enable(&r->parent_obj,
                                    FIELD_EX32(val, PCIERSTCTRL1,
                                               APP_LTSSM_ENABLE));
    }
}

static const MemoryRegionOps app_ops = {
    .read = app_read,
    .write = app_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

/* The PHY's registers: the S4's driver maps them and programs none. */
static uint64_t phy_read(void *opaque, hwaddr addr, unsigned size)
{
    qemu_log_mask(LOG_UNIMP, "%s: PHY register 0x%" HWADDR_PRIx
                  " is not modelled\n", TYPE_RCAR_GEN4_PCIE_EP, addr);
    return 0;
}

static void phy_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    qemu_log_mask(LOG_UNIMP, "%s: PHY register 0x%" HWADDR_PRIx
                  " is not modelled\n", TYPE_RCAR_GEN4_PCIE_EP, addr);
}

static const MemoryRegionOps phy_ops = {
    .read = phy_read,
    .write = phy_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

static void rcar_gen4_pcie_ep_glue_reset(DWPCIeEPState *s)
{
    RCarGen4PCIeEPState *r = RCAR_GEN4_PCIE_EP(s);

    r->msr0 = 0;
    r->rstctrl1 = R_PCIERSTCTRL1_APP_HOLD_PHY_RST_MASK;
    r->pwrmngctrl = 0;
    r->intsts0en = 0;
    r->dmaintstsen = 0;
}

static const VMStateDescription vmstate_rcar_gen4_pcie_ep = {
    .name = TYPE_RCAR_GEN4_PCIE_EP,
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_STRUCT(parent_obj, RCarGen4PCIeEPState, 1,
                       vmstate_dw_pcie_ep, DWPCIeEPState),
        VMSTATE_UINT32(msr0, RCarGen4PCIeEPState),
        VMSTATE_UINT32(rstctrl1, RCarGen4PCIeEPState),
        VMSTATE_UINT32(pwrmngctrl, RCarGen4PCIeEPState),
        VMSTATE_UINT32(intsts0en, RCarGen4PCIeEPState),
        VMSTATE_UINT32(dmaintstsen, RCarGen4PCIeEPState),
        VMSTATE_END_OF_LIST()
    },
};

static const char *const rcar_gen4_pcie_ep_compatible[] = {
    "renesas,r8a779f0-pcie-ep", "renesas,rcar-gen4-pcie-ep", NULL
};

static const DWPCIeEPGlueRegion rcar_gen4_pcie_ep_extra_regions[] = {
    { .name = "phy", .ops = &phy_ops, .size = RCAR_PHY_SIZE },
    { }
};

static void rcar_gen4_pcie_ep_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    DWPCIeEPClass *epc = DW_PCIE_EP_CLASS(klass);

    dc->desc = "Renesas R-Car Gen4 (S4) PCIe controller, endpoint mode";
    dc->vmsd = &vmstate_rcar_gen4_pcie_ep;
    epc->compatible = rcar_gen4_pcie_ep_compatible;
    epc->glue = (DWPCIeEPGlueRegion) {
        .name = "app", .ops = &app_ops, .size = RCAR_APP_SIZE,
    };
    epc->extra_regions = rcar_gen4_pcie_ep_extra_regions;
    epc->glue_reset = rcar_gen4_pcie_ep_glue_reset;
    /* pcie-rcar-gen4.c: rcar_gen4_pcie_epc_features */
    epc->bar_kind[0] = DW_PCIE_EP_BAR_RESIZABLE;
    epc->bar_kind[2] = DW_PCIE_EP_BAR_RESIZABLE;
    epc->bar_kind[4] = DW_PCIE_EP_BAR_FIXED;
    epc->bar_fixed_size[4] = 256;
}

static const TypeInfo rcar_gen4_pcie_ep_types[] = {
    {
        .name = TYPE_RCAR_GEN4_PCIE_EP,
        .parent = TYPE_DW_PCIE_EP,
        .instance_size = sizeof(RCarGen4PCIeEPState),
        .class_init = rcar_gen4_pcie_ep_class_init,
    },
};

DEFINE_TYPES(rcar_gen4_pcie_ep_types)
