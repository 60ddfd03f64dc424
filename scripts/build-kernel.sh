#!/usr/bin/env bash
# Build the guests' arm64 kernel, unmodified, from a Debian linux-source
# package (linux-source-7.2 by default) and guest/kernel.config, and the
# pci_endpoint kselftest from the same tree, statically linked.
#
# usage: scripts/build-kernel.sh
# environment:
#   LINUX_SOURCE_PKG  the linux-source-X.Y package to build (installed)
#   LAB_KERNEL_SRC    or: a kernel source tree or tarball of your own
#   LAB_KERNEL_PATCHES  patch files (-p1, space-separated) applied to a
#                     copy of that tree: a variant kernel, built beside
#                     the unmodified one (the fault scenarios use it)
#
# Prints the output directory on stdout; it holds Image and the test
# program (pci_endpoint_test, or pcitest for kernels before 6.15).
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

fragment=$LAB_ROOT/guest/kernel.config
make_args=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)

# The symbols without which the lab cannot work at all; the others are
# only reported when a kernel does not have them.
REQUIRED_SYMBOLS=(
    CONFIG_BLK_DEV_INITRD CONFIG_SERIAL_AMBA_PL011_CONSOLE CONFIG_DEVTMPFS
    CONFIG_PCI_HOST_GENERIC CONFIG_PCIE_DW_PLAT_EP CONFIG_PCI_ENDPOINT_CONFIGFS
    CONFIG_PCI_EPF_TEST CONFIG_PCI_ENDPOINT_TEST
)

kernel_source() {
    local tarball ver
    if [[ -n ${LAB_KERNEL_SRC:-} ]]; then
        [[ -e $LAB_KERNEL_SRC ]] || die "LAB_KERNEL_SRC=$LAB_KERNEL_SRC does not exist"
        if [[ -d $LAB_KERNEL_SRC ]]; then
            src=$(cd "$LAB_KERNEL_SRC" && pwd)
            src_id="dir:$src"
            return
        fi
        tarball=$(realpath "$LAB_KERNEL_SRC")
        src_id="tar:$tarball:$(stat -c %s:%Y "$tarball")"
    else
        tarball=/usr/src/$LINUX_SOURCE_PKG.tar.xz
        ver=$(dpkg-query -W -f='${Version}' "$LINUX_SOURCE_PKG" 2>/dev/null) ||
            die "$LINUX_SOURCE_PKG is not installed: run scripts/setup-host.sh"
        src_id="pkg:$LINUX_SOURCE_PKG:$ver"
    fi
    src=$LAB_CACHE/linux/src-$(hash_str "$src_id")
    if [[ ! -f $src/.lab-extracted ]]; then
        log "unpacking $tarball"
        rm -rf "$src.tmp"
        mkdir -p "$src.tmp"
        tar -xf "$tarball" -C "$src.tmp" --strip-components=1
        touch "$src.tmp/.lab-extracted"
        rm -rf "$src"
        mv "$src.tmp" "$src"
    fi
}

