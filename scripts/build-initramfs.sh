#!/usr/bin/env bash
# Build the guests' initramfs: Debian's busybox-static for arm64, the
# lab's /init and job scripts from guest/, the lab's benchmark program
# (guest/bench/), and the test program that scripts/build-kernel.sh
# built from the kernel tree.
#
# usage: scripts/build-initramfs.sh KERNEL_OUT_DIR
# Prints the path of the gzipped cpio archive on stdout.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

kout=${1:?usage: build-initramfs.sh KERNEL_OUT_DIR}

# busybox-static:arm64 is downloaded and unpacked into the cache, not
# installed: installed, it would put an arm64 /bin/busybox on the host.
fetch_busybox() {
    local ver deb
    ver=$(apt_candidate busybox-static:arm64)
    [[ -n $ver && $ver != "(none)" ]] ||
        die "busybox-static:arm64 is not available: run scripts/setup-host.sh"
    busybox_dir=$LAB_CACHE/busybox/$(hash_str "$ver")
    [[ -x $busybox_dir/bin/busybox ]] && return 0
    log "downloading busybox-static:arm64 $ver"
    rm -rf "$busybox_dir.tmp"
    mkdir -p "$busybox_dir.tmp"
    (cd "$busybox_dir.tmp" && apt-get download -q "busybox-static:arm64=$ver") >&2 ||
        die "could not download busybox-static:arm64"
    deb=$(ls "$busybox_dir.tmp"/*.deb)
    dpkg-deb -x "$deb" "$busybox_dir.tmp"
    rm -f "$deb"
    rm -rf "$busybox_dir"
    mv "$busybox_dir.tmp" "$busybox_dir"
}

build_initramfs() {
    local inputs tests=() mods=() key out stage f
    fetch_busybox
    for f in pci_endpoint_test pcitest; do
        [[ -f $kout/$f ]] && tests+=("$kout/$f")
    done
    ((${#tests[@]})) || die "no test program in $kout"
    mapfile -t inputs < <(find "$LAB_ROOT/guest" -type f ! -name kernel.config | sort)
    # The kernel's modules (ntb_netdev), for modprobe in the guests
    [[ -d $kout/modules-root/lib/modules ]] &&
        mapfile -t mods < <(find "$kout/modules-root/lib/modules" -type f | sort)
    key=$(hash_of "${inputs[@]}" "${tests[@]}" "${mods[@]}" "$busybox_dir/bin/busybox")
    out=$LAB_CACHE/initramfs/initramfs-$key.cpio.gz
    if [[ ! -f $out ]]; then
        log "building the initramfs"
        stage=$(mktemp -d)
        mkdir -p "$stage"/{bin,lab,dev,proc,sys,tmp}
        cp "$busybox_dir/bin/busybox" "$stage/bin/busybox"
        install -m 755 "$LAB_ROOT/guest/init" "$stage/init"
        install -m 755 "$LAB_ROOT"/guest/lab/* "$stage/lab/"
        install -m 755 "${tests[@]}" "$stage/bin/"
        ((${#mods[@]})) && cp -a "$kout/modules-root/lib" "$stage/"
        aarch64-linux-gnu-gcc -static -O2 -Wall -o "$stage/bin/lab-bench" \
            "$LAB_ROOT/guest/bench/lab-bench.c" >&2 ||
            die "guest/bench/lab-bench.c does not build"
        mkdir -p "$(dirname "$out")"
        (cd "$stage" && find . | sort | cpio -o -H newc --quiet -R 0:0 | gzip -9n) >"$out.tmp"
        mv "$out.tmp" "$out"
        rm -rf "$stage"
    fi
    echo "$out"
}

with_lock initramfs build_initramfs
