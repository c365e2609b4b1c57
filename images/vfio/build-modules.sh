#!/usr/bin/env bash
# Builds the VFIO modules the emulated aarch64 board needs for platform passthrough (the
# Debian arm64 kernel has VFIO but neither VFIO_PLATFORM, VFIO_AMBA nor VFIO_NOIOMMU):
#   vfio (with CONFIG_VFIO_NOIOMMU), vfio_virqfd, vfio-platform-base, vfio-platform, vfio-amba
# out of tree (make M=) from Debian packages only, for exactly the kernel images/build.sh
# picked: the driver sources of linux-source-6.1 (only the files Kbuild lists) with
# reset-not-required.patch, against linux-headers-<abi>-arm64 + -common + linux-kbuild-6.1
# (the kbuild tools are host binaries: fetched for the host's architecture), all of the
# kernel package's version, cross-compiled with aarch64-linux-gnu-gcc-12.
# Output: OUT/vfio-modules/*.ko (debug info stripped) and refvmm-vfio-bind (the board's
# load-and-bind script); OUT/vfio-modules.inputs records what they were built from: the
# modules are rebuilt only when that changes (the bind script is refreshed every time).
# Built modules are also kept in the download cache (~/.cache/reference-vmm/vfio-modules/,
# keyed by a hash of those inputs), so a fresh checkout on the same machine does not
# rebuild them.
# Usage: images/vfio/build-modules.sh OUT_DIR KERNEL_PKG
#   OUT_DIR     build/images/aarch64, after images/build.sh extracted the kernel there
#               (KERNEL_VERSION, work/debs/KERNEL_PKG.version); called under its build lock
#   KERNEL_PKG  the linux-image-6.1.0-NN-arm64 package images/build.sh uses
# Environment: REFVMM_CROSS_COMPILE (default aarch64-linux-gnu-, empty on an arm64 host).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$(dirname "$here")")
[ $# -eq 2 ] || { echo "usage: $0 OUT_DIR KERNEL_PKG" >&2; exit 2; }
out=$(cd "$1" && pwd)
kpkg=$2
work=$out/work
debs=$work/debs
vwork=$work/vfio
dest=$out/vfio-modules
MODULES="vfio vfio_virqfd vfio-platform-base vfio-platform vfio-amba"
# the driver sources Kbuild needs, relative to drivers/vfio of the kernel source
SOURCES="vfio_main.c container.c iova_bitmap.c vfio.h virqfd.c platform/vfio_platform.c
platform/vfio_platform_common.c platform/vfio_platform_irq.c platform/vfio_amba.c
platform/vfio_platform_private.h"

log() { echo "images: vfio: $*"; }
die() { echo "images: vfio: error: $*" >&2; exit 1; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
fmt_s() { printf '%d.%01d s' $(($1 / 1000)) $((($1 % 1000) / 100)); }

[ -f "$out/KERNEL_VERSION" ] && [ -f "$debs/$kpkg.version" ] ||
	die "run images/build.sh (no kernel extracted in $out)"
kversion=$(cat "$out/KERNEL_VERSION")        # e.g. 6.1.0-56-arm64
kver_pkg=$(cat "$debs/$kpkg.version")        # e.g. 6.1.192-2
abi=${kversion%-arm64}
[ "$kpkg" = "linux-image-$kversion" ] || die "kernel package $kpkg does not match KERNEL_VERSION $kversion"
hostarch=$(dpkg --print-architecture)
if [ "$(uname -m)" = aarch64 ]; then cross=${REFVMM_CROSS_COMPILE-}; else cross=${REFVMM_CROSS_COMPILE-aarch64-linux-gnu-}; fi
gcc=${cross}gcc-12
command -v "$gcc" >/dev/null || die "missing $gcc (run ci/install-deps.sh)"
for tool in make patch xz tar modinfo "${cross}strip"; do
	command -v "$tool" >/dev/null || die "missing host tool '$tool' (run ci/install-deps.sh)"
done

# refvmm-vfio-bind travels with the modules (images/build.sh puts both on the board)
mkdir -p "$dest"
cmp -s "$here/refvmm-vfio-bind" "$dest/refvmm-vfio-bind" || install -m 0755 "$here/refvmm-vfio-bind" "$dest/refvmm-vfio-bind"

inputs_hash=$(cd "$here" && sha256sum build-modules.sh Kbuild reset-not-required.patch | sha256sum | cut -d' ' -f1)
key="vfio-modules $kpkg $kver_pkg host $hostarch $("$gcc" --version | head -1) $inputs_hash"
have_all() { local m; for m in $MODULES; do [ -f "$dest/$m.ko" ] || return 1; done; }
if [ -f "$out/vfio-modules.inputs" ] && [ "$(cat "$out/vfio-modules.inputs")" = "$key" ] && have_all; then
	log "modules up to date ($kversion)"
	exit 0
fi
cache=${REFVMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reference-vmm}/vfio-modules
cached=$cache/$(printf '%s' "$key" | sha256sum | cut -c1-16)
finish() { # install the modules in $1 as the output
	rm -rf "$dest.tmp"
	mkdir -p "$dest.tmp"
	cp "$1"/*.ko "$dest.tmp/"
	install -m 0755 "$here/refvmm-vfio-bind" "$dest.tmp/refvmm-vfio-bind"
	rm -rf "$dest"
	mv "$dest.tmp" "$dest"
	printf '%s\n' "$key" >"$out/vfio-modules.inputs.tmp" && mv "$out/vfio-modules.inputs.tmp" "$out/vfio-modules.inputs"
}
if [ -f "$cached/.complete" ]; then
	finish "$cached"
	log "modules for $kversion taken from the cache ($cached)"
	exit 0
fi
t0=$(date +%s%N)

# ---------------------------------------------------------------- packages
hdr_arch=linux-headers-$abi-arm64
hdr_common=linux-headers-$abi-common
log "fetching $hdr_arch, $hdr_common, linux-source-6.1, linux-kbuild-6.1 ($hostarch)…"
if [ "$hostarch" = arm64 ]; then
	"$root/ci/fetch-debs.sh" "$debs" "$hdr_arch" "$hdr_common" linux-source-6.1 linux-kbuild-6.1
	kbuild_dir=$debs/linux-kbuild-6.1
else
	"$root/ci/fetch-debs.sh" "$debs" "$hdr_arch" "$hdr_common" linux-source-6.1
	"$root/ci/fetch-debs.sh" -a "$hostarch" "$work/debs-$hostarch" linux-kbuild-6.1
	kbuild_dir=$work/debs-$hostarch/linux-kbuild-6.1
fi
for p in "$debs/$hdr_arch" "$debs/$hdr_common" "$debs/linux-source-6.1" "$kbuild_dir"; do
	v=$(cat "$p.version")
	[ "$v" = "$kver_pkg" ] || die "$(basename "$p") is version $v but the kernel $kpkg is $kver_pkg:" \
		"the package lists changed in between; remove ~/.cache/reference-vmm/apt-* and retry"
done
log "packages at $kver_pkg ($(ms_since "$t0") ms)"

# ---------------------------------------------------------------- driver sources (cached)
pristine=$vwork/src-$kver_pkg
if [ ! -f "$pristine/.complete" ]; then
	t1=$(date +%s%N)
	log "extracting drivers/vfio sources from linux-source-6.1 $kver_pkg…"
	rm -rf "$vwork"/src-*
	mkdir -p "$pristine"
	tarball=$(ls "$debs"/linux-source-6.1/usr/src/linux-source-6.1.tar.* | head -1)
	members=()
	for f in $SOURCES; do members+=("linux-source-6.1/drivers/vfio/$f"); done
	# --occurrence: tar stops once every member is out (the rest of the 1.4 GB stream is
	# not decompressed); xz then dies of SIGPIPE, which is expected
	{ xz -dc "$tarball" || true; } | tar -x -C "$pristine" --strip-components=3 --occurrence=1 "${members[@]}"
	for f in $SOURCES; do [ -f "$pristine/$f" ] || die "linux-source-6.1 has no drivers/vfio/$f"; done
	touch "$pristine/.complete"
	log "  sources extracted in $(fmt_s "$(ms_since "$t1")")"
fi

# ---------------------------------------------------------------- kernel build tree
# The three packages unpacked into one tree, as dpkg would install them under /: the
# arch headers' scripts/ and tools/ are relative links into linux-kbuild-6.1; their
# Makefile includes the common headers by absolute path, rewritten here.
kroot=$vwork/kroot
rm -rf "$kroot"
mkdir -p "$kroot"
for p in "$debs/$hdr_arch" "$debs/$hdr_common" "$kbuild_dir"; do
	cp -al "$p/usr" "$kroot/"
done
kbuild=$kroot/usr/src/$hdr_arch
rm "$kbuild/Makefile"
sed "s#^include /usr/src/#include $kroot/usr/src/#" "$debs/$hdr_arch/usr/src/$hdr_arch/Makefile" >"$kbuild/Makefile"
grep -q "^include $kroot/usr/src/$hdr_common/Makefile\$" "$kbuild/Makefile" ||
	die "unexpected $hdr_arch Makefile (no 'include /usr/src/$hdr_common/Makefile')"

# ---------------------------------------------------------------- build
src=$vwork/build
rm -rf "$src"
cp -a "$pristine" "$src"
rm -f "$src/.complete"
patch -d "$src" -p1 -s --no-backup-if-mismatch <"$here/reset-not-required.patch"
cp "$here/Kbuild" "$src/Kbuild"
t1=$(date +%s%N)
log "building $MODULES for $kversion (make M=, ARCH=arm64${cross:+ CROSS_COMPILE=$cross})…"
if ! make -C "$kbuild" M="$src" ARCH=arm64 CROSS_COMPILE="$cross" -j"$(nproc)" modules >"$vwork/build.log" 2>&1; then
	tail -n 40 "$vwork/build.log" >&2
	die "module build failed (log: $vwork/build.log)"
fi
log "  compiled in $(fmt_s "$(ms_since "$t1")")"

# the kernel's own modules carry the vermagic ours must have
ref=$(find "$debs/$kpkg/lib/modules/$kversion" -name 'vfio_virqfd.ko' | head -1)
[ -n "$ref" ] || die "$kpkg has no vfio_virqfd.ko to compare vermagic with"
want_magic=$(modinfo -F vermagic "$ref")
rm -rf "$vwork/out"
mkdir -p "$vwork/out"
for m in $MODULES; do
	ko=$src/$m.ko
	[ -f "$ko" ] || die "the build made no $m.ko"
	magic=$(modinfo -F vermagic "$ko")
	[ "$magic" = "$want_magic" ] || die "$m.ko has vermagic '$magic', the kernel wants '$want_magic'"
	"${cross}strip" --strip-debug -o "$vwork/out/$m.ko" "$ko"
done
modinfo -F parm "$vwork/out/vfio.ko" | grep -q '^enable_unsafe_noiommu_mode:' ||
	die "vfio.ko has no enable_unsafe_noiommu_mode parameter (CONFIG_VFIO_NOIOMMU not applied)"
finish "$vwork/out"
# keep a copy in the cache (only the newest build: older keys are dropped)
rm -rf "$cache"
mkdir -p "$cached"
cp "$vwork/out"/*.ko "$cached/"
printf '%s\n' "$key" >"$cached/inputs"
touch "$cached/.complete"
rm -rf "$kroot" "$src" "$vwork/out"
log "built $(cd "$dest" && ls ./*.ko | sed 's#^\./##' | paste -sd' ') ($(du -ch "$dest"/*.ko | tail -1 | cut -f1)) in $(fmt_s "$(ms_since "$t0")")"
