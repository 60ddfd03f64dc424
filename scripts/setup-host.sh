#!/usr/bin/env bash
# Install what the lab needs on a Debian 12 (bookworm) host, from Debian's
# packages only.  Idempotent: it does nothing when everything is there.
#
# Extra APT suites, all from the mirror this machine's APT already uses:
#  - bookworm-backports: meson >= 1.5 and python3-pycotap;
#  - unstable, pinned at priority 50 so that nothing else is upgraded
#    from it: linux-source-7.2 and the source package of qemu 10.2.2.
#    (A package that only unstable has is still installable at that
#    priority; one that bookworm has, e.g. linux-source-6.12, comes from
#    bookworm.)
# The base system is never upgraded: packages are installed by name with
# --no-install-recommends, and only the listed ones come from the extra
# suites.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

BACKPORTS_PKGS=(meson python3-pycotap)
KERNEL_PKGS=("$LINUX_SOURCE_PKG")
BASE_PKGS=(
    # QEMU build
    ninja-build pkg-config libglib2.0-dev libfdt-dev libpixman-1-dev
    python3-venv dpkg-dev patch
    # kernel, initramfs and kselftest for the aarch64 guests
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross bc bison flex cpio kmod
    libssl-dev libelf-dev xz-utils
    # the lab itself
    util-linux socat
)
# scripts/setup-host.sh --fuzz: also QEMU's libFuzzer build (clang, and
# compiler-rt's libFuzzer and sanitizer runtimes)
if [[ ${1:-} == --fuzz ]]; then
    BASE_PKGS+=(clang libclang-rt-14-dev llvm-14)
fi

SOURCES=/etc/apt/sources.list.d/pciep-lab.sources
PREFS=/etc/apt/preferences.d/pciep-lab

sudo_if_needed() {
    if ((EUID == 0)); then "$@"; else sudo "$@"; fi
}

# The URI of the Debian archive this machine already uses.
debian_mirror() {
    local uri
    uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources |
          awk '{print $2}' | grep -v -- '-security' | head -n1)
    if [[ -z $uri ]]; then
        uri=$(grep -hs '^deb ' /etc/apt/sources.list |
              awk '{print $2}' | grep -v -- '-security' | head -n1)
    fi
    [[ -n $uri ]] || die "no Debian mirror found in the APT sources"
    printf '%s\n' "$uri"
}

configure_apt() {
    local uri changed=0 want
    uri=$(debian_mirror)
    want=$(cat <<EOT
# Written by pciep-lab's scripts/setup-host.sh
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: $uri
Suites: unstable
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
)
    if [[ ! -f $SOURCES ]] || [[ $(cat "$SOURCES") != "$want" ]]; then
        log "adding bookworm-backports and unstable (pinned low) from $uri"
        printf '%s\n' "$want" | sudo_if_needed tee "$SOURCES" >/dev/null
        changed=1
    fi
    want=$(cat <<'EOT'
# Written by pciep-lab's scripts/setup-host.sh: take nothing from
# unstable unless asked for by name.
Package: *
Pin: release a=unstable
Pin-Priority: 50
EOT
)
    if [[ ! -f $PREFS ]] || [[ $(cat "$PREFS") != "$want" ]]; then
        printf '%s\n' "$want" | sudo_if_needed tee "$PREFS" >/dev/null
        changed=1
    fi
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        log "enabling the arm64 architecture for busybox-static:arm64"
        sudo_if_needed dpkg --add-architecture arm64
        changed=1
    fi
    if ((changed)) || [[ ! -d /var/lib/apt/lists ]] ||
       ! ls /var/lib/apt/lists/*unstable*Sources* >/dev/null 2>&1; then
        log "apt-get update"
        sudo_if_needed apt-get update -qq >&2
    fi
}

missing_packages() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
            grep -q 'install ok installed' || printf '%s\n' "$p"
    done
}

meson_recent_enough() {
    local v
    v=$(meson --version 2>/dev/null) || return 1
    dpkg --compare-versions "$v" ge 1.5
}

install_packages() {
    local -a missing
    export DEBIAN_FRONTEND=noninteractive
    mapfile -t missing < <(missing_packages "${BASE_PKGS[@]}")
    if ((${#missing[@]})); then
        log "installing from bookworm: ${missing[*]}"
        sudo_if_needed apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
    mapfile -t missing < <(missing_packages "${BACKPORTS_PKGS[@]}")
    if ((${#missing[@]})) || ! meson_recent_enough; then
        log "installing from bookworm-backports: ${BACKPORTS_PKGS[*]}"
        sudo_if_needed apt-get install -y -qq --no-install-recommends \
            -t bookworm-backports "${BACKPORTS_PKGS[@]}" >&2
    fi
    mapfile -t missing < <(missing_packages "${KERNEL_PKGS[@]}")
    if ((${#missing[@]})); then
        log "installing the guest kernel's source: ${missing[*]}"
        sudo_if_needed apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >&2
    fi
}

all_installed() {
    [[ -f $SOURCES && -f $PREFS ]] || return 1
    meson_recent_enough || return 1
    [[ -z $(missing_packages "${BASE_PKGS[@]}" "${BACKPORTS_PKGS[@]}" \
            "${KERNEL_PKGS[@]}") ]]
}

if all_installed; then
    exit 0
fi
configure_apt
install_packages
log "host packages are installed"
