#!/usr/bin/env bash
# Build qemu-system-aarch64 and the project's qtests from Debian's qemu
# source package, with our patches applied and our files overlaid.
#
# usage: scripts/build-qemu.sh [release|asan|fuzz]
#   release  the lab's QEMU (default)
#   asan     the same with AddressSanitizer and UndefinedBehaviorSanitizer
#   fuzz     qemu-fuzz-aarch64: QEMU's libFuzzer build, by clang, with
#            ASan and UBSan, from a tree of its own that also has
#            qemu/patches-fuzz/ applied
#
# Prints the build directory on stdout.  The source tree and the build
# directory are cached by their inputs, so after editing a file in
# hw/pci-ep/ only that file is compiled again.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

flavor=${1:-release}
case $flavor in
release) extra_cfg=(--disable-debug-info) ;;
asan) extra_cfg=(--disable-debug-info --enable-asan --enable-ubsan) ;;
fuzz) extra_cfg=(--cc=clang --cxx=clang++ --enable-fuzzing --enable-asan
                 --enable-ubsan --disable-debug-info) ;;
*) die "unknown flavor '$flavor' (release, asan or fuzz)" ;;
esac

patches=("$LAB_ROOT"/qemu/patches/*.patch)
[[ $flavor == fuzz ]] && patches+=("$LAB_ROOT"/qemu/patches-fuzz/*.patch)
src_key=$(hash_str "$QEMU_DSC_SHA256 $(hash_of "${patches[@]}")")
src=$LAB_CACHE/qemu/src-$src_key
dl=$LAB_CACHE/qemu/dl

config=(
    --python="$LAB_PYTHON"
    --target-list=aarch64-softmmu
    --without-default-features
    --without-default-devices
    --with-devices-aarch64=pcie-ep-lab
    --enable-fdt=system
    --enable-tcg
    --disable-docs --disable-tools --disable-user --disable-guest-agent
    --disable-install-blobs --disable-werror
    "${extra_cfg[@]}"
)
build=$LAB_CACHE/qemu/build-$src_key-$flavor-$(hash_str "${config[*]}")

# Check every file of the source package against the pinned .dsc.
verify_source_package() {
    local got
    got=$(sha256sum "$dl/$QEMU_DSC" | cut -d' ' -f1)
    [[ $got == "$QEMU_DSC_SHA256" ]] ||
        die "$QEMU_DSC has sha256 $got, expected $QEMU_DSC_SHA256"
    awk '/^Checksums-Sha256:/ {on = 1; next} /^[^ ]/ {on = 0}
         on && NF == 3 {print $1 "  " $3}' "$dl/$QEMU_DSC" |
        (cd "$dl" && sha256sum --quiet -c -) ||
        die "the files of $QEMU_DSC do not match its checksums"
}

fetch_source_package() {
    mkdir -p "$dl"
    if [[ ! -f $dl/$QEMU_DSC ]]; then
        log "downloading Debian's source package qemu $QEMU_VERSION"
        (cd "$dl" && apt-get source --download-only "qemu=$QEMU_VERSION") >&2 ||
            die "could not download qemu $QEMU_VERSION: run scripts/setup-host.sh first"
    fi
    verify_source_package
}

prepare_source() {
    [[ -f $src/.lab-prepared ]] && return 0
    fetch_source_package
    log "unpacking qemu $QEMU_VERSION (Debian's patches applied) into $src"
    rm -rf "$src.tmp"
    dpkg-source --no-copy -x "$dl/$QEMU_DSC" "$src.tmp" >/dev/null 2>&1 ||
        die "dpkg-source could not unpack $QEMU_DSC"
    for p in "${patches[@]}"; do
        log "applying $(basename "$p")"
        patch -d "$src.tmp" -p1 --batch --quiet <"$p" >&2 ||
            die "$(basename "$p") does not apply"
    done
    touch "$src.tmp/.lab-prepared"
    rm -rf "$src"
    mv "$src.tmp" "$src"
}

# Copy our files into the tree, and remove the ones we no longer have.
overlay_files() {
    local manifest=$src/.lab-overlay f changed=0
    local -a files
    mapfile -t files < <(cd "$LAB_ROOT" &&
        find hw/pci-ep include/hw/pci-ep tests/qtest -type f | sort)
    if [[ -f $manifest ]]; then
        while read -r f; do
            if [[ ! -f $LAB_ROOT/$f ]]; then
                rm -f "$src/$f"
                changed=1
            fi
        done <"$manifest"
    fi
    for f in "${files[@]}"; do
        sync_file "$LAB_ROOT/$f" "$src/$f" && changed=1
    done
    printf '%s\n' "${files[@]}" >"$manifest"
    ((changed)) && log "overlaid changed files onto $src"
    return 0
}

qtest_targets() {
    local t
    for t in "$LAB_ROOT"/tests/qtest/*-test.c; do
        t=$(basename "$t" .c)
        printf 'tests/qtest/%s\n' "$t"
    done
}

build_qemu() {
    if [[ $flavor == fuzz ]]; then
        "$LAB_ROOT"/scripts/setup-host.sh --fuzz >&2 ||
            die "could not install clang and libFuzzer"
    fi
    prepare_source
    overlay_files
    if [[ ! -f $build/build.ninja ]]; then
        log "configuring the $flavor build in $build"
        rm -rf "$build"
        mkdir -p "$build"
        (cd "$build" && "$src/configure" "${config[@]}") >"$build.configure.log" 2>&1 ||
            die "configure failed, see $build.configure.log"
    fi
    if [[ $flavor == fuzz ]]; then
        log "building qemu-fuzz-aarch64"
        ninja -C "$build" -j "$LAB_JOBS" qemu-fuzz-aarch64 >&2 ||
            die "the fuzzing build failed"
        return 0
    fi
    log "building qemu-system-aarch64 and the qtests ($flavor)"
    # shellcheck disable=SC2046
    ninja -C "$build" -j "$LAB_JOBS" qemu-system-aarch64 $(qtest_targets) >&2 ||
        die "the $flavor QEMU build failed"
}

with_lock "qemu-$flavor" build_qemu
echo "$build"
