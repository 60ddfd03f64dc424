#!/bin/sh
# Host VM: the lab's benchmark (scripts/lab bench).  Waits for the
# endpoint's function, then measures, with guest/bench/lab-bench:
#  - ns per 4-byte access to BAR1 of the endpoint's function, to BAR2 of
#    an ivshmem-plain device (if the VM has one), and to guest RAM;
#  - pci-epf-test READ and WRITE throughput through the EP's window.
#
# Kernel command line:
#   lab.bench=COUNT      accesses per figure (default 100000)
. /lab/lib.sh

count=100000
for arg in $(cat /proc/cmdline); do
    case $arg in
    lab.bench=*) count=${arg#lab.bench=} ;;
    esac
done

find_dev() {
    for d in /sys/bus/pci/devices/*; do
        [ "$(cat "$d/vendor")" = "$1" ] && [ "$(cat "$d/device")" = "$2" ] &&
            echo "$d" && return 0
    done
    return 1
}

# The start address of BAR $2 of device directory $1, and the size the
# benchmark walks: 64 KiB at most, so that every figure walks as many
# pages (and TLB entries) as the guest RAM one does.
bar_of() {
    sed -n "$(($2 + 1))p" "$1/resource" | {
        read -r start end _
        size=$((end - start + 1))
        [ "$size" -gt 65536 ] && size=65536
        echo "$start $size"
    }
}

if ! lab_wait_for 120 find_dev 0x104c 0xb500; then
    lab_report fail ep-function "no endpoint function (104c:b500) after 120s"
    exit 1
fi
ep=$(find_dev 0x104c 0xb500)
lab_report ok ep-function "${ep##*/}"
lab_wait_for 10 test -e /dev/pci-endpoint-test.0 ||
    lab_report fail bind "pci_endpoint_test did not bind"

# shellcheck disable=SC2046
lab-bench access ep-bar $(bar_of "$ep" 1) "$count"
if shm=$(find_dev 0x1af4 0x1110); then
    # shellcheck disable=SC2046
    lab-bench access ivshmem $(bar_of "$shm" 2) "$count"
fi
lab-bench access ram 0 65536 "$count"
lab-bench xfer /dev/pci-endpoint-test.0 1048576 4
lab_report ok bench "done"
