#!/bin/sh
# Host VM: wait for the endpoint's function on the PCIe bus, then run the
# pci_endpoint kselftest (or pcitest on kernels that predate it) and
# print its TAP output between "@@lab tap-begin" and "@@lab tap-end".
#
# Kernel command line:
#   lab.wait=SECONDS     how long to wait for the function (default 120)
#   lab.kselftest=ARGS   arguments for pci_endpoint_test, ',' for ' '
. /lab/lib.sh

wait=120
args=
for arg in $(cat /proc/cmdline); do
    case $arg in
    lab.wait=*) wait=${arg#lab.wait=} ;;
    lab.kselftest=*) args=$(echo "${arg#lab.kselftest=}" | tr ',' ' ') ;;
    esac
done

lab_report ok host-boot "$(ls /sys/bus/pci/devices | wc -l) PCI functions at boot"

if ! lab_wait_for "$wait" lab_find_epf_test; then
    lab_report missing ep-function "no endpoint function (104c:b500) on the PCIe bus after ${wait}s"
    exit 0
fi
lab_report ok ep-function "$(lab_find_epf_test)"

if lab_wait_for 10 test -e /dev/pci-endpoint-test.0; then
    lab_report ok bind "pci_endpoint_test bound: /dev/pci-endpoint-test.0"
else
    lab_report fail bind "pci_endpoint_test did not bind"
    exit 1
fi

echo "@@lab tap-begin"
if [ -x /bin/pci_endpoint_test ]; then
    # shellcheck disable=SC2086
    pci_endpoint_test $args
else
    # Kernels before 6.15 have tools/pci/pcitest instead of the kselftest.
    n=0
    echo "TAP version 13"
    for t in "-b 0" "-b 1" "-b 2" "-b 3" "-b 4" "-b 5" "-i 1" "-m 1" "-r -s 1024" "-w -s 1024"; do
        n=$((n + 1))
        # shellcheck disable=SC2086
        if pcitest $t; then echo "ok $n pcitest $t"; else echo "not ok $n pcitest $t"; fi
    done
    echo "1..$n"
fi
echo "@@lab tap-end"
dmesg | grep -iE 'pci|endpoint' | tail -n 40 | sed 's/^/@@lab info kmsg /'
