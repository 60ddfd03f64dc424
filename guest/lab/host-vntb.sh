#!/bin/sh
# Host VM: the other end of pci-epf-vntb (scripts/lab vntb).  Waits for
# the endpoint's function (1912:0030), checks that ntb_hw_epf binds and
# ntb_netdev comes up, pings the EP and streams TCP to it, lets the EP
# do the same the other way, then tears down: link down, unbind.
#
# Kernel command line:
#   lab.wait=SECONDS   how long to wait for the function (default 120)
#   lab.pings=N        pings each way (default 100)
#   lab.mib=N          MiB per TCP stream (default 64)
. /lab/lib.sh

wait=120 pings=100 mib=64
for arg in $(cat /proc/cmdline); do
    case $arg in
    lab.wait=*) wait=${arg#lab.wait=} ;;
    lab.pings=*) pings=${arg#lab.pings=} ;;
    lab.mib=*) mib=${arg#lab.mib=} ;;
    esac
done
EP_ADDR=10.99.0.1 HOST_ADDR=10.99.0.2

find_vntb() {
    lab_find_function 0x1912 0x0030
}

lab_report ok host-boot "$(ls /sys/bus/pci/devices | wc -l) PCI functions at boot"
if ! lab_wait_for "$wait" find_vntb; then
    lab_report fail ep-function "no endpoint function (1912:0030) on the PCIe bus after ${wait}s"
    exit 1
fi
bdf=$(find_vntb)
lab_report ok ep-function "$bdf"
if lab_wait_for 10 test -e /sys/bus/pci/drivers/ntb_hw_epf/$bdf; then
    lab_report ok bind "ntb_hw_epf bound to $bdf ($(ls /sys/bus/pci/devices/$bdf/msi_irqs 2>/dev/null | wc -l) interrupt vectors)"
else
    lab_report fail bind "ntb_hw_epf did not bind: $(dmesg | grep -iE 'ntb' | tail -n 3 | tr '\n' ' ')"
    exit 1
fi
lab_ntb_netdev
lab_netdev_up "$HOST_ADDR"

lab_ping ping-host-to-ep "$EP_ADDR" "$pings"
lab-bench tcp-send "$EP_ADDR" 5001 "$mib" 120
# The EP's turn: its ping and its stream, then it says it is done
lab-bench tcp-recv 5002 tcp-ep-to-host "$mib" 240 &
recv=$!
if ! lab-bench tcp-send "$EP_ADDR" 5000 0 30 >/dev/null; then
    lab_report fail ep-done "the EP took no go-ahead"
    kill $recv
elif lab-bench tcp-recv 5003 done 0 240 >/dev/null; then
    lab_report ok ep-done "the EP has pinged and streamed"
else
    lab_report fail ep-done "the EP did not say it was done"
fi
wait $recv

# Teardown: the interface goes down and ntb_hw_epf lets go of the device
if ip link set "$dev" down &&
   echo "$bdf" >/sys/bus/pci/drivers/ntb_hw_epf/unbind &&
   ! test -e "/sys/class/net/$dev"; then
    lab_report ok teardown "$dev down, ntb_hw_epf unbound from $bdf, $dev gone"
else
    lab_report fail teardown "$(dmesg | tail -n 3 | tr '\n' ' ')"
fi
dmesg | grep -iE 'ntb|pci' | tail -n 40 | sed 's/^/@@lab info kmsg /'
