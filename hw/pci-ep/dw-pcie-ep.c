/*
 * Synopsys DesignWare PCIe controller in endpoint mode
 *
 * The controller's local register spaces, as the endpoint's CPU sees them:
 *  - DBI: the function's configuration space and the port logic registers;
 *  - DBI2: the shadow registers behind the read-only configuration fields;
 *  - ATU: the unrolled internal address translation unit;
 *  - addr_space: the outbound window that the iATU maps onto the link.
 *
 * Copyright (c) 2026 The pciep-lab authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_ids.h"
#include "hw/qdev-properties.h"
#include "hw/registerfields.h"
#include "hw/resettable.h"
#include "hw/core/sysbus-fdt.h"
#include "migration/vmstate.h"
#include "hw/pci-ep/dw-pcie-ep.h"
#include "hw/pci-ep/dw-pcie-ep-fdt.h"
#include "trace.h"

/* Port logic registers in the DBI space */
REG32(MISC_CONTROL_1, 0x8bc)
    FIELD(MISC_CONTROL_1, DBI_RO_WR_EN, 0, 1)
REG32(VERSION_NUMBER, 0x8f8)
REG32(VERSION_TYPE, 0x8fc)
REG32(ATU_VIEWPORT, 0x900)

/* The viewport reads as all ones when the iATU is unrolled. */
#define DW_PCIE_EP_ATU_UNROLLED  0xffffffffu

/* Synopsys' PCI vendor ID, and the device ID of our model. */
#define DW_PCIE_EP_DEFAULT_VENDOR_ID  0x16c3
#define DW_PCIE_EP_DEFAULT_DEVICE_ID  0xabcd

static bool dw_pcie_ep_ro_writable(DWPCIeEPState *s)
{
    return FIELD_EX32(pci_get_long(&s->config[A_MISC_CONTROL_1]),
                      MISC_CONTROL_1, DBI_RO_WR_EN);
}

static uint64_t dw_pcie_ep_dbi_read(void *opaque, hwaddr addr, unsigned size)
{
    DWPCIeEPState *s = opaque;
    uint64_t val = ldn_le_p(&s->config[addr], size);

    trace_dw_pcie_ep_dbi_read(addr, size, val);
    return val;
}

static void dw_pcie_ep_dbi_write(void *opaque, hwaddr addr, uint64_t val,
                                 unsigned size)
{
    DWPCIeEPState *s = opaque;
    bool ro_writable = dw_pcie_ep_ro_writable(s);

    trace_dw_pcie_ep_dbi_write(addr, size, val);
    for (unsigned i = 0; i < size; i++, val >>= 8) {
        uint8_t mask = s->wmask[addr + i];

        if (ro_writable) {
            mask |= s->romask[addr + i];
        }
        s->config[addr + i] = (s->config[addr + i] & ~mask) | (val & mask);
    }
}

static const MemoryRegionOps dw_pcie_ep_dbi_ops = {
    .read = dw_pcie_ep_dbi_read,
    .write = dw_pcie_ep_dbi_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 4,
    },
};

/*
 * DBI2, the iATU and the outbound window are not modelled yet: reads
 * return zero (all ones for the window, as for a link that is down) and
 * writes are dropped, so that a driver probing them finds no resources.
 */
static uint64_t dw_pcie_ep_unimp_read(void *opaque, hwaddr addr,
                                      unsigned size)
{
    qemu_log_mask(LOG_UNIMP, "%s: read at 0x%" HWADDR_PRIx
                  " of an unmodelled region\n", TYPE_DW_PCIE_EP, addr);
    return 0;
}

static void dw_pcie_ep_unimp_write(void *opaque, hwaddr addr, uint64_t val,
                                   unsigned size)
{
    qemu_log_mask(LOG_UNIMP, "%s: write of 0x%" PRIx64 " at 0x%"
                  HWADDR_PRIx " of an unmodelled region dropped\n",
                  TYPE_DW_PCIE_EP, val, addr);
}

