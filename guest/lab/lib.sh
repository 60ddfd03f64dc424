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
