# Shared definitions for the lab's shell scripts.  Source it; do not run it.
#
# Everything built from inputs outside the repository (the QEMU source
# package, the kernel, the guest images) is cached under $LAB_CACHE, in
# directories named by a hash of their inputs, so that a fresh clone
# reuses what an earlier clone on the same machine built.

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_CACHE=${LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pciep-lab}
LAB_JOBS=${LAB_JOBS:-$(nproc)}
# Debian's Python, whose site packages hold Debian's meson; a python3
# earlier on PATH (pyenv, a venv) would not see them.
LAB_PYTHON=${LAB_PYTHON:-/usr/bin/python3}

QEMU_VERSION=1:10.2.2+ds-1
QEMU_DSC=qemu_10.2.2+ds-1.dsc
QEMU_DSC_SHA256=f1684b3aa5ec500c3389d346c6501dee45041ea91656c6556d4da9023b7987dd

LINUX_SOURCE_PKG=${LINUX_SOURCE_PKG:-linux-source-7.2}

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] error: %s\n' "$*" >&2; exit 1; }

# hash_of FILE...: a short hash of the files' names and contents
hash_of() {
    local f
    for f in "$@"; do
        printf '%s\n' "${f#"$LAB_ROOT"/}"
        cat "$f"
    done | sha256sum | cut -c1-12
}

# hash_str STRING: a short hash of a string
hash_str() { printf '%s' "$1" | sha256sum | cut -c1-12; }

# apt_candidate PKG: the version apt would install, remembered until
# apt's package cache changes (apt-cache policy takes seconds here).
apt_candidate() {
    local key f
    key=$(hash_str "$1 $(stat -c %Y:%s /var/cache/apt/pkgcache.bin 2>/dev/null) $(stat -c %Y /var/lib/apt/lists 2>/dev/null)")
    f=$LAB_CACHE/apt/$key
    if [[ ! -s $f ]]; then
        mkdir -p "${f%/*}"
        apt-cache policy "$1" | awk '/Candidate:/ {print $2}' >"$f.tmp"
        mv "$f.tmp" "$f"
    fi
    cat "$f"
}

# sync_file SRC DST: copy SRC over DST only if they differ, so that a
# build system that looks at mtimes sees only real changes.
sync_file() {
    if ! cmp -s "$1" "$2"; then
        mkdir -p "$(dirname "$2")"
        cp "$1" "$2"
        return 0
    fi
    return 1
}

# with_lock NAME CMD...: run CMD holding the cache lock NAME, so that two
# lab commands on one machine do not build the same thing at once.
with_lock() {
    local name=$1; shift
    mkdir -p "$LAB_CACHE/locks"
    (
        flock 9
        "$@"
    ) 9>"$LAB_CACHE/locks/$name.lock"
}