static const MemoryRegionOps dw_pcie_ep_unimp_ops = {
    .read = dw_pcie_ep_unimp_read,
    .write = dw_pcie_ep_unimp_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

static uint64_t dw_pcie_ep_window_read(void *opaque, hwaddr addr,
                                       unsigned size)
{
    qemu_log_mask(LOG_GUEST_ERROR, "%s: outbound read at 0x%" HWADDR_PRIx
                  " while the link is down: all ones\n",
                  TYPE_DW_PCIE_EP, addr);
    return MAKE_64BIT_MASK(0, size * 8);
}

static void dw_pcie_ep_window_write(void *opaque, hwaddr addr, uint64_t val,
                                    unsigned size)
{
    qemu_log_mask(LOG_GUEST_ERROR, "%s: outbound write at 0x%" HWADDR_PRIx
                  " while the link is down: discarded\n",
                  TYPE_DW_PCIE_EP, addr);
}

static const MemoryRegionOps dw_pcie_ep_window_ops = {
    .read = dw_pcie_ep_window_read,
    .write = dw_pcie_ep_window_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

/*
 * "5.40a" -> 0x3534302a: the three digits in ASCII followed by '*', the
 * encoding of the VERSION_NUMBER register that Linux compares against.
 */
static bool dw_pcie_ep_parse_version(const char *str, uint32_t *val)
{
    if (strlen(str) != 5 || !g_ascii_isdigit(str[0]) || str[1] != '.' ||
        !g_ascii_isdigit(str[2]) || !g_ascii_isdigit(str[3]) ||
        !g_ascii_islower(str[4])) {
        return false;
    }
    *val = (uint32_t)str[0] << 24 | (uint32_t)str[2] << 16 |
           (uint32_t)str[3] << 8 | '*';
    return true;
}

static void dw_pcie_ep_init_config(DWPCIeEPState *s)
{
    uint32_t version = 0;

    memset(s->config, 0, sizeof(s->config));
    memset(s->wmask, 0, sizeof(s->wmask));
    memset(s->romask, 0, sizeof(s->romask));

    /* Type 0 header: IDs and class are read-only from the link side. */
    pci_set_word(&s->config[PCI_VENDOR_ID], s->vendor_id);
    pci_set_word(&s->config[PCI_DEVICE_ID], s->device_id);
    pci_set_word(&s->config[PCI_CLASS_DEVICE], PCI_CLASS_OTHERS << 8);
    s->config[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
    pci_set_word(&s->romask[PCI_VENDOR_ID], 0xffff);
    pci_set_word(&s->romask[PCI_DEVICE_ID], 0xffff);
    pci_set_long(&s->romask[PCI_CLASS_REVISION], 0xffffffff);
    pci_set_word(&s->romask[PCI_SUBSYSTEM_VENDOR_ID], 0xffff);
    pci_set_word(&s->romask[PCI_SUBSYSTEM_ID], 0xffff);
    s->romask[PCI_INTERRUPT_PIN] = 0xff;
    pci_set_word(&s->wmask[PCI_COMMAND], PCI_COMMAND_MEMORY |
                 PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
    s->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
    s->wmask[PCI_INTERRUPT_LINE] = 0xff;

    /* Port logic */
    pci_set_long(&s->wmask[A_MISC_CONTROL_1],
                 R_MISC_CONTROL_1_DBI_RO_WR_EN_MASK);
    dw_pcie_ep_parse_version(s->ip_version, &version);
    pci_set_long(&s->config[A_VERSION_NUMBER], version);
    pci_set_long(&s->config[A_VERSION_TYPE], 0x67612a2a); /* "ga**" */
    pci_set_long(&s->config[A_ATU_VIEWPORT], DW_PCIE_EP_ATU_UNROLLED);
}

static void dw_pcie_ep_reset_hold(Object *obj, ResetType type)
{
    DWPCIeEPState *s = DW_PCIE_EP(obj);

    dw_pcie_ep_init_config(s);
    trace_dw_pcie_ep_reset();
}

static void dw_pcie_ep_realize(DeviceState *dev, Error **errp)
{
    DWPCIeEPState *s = DW_PCIE_EP(dev);
    SysBusDevice *sbd = SYS_BUS_DEVICE(dev);
    uint32_t version;

    if (!dw_pcie_ep_parse_version(s->ip_version, &version)) {
        error_setg(errp, "ip-version '%s' is not of the form X.YZa, "
                   "e.g. 5.40a", s->ip_version);
        return;
    }
    if (s->num_atu_regions < 1 || s->num_atu_regions > 256) {
        error_setg(errp, "num-atu-regions must be 1 to 256, not %u",
                   s->num_atu_regions);
        return;
    }
    if (s->addr_space_size < 0x1000 || !is_power_of_2(s->addr_space_size)) {
        error_setg(errp, "addr-space-size must be a power of two of at "
                   "least 4 KiB, not 0x%" PRIx64, s->addr_space_size);
        return;
    }

    memory_region_init_io(&s->dbi, OBJECT(s), &dw_pcie_ep_dbi_ops, s,
                          "dw-pcie-ep.dbi", DW_PCIE_EP_DBI_SIZE);
    memory_region_init_io(&s->dbi2, OBJECT(s), &dw_pcie_ep_unimp_ops, s,
                          "dw-pcie-ep.dbi2", DW_PCIE_EP_DBI2_SIZE);
    memory_region_init_io(&s->atu, OBJECT(s), &dw_pcie_ep_unimp_ops, s,
                          "dw-pcie-ep.atu",
                          s->num_atu_regions * DW_PCIE_EP_ATU_REGION_SIZE);
    memory_region_init_io(&s->addr_space, OBJECT(s), &dw_pcie_ep_window_ops,
                          s, "dw-pcie-ep.addr_space", s->addr_space_size);

    /* The order is DW_PCIE_EP_MMIO_*, the device tree's reg-names. */
    sysbus_init_mmio(sbd, &s->dbi);
    sysbus_init_mmio(sbd, &s->dbi2);
    sysbus_init_mmio(sbd, &s->atu);
    sysbus_init_mmio(sbd, &s->addr_space);
}

static const VMStateDescription vmstate_dw_pcie_ep = {
    .name = TYPE_DW_PCIE_EP,
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8_ARRAY(config, DWPCIeEPState, DW_PCIE_EP_DBI_SIZE),
        VMSTATE_END_OF_LIST()
    },
};

static const Property dw_pcie_ep_properties[] = {
    DEFINE_PROP_UINT16("vendor-id", DWPCIeEPState, vendor_id,
                       DW_PCIE_EP_DEFAULT_VENDOR_ID),
    DEFINE_PROP_UINT16("device-id", DWPCIeEPState, device_id,
                       DW_PCIE_EP_DEFAULT_DEVICE_ID),
    DEFINE_PROP_STRING("ip-version", DWPCIeEPState, ip_version),
    DEFINE_PROP_UINT32("num-atu-regions", DWPCIeEPState, num_atu_regions, 8),
    DEFINE_PROP_UINT64("addr-space-size", DWPCIeEPState, addr_space_size,
                       16 * MiB),
};

static void dw_pcie_ep_instance_init(Object *obj)
{
    DWPCIeEPState *s = DW_PCIE_EP(obj);

    s->ip_version = g_strdup("5.40a");
}

static void dw_pcie_ep_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    ResettableClass *rc = RESETTABLE_CLASS(klass);
    SysBusFDTNodeProviderClass *fdtc = SYSBUS_FDT_NODE_PROVIDER_CLASS(klass);

    dc->desc = "Synopsys DesignWare PCIe controller, endpoint mode";
    dc->realize = dw_pcie_ep_realize;
    dc->vmsd = &vmstate_dw_pcie_ep;
    device_class_set_props(dc, dw_pcie_ep_properties);
    set_bit(DEVICE_CATEGORY_BRIDGE, dc->categories);
    rc->phases.hold = dw_pcie_ep_reset_hold;
    fdtc->add_fdt_node = dw_pcie_ep_add_fdt_node;
}

static const TypeInfo dw_pcie_ep_types[] = {
    {
        .name = TYPE_DW_PCIE_EP,
        .parent = TYPE_DYNAMIC_SYS_BUS_DEVICE,
        .instance_size = sizeof(DWPCIeEPState),
        .instance_init = dw_pcie_ep_instance_init,
        .class_init = dw_pcie_ep_class_init,
        .interfaces = (const InterfaceInfo[]) {
            { TYPE_SYSBUS_FDT_NODE_PROVIDER },
            { }
        },
    },
};

DEFINE_TYPES(dw_pcie_ep_types)
