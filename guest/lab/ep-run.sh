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

lab_ep_probe

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

lab_epf_start "$fn"

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

if as=$(lab_reg_cells addr_space 0); then
    lab_report info addr-space "$as size $(lab_reg_cells addr_space 1)"
fi

lab_link_up

lab_report ok ready "waiting for the host"
# scripts/lab ends this VM when the host VM is done, after one more
# "flushed": until then, pass on what the kernel says, and the link's
# state when it changes (a host that goes away, and comes back).
check=$(lab_link_up_check) || check=
link=unknown
while :; do
    sleep 1
    dmesg -c | sed 's/^/@@lab info kmsg /'
    [ -z "$check" ] || link=$(lab_link_watch "$check" "$link")
    lab_report info flushed "kernel messages passed on"
done
