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

# lab_find_epf_test: the PCI address of the endpoint's pci-epf-test
# function (104c:b500), if the bus has it
lab_find_epf_test() {
    for d in /sys/bus/pci/devices/*; do
        [ "$(cat "$d/vendor")" = 0x104c ] && [ "$(cat "$d/device")" = 0xb500 ] &&
            echo "${d##*/}" && return 0
    done
    return 1
}
