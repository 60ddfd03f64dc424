#!/bin/sh
# EP VM: pci-epf-vntb between the two VMs (scripts/lab vntb).  Creates
# the function over configfs the way two R-Car S4 Spider boards are set
# up, starts the controller, brings up ntb_netdev and answers the host:
# pings it and streams TCP to it once the host says so.
#
# Kernel command line:
#   lab.pings=N    pings each way (default 100)
#   lab.mib=N      MiB per TCP stream (default 64)
. /lab/lib.sh

pings=100 mib=64
for arg in $(cat /proc/cmdline); do
    case $arg in
    lab.pings=*) pings=${arg#lab.pings=} ;;
    lab.mib=*) mib=${arg#lab.mib=} ;;
    esac
done
EP_ADDR=10.99.0.1 HOST_ADDR=10.99.0.2

lab_ep_probe

cfs=/sys/kernel/config/pci_ep
fn=$cfs/functions/pci_epf_vntb/func1
ntb=$fn/pci_epf_vntb.0
# num_mws before mw1: the size of MW1 is checked against it
if mkdir "$fn" &&
   echo 0x1912 >"$fn/vendorid" && echo 0x0030 >"$fn/deviceid" &&
   echo 32 >"$fn/msi_interrupts" &&
   echo 4 >"$ntb/db_count" && echo 128 >"$ntb/spad_count" &&
   echo 1 >"$ntb/num_mws" && echo 0x100000 >"$ntb/mw1" &&
   echo 0x1912 >"$ntb/vntb_vid" && echo 0x0030 >"$ntb/vntb_pid" &&
   echo 0x10 >"$ntb/vbus_number" &&
   echo 0 >"$ntb/ctrl_bar" && echo 4 >"$ntb/db_bar" && echo 2 >"$ntb/mw1_bar"; then
    lab_report ok epf-create "pci_epf_vntb func1 (1912:0030, 32 MSI; 4 doorbells, 128 scratchpads, MW1 1 MiB; BARs: ctrl 0, db 4, mw1 2)"
else
    lab_report fail epf-create "could not create pci_epf_vntb over configfs: $(dmesg | tail -n 3 | tr '\n' ' ')"
    exit 1
fi

lab_epf_start "$fn"
dmesg | grep -iE 'vntb|ntb|doorbell' | sed 's/^/@@lab info dmesg /'

# Which doorbell vNTB took: its interrupt handler is named
# pci_epf_vntb_db; without one, it polls the doorbell BAR
db_irq=$(grep pci_epf_vntb_db /proc/interrupts | head -n1)
if [ -z "$db_irq" ]; then
    why=$(dmesg | grep -iE 'doorbell' | sed 's/^\[[^]]*\] //' | tr '\n' ';')
    lab_report ok doorbell "polling: vNTB has no doorbell interrupt${why:+ ($why)}"
elif echo "$db_irq" | grep -q 'ITS\|MSI'; then
    lab_report ok doorbell "GIC ITS platform MSI: $(echo "$db_irq" | tr -s ' ')"
else
    lab_report ok doorbell "embedded (eDMA): $(echo "$db_irq" | tr -s ' ')"
fi

lab_link_up

lab_ntb_netdev
lab_netdev_up "$EP_ADDR"

# The host's stream, then its go-ahead for ours
lab-bench tcp-recv 5001 tcp-host-to-ep "$mib" 240 &
lab_report ok ready "waiting for the host"
if lab-bench tcp-recv 5000 go 0 240 >/dev/null; then
    lab_ping ping-ep-to-host "$HOST_ADDR" "$pings"
    lab-bench tcp-send "$HOST_ADDR" 5002 "$mib" 120
    lab-bench tcp-send "$HOST_ADDR" 5003 0 30 >/dev/null
else
    lab_report fail go "no go-ahead from the host"
fi
wait
# The doorbell did ring: its interrupt count went up.  With platform
# MSIs each doorbell has its own line (the host rings the third and up).
if [ -n "$db_irq" ]; then
    n=$(grep pci_epf_vntb_db /proc/interrupts | awk '{for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i} END {print s + 0}')
    if [ "${n:-0}" -gt 0 ]; then
        lab_report ok doorbell-rang "$n doorbell interrupts"
    else
        lab_report fail doorbell-rang "no doorbell interrupt came: vNTB must have polled"
    fi
fi
while :; do
    sleep 1
    dmesg -c | sed 's/^/@@lab info kmsg /'
    lab_report info flushed "kernel messages passed on"
done
