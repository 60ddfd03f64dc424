# Helpers for the job scripts; /init exports them by sourcing this file,
# and each job script sources it again.

# lab_report STATUS STEP TEXT...: one line for scripts/lab
#   STATUS is ok, fail, skip, missing (a part the lab does not have yet)
#   or info
lab_report() {
    status=$1 step=$2
    shift 2
    echo "@@lab $status $step $*"
}

# lab_wait_for SECONDS CMD...: retry CMD every 0.2 s until it succeeds
lab_wait_for() {
    tries=$(($1 * 5))
    shift
    while [ "$tries" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
        tries=$((tries - 1))
    done
    return 1
}

# lab_find_function VENDOR DEVICE: the PCI address of a function with
# these IDs, if the bus has one
lab_find_function() {
    for d in /sys/bus/pci/devices/*; do
        [ "$(cat "$d/vendor")" = "$1" ] && [ "$(cat "$d/device")" = "$2" ] &&
            echo "${d##*/}" && return 0
    done
    return 1
}

# lab_find_epf_test: the endpoint's pci-epf-test function (104c:b500)
lab_find_epf_test() {
    lab_find_function 0x104c 0xb500
}

# lab_epf_test_answers BDF: true while the function's config space
# reads pci-epf-test's IDs (a function whose link is gone reads all
# ones; one that cannot be read does not answer either)
lab_epf_test_answers() {
    [ "$(od -A n -t x4 -N 4 "/sys/bus/pci/devices/$1/config" 2>/dev/null |
        tr -d ' ')" = b500104c ]
}

