#!/bin/sh
# EP VM: find the DesignWare controller, bind pci-epf-test to it over
# configfs and start it, then stay up while the host VM runs its tests.
# 'scripts/lab run --ep-script FILE' runs FILE instead of this script.
#
# Kernel command line:
#   lab.epf=ATTR=VAL,...   pci-epf-test configfs attributes to set, e.g.
#                          bar1_size=4096,msi_interrupts=8 (scripts/lab --epf)
. /lab/lib.sh

epf_layout=
for arg in $(cat /proc/cmdline); do
    case $arg in
    lab.epf=*) epf_layout=$(echo "${arg#lab.epf=}" | tr ',' ' ') ;;
    esac
done

node=
for c in /sys/firmware/devicetree/base/*/compatible; do
    grep -q snps,dw-pcie-ep "$c" </dev/null && node=${c%/compatible} && break
done
if [ -n "$node" ]; then
    lab_report ok dt-node "/${node##*/}: reg-names $(tr '\0' ' ' <"$node/reg-names")"
else
    lab_report fail dt-node "no snps,dw-pcie-ep node in the device tree"
    exit 1
fi

if [ -e "$node/msi-map" ]; then
    lab_report info msi-map "msi-map present (its DeviceID 0x$(od -A n -t x1 -j 8 -N 4 "$node/msi-map" | tr -d ' \n'))"
fi
if [ -e "$node/iommus" ]; then
    lab_report info iommus "iommus present: behind the smmu, StreamID 0x$(od -A n -t x1 -j 4 -N 4 "$node/iommus" | tr -d ' \n')"
fi
dmesg | grep -iE 'dw-pcie|designware|iATU|eDMA|iommu group|arm-smmu' | sed 's/^/@@lab info dmesg /'
iatu=$(dmesg | grep -o 'iATU: .*' | head -n1)
case $iatu in
'') lab_report fail iatu "the driver found no iATU: $(dmesg | grep -m1 -i 'iATU')" ;;
*) lab_report ok iatu "$iatu" ;;
esac

epc=$(ls /sys/class/pci_epc 2>/dev/null | head -n1)
if [ -n "$epc" ]; then
    lab_report ok probe "endpoint controller $epc"
else
    lab_report fail probe "the snps,dw-pcie-ep driver created no endpoint controller"
    exit 1
fi

# dw-edma's channels, as dmaengine lists them
chans=$(ls /sys/class/dma 2>/dev/null | tr '\n' ' ')
lab_report info dma-channels "${chans:-none}"

cfs=/sys/kernel/config/pci_ep
fn=$cfs/functions/pci_epf_test/func1
# Attributes under the function, then the pci_epf_test.0 group (BARs)
set_epf_attr() {
    for f in "$fn/$1" "$fn"/pci_epf_test.*/"$1"; do
        [ -e "$f" ] && echo "$2" >"$f" && return 0
    done
    return 1
}

if mkdir "$fn" &&
   echo 0x104c >"$fn/vendorid" && echo 0xb500 >"$fn/deviceid" &&
   echo 32 >"$fn/msi_interrupts" && echo 2048 >"$fn/msix_interrupts"; then
    :
else
    lab_report fail epf-create "could not create pci_epf_test over configfs"
    exit 1
fi
for kv in $epf_layout; do
    if ! set_epf_attr "${kv%%=*}" "${kv#*=}"; then
        lab_report fail epf-create "pci_epf_test has no attribute ${kv%%=*} (or refused ${kv#*=})"
        exit 1
    fi
done
lab_report ok epf-create "pci_epf_test func1 (104c:b500, $(cat "$fn/msi_interrupts") MSI, $(cat "$fn/msix_interrupts") MSI-X${epf_layout:+, $epf_layout})"

if ln -s "$fn" "$cfs/controllers/$epc/"; then
    lab_report ok epf-link "func1 linked to $epc"
else
    lab_report fail epf-link "linking func1 to $epc failed: $(dmesg | tail -n 3 | tr '\n' ' ')"
    exit 1
fi

if echo 1 >"$cfs/controllers/$epc/start"; then
    lab_report ok start "$epc started"
else
    lab_report fail start "starting $epc failed: $(dmesg | tail -n 3 | tr '\n' ' ')"
    exit 1
fi

# Our own set-up is done by now: pci-epf-test has allocated and set its
# BARs and interrupts (epc_init).  What it logs from here on answers the
# host's tests (a BAR_SUBRANGE_TEST Linux refuses, say): information.
errors=$(dmesg | grep -E 'pci_epf_test|pci-epf-test' | grep -iE 'fail|error|invalid' | grep -v 'Falling back')
if [ -n "$errors" ]; then
    lab_report fail epf-init "$(echo "$errors" | sed 's/^\[[^]]*\] //' | tr '\n' ';')"
    exit 1
fi
lab_report ok epf-init "pci-epf-test set up with no error"
dmesg -c >/dev/null

# Cell pair $2 (0: the CPU address, 1: the size) of the controller's
# reg entry named $1
reg_cells() {
    i=0
    for n in $(tr '\0' ' ' <"$node/reg-names"); do
        [ "$n" = "$1" ] && break
        i=$((i + 1))
    done
    [ "$n" = "$1" ] || return 1
    echo "0x$(od -A n -t x1 -j $((i * 16 + $2 * 8)) -N 8 "$node/reg" | tr -d ' \n')"
}

reg_addr() {
    reg_cells "$1" 0
}

reg_size() {
    reg_cells "$1" 1
}

if as=$(reg_addr addr_space); then
    lab_report info addr-space "$as size $(reg_size addr_space)"
fi

# The generic driver's start_link() is empty: do what a SoC glue driver
# does there and enable the LTSSM (the model's ELBI register).
if elbi=$(reg_addr elbi); then
    devmem "$elbi" 32 1
    if lab_wait_for 30 sh -c "[ \$(devmem $((elbi + 4)) 32) = 0x00000001 ]"; then
        lab_report ok link-up "LTSSM enabled, link up"
    else
        lab_report missing link-up "LTSSM enabled, but no host on the link after 30s"
    fi
fi

lab_report ok ready "waiting for the host"
# scripts/lab ends this VM when the host VM is done, after one more
# "flushed": until then, pass on what the kernel says.
while :; do
    sleep 1
    dmesg -c | sed 's/^/@@lab info kmsg /'
    lab_report info flushed "kernel messages passed on"
done
