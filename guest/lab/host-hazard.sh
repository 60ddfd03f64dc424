#!/bin/sh
# Host VM: load for the iatu-hazard scenario (scripts/lab scenario
# iatu-hazard).  Waits for the endpoint's function, then runs one phase
# after another with guest/bench/lab-bench's "load", each between
# "@@lab phase NAME begin" and "@@lab phase NAME end", and a pause after
# each so that scripts/lab can read the EP's counters in between.
#
# Kernel command line:
#   lab.phases=KIND-IRQ:COUNT,...  e.g. irq-msi:100,dma-msix:20
#   lab.size=BYTES                 per READ/WRITE command (default 65536)
#   lab.wait=SECONDS               how long to wait for the function
. /lab/lib.sh

phases= size=65536 wait=120
for arg in $(cat /proc/cmdline); do
    case $arg in
    lab.phases=*) phases=$(echo "${arg#lab.phases=}" | tr ',' ' ') ;;
    lab.size=*) size=${arg#lab.size=} ;;
    lab.wait=*) wait=${arg#lab.wait=} ;;
    esac
done

if ! lab_wait_for "$wait" lab_find_epf_test; then
    lab_report fail ep-function "no endpoint function (104c:b500) after ${wait}s"
    exit 1
fi
if ! lab_wait_for 10 test -e /dev/pci-endpoint-test.0; then
    lab_report fail bind "pci_endpoint_test did not bind"
    exit 1
fi
lab_report ok bind "$(lab_find_epf_test): /dev/pci-endpoint-test.0"
sleep 2
for p in $phases; do
    name=${p%%:*} count=${p#*:}
    kind=${name%-*} irq=${name#*-}
    echo "@@lab phase $name begin $count"
    lab-bench load /dev/pci-endpoint-test.0 "$kind" "$irq" "$count" "$size"
    echo "@@lab phase $name end"
    sleep 2
done
lab_report ok phases "all phases run"
