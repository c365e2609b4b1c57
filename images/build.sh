#!/usr/bin/env bash
# Builds the images of the emulated aarch64 board tier from Debian packages, with caching:
#   Image, KERNEL_VERSION        the stock Debian arm64 kernel (board L1 and guest L2)
#   l2-initramfs.cpio            guest initramfs: busybox, /init, payloads, virtio/vsock/ext4 modules
#   board-base.cpio              board initramfs: busybox, /init, /guest/Image, /guest/initramfs.cpio
#   board.cpio                   board-base.cpio + a small cpio holding /usr/bin/vmm
#   vfio-modules/                VFIO modules + refvmm-vfio-bind for passthrough tests, in the
#                                board as /lib/modules/vfio/*.ko, /usr/bin/refvmm-vfio-bind
# The virtio tests' helpers (integration/tools/build.sh, cached in work/tools) go into both
# initramfs: /usr/bin/refvmm-tool (guest and board) and, on the board, the ext4 test disk
# /usr/share/refvmm/virtio-disk.ext4.gz with its manifest virtio-disk.sha256.
# Each output has OUTPUT.inputs next to it (hashes of scripts, package versions); an output
# is rebuilt only when that changes. Downloads are cached by ci/fetch-debs.sh.
# Environment: REFVMM_IMAGES_OUT (output dir), REFVMM_VMM (aarch64 VMM binary).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
out=${REFVMM_IMAGES_OUT:-$root/build/images/aarch64}
vmm=${REFVMM_VMM:-$root/build/aarch64/vmm}
work=$out/work
debs=$work/debs
mkcpio=("/usr/bin/python3" "$here/mkcpio.py")
KERNEL_PKG_PATTERN='linux-image-6.1.0-*-arm64'
# Guest modules wanted (plus their dependencies); those built into this kernel are skipped.
L2_MODULES="virtio_mmio virtio_blk virtio_console vsock vmw_vsock_virtio_transport_common
vmw_vsock_virtio_transport ext4 jbd2 mbcache crc16 crc32c_generic gpio_keys evdev"

log() { echo "images: $*"; }
die() { echo "images: error: $*" >&2; exit 1; }

hash_files() { (cd "$here" && eval "sha256sum $*") | sha256sum | cut -d' ' -f1; }

# up_to_date OUTPUT KEY: true when OUTPUT exists and was built from inputs KEY
up_to_date() { [ -f "$1" ] && [ -f "$1.inputs" ] && [ "$(cat "$1.inputs")" = "$2" ]; }
mark_built() { printf '%s\n' "$2" >"$1.inputs.tmp" && mv "$1.inputs.tmp" "$1.inputs"; }

for tool in dpkg-deb depmod modinfo sha256sum apt-get file flock; do
	command -v "$tool" >/dev/null || die "missing host tool '$tool' (run ci/install-deps.sh)"
done
mkdir -p "$out" "$work"
# one build at a time per output directory (parallel `make images` from two shells)
exec 9>"$out/.build.lock"
flock 9
t_start=$(date +%s%N)

# ---------------------------------------------------------------- packages
log "fetching packages (kernel, busybox-static; cached in ~/.cache/reference-vmm)…"
"$root/ci/fetch-debs.sh" "$debs" "$KERNEL_PKG_PATTERN" busybox-static
kpkg=$(cat "$debs/${KERNEL_PKG_PATTERN//\*/_}.name")
kver_pkg=$(cat "$debs/$kpkg.version")
bbver=$(cat "$debs/busybox-static.version")
kdir=$debs/$kpkg
busybox=$debs/busybox-static/bin/busybox
[ -x "$busybox" ] || die "busybox-static has no bin/busybox"
log "kernel package $kpkg $kver_pkg, busybox-static $bbver"

common_hash=$(hash_files build.sh mkcpio.py)

# ---------------------------------------------------------------- test tools and disk
"$root/integration/tools/build.sh" "$work/tools" | sed 's/^/images: /'
tool=$work/tools/refvmm-tool
tool_sum=$(sha256sum "$tool" | cut -d' ' -f1)
disk_sum=$(cd "$work/tools" && cat virtio-disk.ext4.gz virtio-disk.sha256 virtio-disk.size | sha256sum | cut -d' ' -f1)

# ---------------------------------------------------------------- kernel
key="kernel $kpkg $kver_pkg $common_hash"
if up_to_date "$out/Image" "$key"; then
	log "kernel Image up to date"