# A variant: the tree, hard-linked, with LAB_KERNEL_PATCHES applied to
# copies of the files they touch (the original tree stays unmodified).
patch_source() {
    local -a patches
    local variant f
    read -r -a patches <<<"${LAB_KERNEL_PATCHES:-}"
    ((${#patches[@]})) || return 0
    for f in "${patches[@]}"; do
        [[ -f $f ]] || die "LAB_KERNEL_PATCHES: $f does not exist"
    done
    src_id="$src_id patches:$(hash_of "${patches[@]}")"
    variant=$LAB_CACHE/linux/src-$(hash_str "$src_id")
    if [[ ! -f $variant/.lab-patched ]]; then
        log "making a variant of $src with ${patches[*]}"
        rm -rf "$variant.tmp"
        cp -al "$src" "$variant.tmp"
        for f in "${patches[@]}"; do
            sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$f" | while read -r t; do
                cp --remove-destination "$src/$t" "$variant.tmp/$t"
            done
            patch -d "$variant.tmp" -p1 --batch --quiet <"$f" >&2 ||
                die "$(basename "$f") does not apply to $src"
        done
        touch "$variant.tmp/.lab-patched"
        rm -rf "$variant"
        mv "$variant.tmp" "$variant"
    fi
    src=$variant
}

configure_kernel() {
    [[ -f $out/.config ]] && return 0
    log "configuring $(make -s -C "$src" kernelversion) from guest/kernel.config"
    mkdir -p "$out"
    make -s -C "$src" O="$out" "${make_args[@]}" \
        KCONFIG_ALLCONFIG="$fragment" allnoconfig >&2 ||
        die "the kernel configuration failed"
    check_config
}

# Every "=y" and "=m" of the fragment must have survived the dependency
# checks.
check_config() {
    local sym val missing=() fatal=()
    while IFS='=' read -r sym val; do
        grep -qx "$sym=$val" "$out/.config" || missing+=("$sym")
    done < <(grep -E '^CONFIG_[A-Z0-9_]+=[ym]$' "$fragment")
    ((${#missing[@]} == 0)) && return 0
    log "warning: this kernel does not enable: ${missing[*]}"
    for sym in "${REQUIRED_SYMBOLS[@]}"; do
        [[ " ${missing[*]} " == *" $sym "* ]] && fatal+=("$sym")
    done
    if ((${#fatal[@]})); then
        rm -f "$out/.config"
        die "the lab needs ${fatal[*]}"
    fi
}

build_test_program() {
    local cc=aarch64-linux-gnu-gcc kst=$src/tools/testing/selftests
    if [[ -f $kst/pci_endpoint/pci_endpoint_test.c ]]; then
        [[ $out/pci_endpoint_test -nt $kst/pci_endpoint/pci_endpoint_test.c ]] && return
        log "building the pci_endpoint kselftest (static)"
        $cc -static -O2 -Wall -I"$kst" -o "$out/pci_endpoint_test" \
            "$kst/pci_endpoint/pci_endpoint_test.c" >&2 ||
            die "the pci_endpoint kselftest does not build"
    elif [[ -f $src/tools/pci/pcitest.c ]]; then
        [[ $out/pcitest -nt $src/tools/pci/pcitest.c ]] && return
        log "this kernel has no pci_endpoint kselftest: building tools/pci/pcitest"
        $cc -static -O2 -I"$src/include/uapi" -o "$out/pcitest" \
            "$src/tools/pci/pcitest.c" >&2 || die "pcitest does not build"
    else
        die "this kernel has neither the pci_endpoint kselftest nor tools/pci"
    fi
}

# The fragment's modules (=m), installed under $out/modules-root for the
# initramfs, with the modules.dep that modprobe reads
build_modules() {
    rm -rf "$out/modules-root"
    grep -qx 'CONFIG_MODULES=y' "$out/.config" || return 0
    log "building the kernel's modules"
    make -s -C "$src" O="$out" "${make_args[@]}" -j "$LAB_JOBS" modules >&2 &&
        make -s -C "$src" O="$out" "${make_args[@]}" INSTALL_MOD_STRIP=1 \
            INSTALL_MOD_PATH="$out/modules-root" DEPMOD=/sbin/depmod \
            modules_install >&2 ||
        die "the kernel's modules do not build"
}

build_kernel() {
    kernel_source
    patch_source
    local gcc_ver
    gcc_ver=$(aarch64-linux-gnu-gcc -dumpfullversion 2>/dev/null) ||
        die "aarch64-linux-gnu-gcc is missing: run scripts/setup-host.sh"
    out=$LAB_CACHE/linux/build-$(hash_str "$src_id $(hash_of "$fragment") $gcc_ver")
    configure_kernel
    # The directory is named by every input: once built, it stays built
    # (and a make that finds nothing to do still costs seconds).
    if [[ ! -f $out/.lab-built || ! -f $out/Image ]]; then
        log "building the kernel Image in $out"
        make -s -C "$src" O="$out" "${make_args[@]}" -j "$LAB_JOBS" Image >&2 ||
            die "the kernel build failed"
        cp -p "$out/arch/arm64/boot/Image" "$out/Image"
        build_modules
        touch "$out/.lab-built"
    fi
    build_test_program
    echo "$out"
}

with_lock kernel build_kernel
