#!/bin/sh
# Host VM, for scripts/lab chaos: run the pci_endpoint kselftest round
# after round, each time the endpoint's function is on the bus, and say
# when the function leaves the bus and when it comes back.  The EP VM
# may be killed and started again at any point; so may this VM.
#
# Kernel command line:
#   lab.kselftest=ARGS   arguments for pci_endpoint_test, ',' for ' '
#   lab.reboot=1         reboot (reboot -f) after each round
. /lab/lib.sh

args=
reboot=
for arg in $(cat /proc/cmdline); do
    case $arg in
    lab.kselftest=*) args=$(echo "${arg#lab.kselftest=}" | tr ',' ' ') ;;
    lab.reboot=1) reboot=1 ;;
    esac
done

lab_report ok host-boot "$(ls /sys/bus/pci/devices | wc -l) PCI functions at boot"

# The function's comings and goings, as the PCI core sees them
(
    present=
    while :; do
        if f=$(lab_find_epf_test); then
            [ -n "$present" ] || lab_report info function-present "$f"
            present=1
        else
            [ -z "$present" ] || lab_report info function-gone "the endpoint's function left the bus"
            present=
        fi
        # The kernel's hot-plug messages as they come
        dmesg -c | grep -iE 'pciehp|pci 0000:01|endpoint' | sed 's/^/@@lab info kmsg /'
        sleep 0.2
    done
) &

round=0
while :; do
    # On the bus and answering: a function whose link has gone stays
    # listed until the slot has powered off (5 s after its button press)
    until f=$(lab_find_epf_test 2>/dev/null) && lab_epf_test_answers "$f"; do
        sleep 0.2
    done
    if ! lab_wait_for 10 test -e /dev/pci-endpoint-test.0; then
        lab_report info bind "pci_endpoint_test did not bind within 10s"
        continue
    fi
    lab_epf_test_answers "$f" || continue
    round=$((round + 1))
    lab_report info round-begin "$round"
    echo "@@lab tap-begin"
    # A session of its own (not a process-group leader here, setsid
    # does not fork): $! is its session ID, which every test process
    # keeps, the ones the harness reparents to init included
    # shellcheck disable=SC2086
    setsid pci_endpoint_test $args &
    pid=$!
    # Linux's pci_endpoint_test waits for the EP's interrupt with no
    # timeout in its READ, WRITE and COPY tests: one under way when the
    # EP dies never returns, on a real board too (the task sleeps
    # uninterruptibly).  Once the function has been gone 10 s, the
    # round is left behind and the next one starts when it is back.
    #
    # And the driver frees its state when the function leaves the bus,
    # while a test may still be in an ioctl: one that wakes then, or one
    # that starts after, works on freed memory and may hang the kernel
    # (docs/design.md, "Faults").  So the round is stopped as soon as
    # the function stops answering, before the slot powers off, and
    # each pass kills what is left of it, until the harness is gone.
    gone=0
    stopped=
    while kill -0 "$pid" 2>/dev/null; do
        if [ -n "$stopped" ] || ! lab_epf_test_answers "$f"; then
            lab_kill_session "$pid"
            [ -n "$stopped" ] ||
                lab_report info round-stopped "$round: the function stopped answering"
            stopped=1
        fi
        if lab_find_epf_test >/dev/null 2>&1; then
            gone=0
        else
            gone=$((gone + 1))
        fi
        if [ "$gone" -ge 50 ]; then
            lab_report info round-abandoned "$round: the function left the bus with a test under way, which does not return"
            break
        fi
        sleep 0.2
    done
    # A stopped round's test processes may outlive the harness a moment
    [ -z "$stopped" ] || lab_kill_session "$pid"
    echo "@@lab tap-end"
    lab_report info round-end "$round"
    dmesg -c | grep -iE 'pci|endpoint' | tail -n 20 | sed 's/^/@@lab info kmsg /'
    if [ -n "$reboot" ]; then
        lab_report info reboot "after round $round"
        sync
        reboot -f
    fi
done