else
	log "extracting kernel Image…"
	vmlinuz=$(ls "$kdir"/boot/vmlinuz-* | head -1)
	case "$(file -b "$vmlinuz")" in
	*gzip*) gunzip -c "$vmlinuz" >"$out/Image.tmp" ;;
	*"ARM64 boot executable Image"*) cp "$vmlinuz" "$out/Image.tmp" ;;
	*) die "unexpected kernel format: $(file -b "$vmlinuz")" ;;
	esac
	mv "$out/Image.tmp" "$out/Image"
	basename "$(ls -d "$kdir"/lib/modules/*/ | head -1)" >"$out/KERNEL_VERSION"
	mark_built "$out/Image" "$key"
fi
kversion=$(cat "$out/KERNEL_VERSION")

# ---------------------------------------------------------------- VFIO modules (board)
"$here/vfio/build-modules.sh" "$out" "$kpkg"
vfio_sum=$(cd "$out/vfio-modules" && cat ./* | sha256sum | cut -d' ' -f1)

# populate_busybox DIR: busybox with one symlink per applet (names read from the binary)
populate_busybox() {
	local dir=$1 names
	mkdir -p "$dir/bin" "$dir/usr/bin" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/tmp" "$dir/run" "$dir/root" "$dir/etc"
	ln -s bin "$dir/sbin"
	ln -s ../bin "$dir/usr/sbin"
	cp "$busybox" "$dir/bin/busybox"
	chmod 0755 "$dir/bin/busybox"
	# applet names are stored in the binary as one sorted, NUL-separated block starting "[ [["
	names=$(/usr/bin/python3 - "$busybox" <<-'EOF'
		import sys
		d = open(sys.argv[1], "rb").read()
		i = d.find(b"[\0[[\0")
		names = []
		while i >= 0:
		    k = d.index(b"\0", i)
		    if k == i:
		        break
		    names.append(d[i:k].decode())
		    i = k + 1
		need = {"sh", "mount", "modprobe", "devmem", "poweroff", "setsid", "cttyhack", "base64"}
		if names != sorted(names) or not need <= set(names):
		    sys.exit("cannot read the busybox applet list")
		print("\n".join(n for n in names if n != "busybox"))
		EOF
	) || die "could not list busybox applets"
	local n
	for n in $names; do
		ln -s busybox "$dir/bin/$n"
	done
}

# ---------------------------------------------------------------- L2 initramfs
l2_hash=$(hash_files l2/init l2/payloads/*)
key="l2 $kpkg $kver_pkg busybox $bbver $common_hash $l2_hash tool $tool_sum"
if up_to_date "$out/l2-initramfs.cpio" "$key"; then
	log "l2-initramfs up to date"
else
	log "building l2-initramfs.cpio…"
	st=$work/l2-root
	rm -rf "$st"
	mkdir -p "$st"
	populate_busybox "$st"
	cp "$here/l2/init" "$st/init"
	mkdir -p "$st/payloads"
	cp "$here"/l2/payloads/* "$st/payloads/"
	chmod 0755 "$st/init" "$st"/payloads/*
	install -m 0755 "$tool" "$st/usr/bin/refvmm-tool"
	# kernel modules: wanted list plus dependency closure (modinfo depends), then depmod
	msrc=$kdir/lib/modules/$kversion
	mdst=$st/lib/modules/$kversion
	mkdir -p "$mdst"
	declare -A kopath=()
	while IFS= read -r ko; do
		b=$(basename "$ko" .ko); kopath[${b//-/_}]=$ko
	done < <(find "$msrc/kernel" -name '*.ko')
	declare -A done_mods=()
	queue=$L2_MODULES
	while [ -n "${queue// /}" ]; do
		set -- $queue
		m=${1//-/_}; shift; queue="$*"
		[ -z "${done_mods[$m]:-}" ] || continue
		done_mods[$m]=1
		if [ -z "${kopath[$m]:-}" ]; then
			if grep -q "/${m//_/[_-]}.ko\$" "$msrc/modules.builtin"; then
				log "  module $m is built into the kernel"
				continue
			fi
			die "module $m is neither a module nor built into $kversion"
		fi
		rel=${kopath[$m]#"$msrc/"}
		mkdir -p "$mdst/$(dirname "$rel")"
		cp "${kopath[$m]}" "$mdst/$rel"
		deps=$(modinfo -F depends "${kopath[$m]}")
		queue="$queue ${deps//,/ }"
	done
	cp "$msrc/modules.builtin" "$msrc/modules.order" "$mdst/"
	[ ! -f "$msrc/modules.builtin.modinfo" ] || cp "$msrc/modules.builtin.modinfo" "$mdst/"
	depmod -b "$st" "$kversion"
	log "  modules: $(cd "$mdst" && find kernel -name '*.ko' | xargs -n1 basename | sed 's/\.ko$//' | sort | tr '\n' ' ')"
	"${mkcpio[@]}" "$out/l2-initramfs.cpio" --dir "$st" --node c:0600:5:1:/dev/console --node c:0666:1:3:/dev/null
	rm -rf "$st"
	mark_built "$out/l2-initramfs.cpio" "$key"
fi

# ---------------------------------------------------------------- board base
board_hash=$(hash_files board/init)
l2_sum=$(sha256sum "$out/l2-initramfs.cpio" | cut -d' ' -f1)
key="board $kpkg $kver_pkg busybox $bbver $common_hash $board_hash l2 $l2_sum tool $tool_sum disk $disk_sum"
key="$key vfio $vfio_sum"
if up_to_date "$out/board-base.cpio" "$key"; then
	log "board-base up to date"
else
	log "building board-base.cpio…"
	st=$work/board-root
	rm -rf "$st"
	mkdir -p "$st/guest"
	populate_busybox "$st"
	cp "$here/board/init" "$st/init"
	chmod 0755 "$st/init"
	mkdir -p "$st/lib/modules/vfio"
	cp "$out"/vfio-modules/*.ko "$st/lib/modules/vfio/"
	install -m 0755 "$out/vfio-modules/refvmm-vfio-bind" "$st/usr/bin/refvmm-vfio-bind"
	cp "$out/Image" "$st/guest/Image"
	cp "$out/l2-initramfs.cpio" "$st/guest/initramfs.cpio"
	chmod 0644 "$st/guest/Image" "$st/guest/initramfs.cpio"
	install -m 0755 "$tool" "$st/usr/bin/refvmm-tool"
	mkdir -p "$st/usr/share/refvmm"
	install -m 0644 "$work/tools/virtio-disk.ext4.gz" "$work/tools/virtio-disk.sha256" \
		"$work/tools/virtio-disk.size" "$st/usr/share/refvmm/"
	"${mkcpio[@]}" "$out/board-base.cpio" --dir "$st" --node c:0600:5:1:/dev/console --node c:0666:1:3:/dev/null
	rm -rf "$st"
	mark_built "$out/board-base.cpio" "$key"
fi

# ---------------------------------------------------------------- board (base + VMM)
base_sum=$(sha256sum "$out/board-base.cpio" | cut -d' ' -f1)
if [ -f "$vmm" ]; then
	file -b "$vmm" | grep -q 'ARM aarch64' || die "$vmm is not an aarch64 binary: $(file -b "$vmm")"
	vmm_sum=$(sha256sum "$vmm" | cut -d' ' -f1)
else
	vmm_sum=none
fi
key="boardfull $base_sum vmm $vmm_sum $common_hash"
if up_to_date "$out/board.cpio" "$key"; then
	log "board.cpio up to date"
else
	if [ "$vmm_sum" = none ]; then
		log "building board.cpio without the VMM…"
		cp "$out/board-base.cpio" "$out/board.cpio.tmp"
	else
		log "building board.cpio (board-base + /usr/bin/vmm)…"
		"${mkcpio[@]}" "$work/vmm.cpio" --file "$vmm:/usr/bin/vmm:0755"
		cat "$out/board-base.cpio" "$work/vmm.cpio" >"$out/board.cpio.tmp"
	fi
	mv "$out/board.cpio.tmp" "$out/board.cpio"
	mark_built "$out/board.cpio" "$key"
fi
[ "$vmm_sum" != none ] || echo "images: WARNING: $vmm does not exist (run 'make aarch64'); board.cpio has NO /usr/bin/vmm" >&2

t_ms=$((($(date +%s%N) - t_start) / 1000000))
log "done in $((t_ms / 1000)).$(printf %03d $((t_ms % 1000))) s ($(cd "$out" && du -h Image l2-initramfs.cpio board.cpio | awk '{print $2 " " $1}' | paste -sd, | sed 's/,/, /g'))"