# lab_kill_session SID: SIGKILL every process of session SID (the
# kselftest harness forks a child per test, in a process group of its
# own, and that child forks the one that runs the test)
lab_kill_session() {
    sid=$1
    pids=
    for s in /proc/[0-9]*/stat; do
        { read -r line; } < "$s" 2>/dev/null || continue
        # After "pid (comm) ": state ppid pgrp session ...
        # shellcheck disable=SC2086
        set -- ${line##*) }
        if [ "${4:-}" = "$sid" ]; then
            p=${s#/proc/}
            pids="$pids ${p%/stat}"
        fi
    done
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null
}

# The endpoint controllers the lab knows: the generic DesignWare one,
# and R-Car Gen4's glue around it
LAB_EP_COMPATIBLE='snps,dw-pcie-ep\|renesas,rcar-gen4-pcie-ep'

# lab_find_ep_node: the device-tree node of the endpoint controller, in
# $node
lab_find_ep_node() {
    node=
    for c in /sys/firmware/devicetree/base/*/compatible; do
        grep -q "$LAB_EP_COMPATIBLE" "$c" </dev/null &&
            node=${c%/compatible} && return 0
    done
    return 1
}

# lab_reg_cells NAME N: cell pair N (0: the CPU address, 1: the size) of
# the reg entry named NAME of $node
lab_reg_cells() {
    i=0
    for n in $(tr '\0' ' ' <"$node/reg-names"); do
        [ "$n" = "$1" ] && break
        i=$((i + 1))
    done
    [ "$n" = "$1" ] || return 1
    echo "0x$(od -A n -t x1 -j $((i * 16 + $2 * 8)) -N 8 "$node/reg" | tr -d ' \n')"
}

# lab_link_up: the generic driver's start_link() is empty, so do what a
# SoC glue driver does there and enable the LTSSM (the model's ELBI
# register), then wait for the link; reports link-up.  R-Car's driver
# enables its LTSSM itself: wait for its link status (PCIEINTSTS0).
# lab_link_up_check: a shell test, true while the controller's link is
# up (its ELBI status, or R-Car Gen4's app block); fails if it has neither
lab_link_up_check() {
    if elbi=$(lab_reg_cells elbi 0); then
        echo "[ \$(devmem $((elbi + 4)) 32) = 0x00000001 ]"
    elif app=$(lab_reg_cells app 0); then
        echo "[ \$((\$(devmem $((app + 0x84)) 32) & 0xc0)) = $((0xc0)) ]"
    else
        return 1
    fi
}

lab_link_up() {
    if ! up=$(lab_link_up_check); then
        lab_report fail link-up "the controller has no elbi or app registers: the lab cannot see its link"
        return 1
    fi
    # The generic driver leaves the LTSSM to the glue: ELBI's enable bit
    if elbi=$(lab_reg_cells elbi 0); then
        devmem "$elbi" 32 1
    fi
    if lab_wait_for 30 sh -c "$up"; then
        lab_report ok link-up "LTSSM enabled, link up"
    else
        lab_report missing link-up "LTSSM enabled, but no host on the link after 30s"
    fi
}

# lab_link_watch CHECK STATE: report link-up or link-down (on stderr,
# the console too) when the link's state (CHECK from lab_link_up_check)
# is no longer STATE; prints the new state
lab_link_watch() {
    if sh -c "$1" 2>/dev/null; then now=up; else now=down; fi
    if [ "$now" != "$2" ]; then
        lab_report info "link-$now" "the controller's link is $now" >&2
    fi
    echo "$now"
}

# lab_netdev: the first network interface other than lo
lab_netdev() {
    for d in /sys/class/net/*; do
        [ "${d##*/}" = lo ] || { echo "${d##*/}"; return 0; }
    done
    return 1
}

# The kernel's count of ICMP echo replies received (Icmp: InEchoReps)
icmp_echo_replies() {
    awk '/^Icmp:/ { if (!c) { for (i = 2; i <= NF; i++) if ($i == "InEchoReps") c = i } else print $c }' /proc/net/snmp
}

# The drops of the ICMP raw socket open now (ping's), if there is one
raw_icmp_drops() {
    awk 'NR > 1 && $2 ~ /:0001$/ { d = $NF } END { if (d != "") print d }' /proc/net/raw
}

# lab_ping NAME ADDR COUNT: once ADDR answers, COUNT pings 20 ms apart;
# reports NAME with the loss and the median, p90 and max round trip.
#
# busybox ping sizes its socket's receive buffer for small packets
# (SO_RCVBUF 7 KiB, so 14 KiB), and each packet ntb_netdev receives is
# charged about 128 KiB to it (its MTU is 64 KiB): the socket holds one
# reply. When two replies come before ping reads the first (a VM that
# was not scheduled for a while), the second is dropped at the socket,
# after the kernel counted it. So a reply counts as received when the
# kernel had it and ping's socket dropped it: the link delivered it.
lab_ping() {
    out=/tmp/ping-$1
    # The peer's address is up once one ping comes back; then measure
    lab_wait_for 30 ping -c 1 -W 1 "$2"
    before=$(icmp_echo_replies)
    ping -c "$3" -i 0.02 -W 2 "$2" >"$out" 2>&1 &
    ping_pid=$!
    drops=?
    while kill -0 $ping_pid 2>/dev/null; do
        d=$(raw_icmp_drops 2>/dev/null) && [ -n "$d" ] && drops=$d
        sleep 0.1
    done
    wait $ping_pid
    dups=$(grep -c 'DUP' "$out")
    kernel=$(( $(icmp_echo_replies) - before - dups ))
    # A duplicate reply is not an answer to another ping
    got=$(grep 'time=' "$out" | grep -vc 'DUP')
    grep 'time=' "$out" | grep -v 'DUP' | grep -o 'time=[0-9.]*' |
        cut -d= -f2 | sort -n >"$out.sorted"
    pick() {
        [ "$got" -gt 0 ] || { echo -; return; }
        sed -n "$(( ($got * $1 + 99) / 100 ))p" "$out.sorted"
    }
    text="$2: $got of $3 received, median $(pick 50) p90 $(pick 90) max $(pick 100) ms"
    if [ "$got" = "$3" ]; then
        lab_report ok "$1" "$text"
    # Excused only when the counts add up: every reply missing from ping
    # was dropped at its socket while open, and the kernel had exactly
    # the replies asked for (a stray or late one fails instead)
    elif [ "$drops" != "?" ] && [ $(( got + drops )) -eq "$3" ] &&
         [ "$kernel" -eq "$3" ]; then
        lab_report ok "$1" "$text; the other $drops reached the kernel (InEchoReps +$kernel) and overflowed ping's socket"
    else
        lab_report fail "$1" "$text"
        # Which ones, and what the interface counted
        lab_report info "$1-lost" "no reply to icmp_seq $(i=0; while [ $i -lt "$3" ]; do grep -q "seq=$i " "$out" || printf '%s ' $i; i=$((i + 1)); done)"
        st=/sys/class/net/$dev/statistics
        [ -d "$st" ] && lab_report info "$1-stats" "$dev: $(for c in rx_packets tx_packets rx_dropped tx_dropped rx_errors tx_errors rx_length_errors rx_crc_errors rx_frame_errors; do printf '%s=%s ' $c "$(cat $st/$c)"; done)"
        lab_report info "$1-dups" "$dups duplicate replies; $(grep -v 'time=' "$out" | tr '\n' ';' | cut -c1-400)"
        lab_report info "$1-kernel" "the kernel counted $kernel echo replies; ping's socket dropped $drops"
        # A packet that came corrupted shows as an IP or ICMP error here
        grep -E '^(Ip|Icmp|IcmpMsg):' /proc/net/snmp 2>/dev/null | sed "s/^/@@lab info $1-snmp /"
    fi
}

# lab_ep_probe: check that the device tree has the controller and that
# its driver probed, reporting each step; sets $node and $epc, and
# exits the job if either is missing
lab_ep_probe() {
    if lab_find_ep_node; then
        lab_report ok dt-node "/${node##*/}: reg-names $(tr '\0' ' ' <"$node/reg-names")"
    else
        lab_report fail dt-node "no endpoint controller ($LAB_EP_COMPATIBLE) in the device tree"
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
        lab_report fail probe "the controller's driver created no endpoint controller"
        exit 1
    fi

    # dw-edma's channels, as dmaengine lists them
    chans=$(ls /sys/class/dma 2>/dev/null | tr '\n' ' ')
    lab_report info dma-channels "${chans:-none}"
}

# lab_ntb_netdev: load ntb_netdev now that an NTB device is there (its
# init needs one) and wait for its interface; reports netdev, sets $dev
lab_ntb_netdev() {
    # The NTB device registers at the end of its driver's probe, which
    # waits for the peer; the transport takes it as it registers.
    if ! lab_wait_for 30 sh -c 'ls /sys/bus/ntb/devices/* >/dev/null 2>&1'; then
        lab_report fail netdev "no NTB device after 30s: $(dmesg | grep -iE 'ntb|epf' | tail -n 3 | tr '\n' ' ')"
        dmesg | grep -iE 'ntb|epf' | sed 's/^/@@lab info kmsg /'
        exit 1
    fi
    if ! lab_wait_for 10 modprobe ntb_netdev; then
        lab_report fail netdev "modprobe ntb_netdev: $(modprobe ntb_netdev 2>&1): $(dmesg | grep -iE 'ntb' | tail -n 3 | tr '\n' ' ')"
        dmesg | grep -iE 'ntb|epf' | sed 's/^/@@lab info kmsg /'
        exit 1
    fi
    if lab_wait_for 30 lab_netdev; then
        dev=$(lab_netdev)
        lab_report ok netdev "ntb_netdev: $dev ($(ls /sys/bus/ntb/devices | tr '\n' ' '))"
    else
        lab_report fail netdev "no ntb_netdev interface after 30s: $(dmesg | grep -iE 'ntb' | tail -n 3 | tr '\n' ' ')"
        exit 1
    fi
}

# lab_epf_start FUNCTION: link the configfs function to the controller
# $epc and start it; reports epf-link and start, exits on failure
lab_epf_start() {
    cfs=/sys/kernel/config/pci_ep
    if ln -s "$1" "$cfs/controllers/$epc/"; then
        lab_report ok epf-link "${1##*/} linked to $epc"
    else
        lab_report fail epf-link "linking ${1##*/} to $epc failed: $(dmesg | tail -n 3 | tr '\n' ' ')"
        exit 1
    fi
    if echo 1 >"$cfs/controllers/$epc/start"; then
        lab_report ok start "$epc started"
    else
        lab_report fail start "starting $epc failed: $(dmesg | tail -n 3 | tr '\n' ' ')"
        exit 1
    fi
}

# lab_netdev_up ADDR: bring ntb_netdev's $dev up with ADDR/24 and wait
# for its carrier (the NTB transport linked); reports carrier
lab_netdev_up() {
    ip addr add "$1/24" dev "$dev" && ip link set "$dev" up
    if lab_wait_for 60 grep -qx 1 "/sys/class/net/$dev/carrier"; then
        lab_report ok carrier "$dev up, $1, mtu $(cat "/sys/class/net/$dev/mtu")"
    else
        lab_report fail carrier "$dev has no carrier after 60s: the NTB transport did not come up"
        dmesg | grep -iE 'ntb' | tail -n 20 | sed 's/^/@@lab info kmsg /'
        exit 1
    fi
}
