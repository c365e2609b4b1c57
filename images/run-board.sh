#!/usr/bin/env bash
# Boots the emulated aarch64 board (QEMU TCG, nested virtualization) with board.cpio, console
# on stdio. Usage: images/run-board.sh [--autorun] [--append "extra kernel args"] [-- extra qemu args]
#   --autorun   the board boots the default guest with /usr/bin/vmm, shows its console and
#               powers off; the script exits with the VMM's exit status (from REFVMM-AUTORUN-EXIT).
# Without --autorun you get a root shell on the board (quit QEMU with Ctrl-A x).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
out=${REFVMM_IMAGES_OUT:-$root/build/images/aarch64}
qemu=${QEMU_AARCH64:-qemu-system-aarch64}
autorun=0
# pl061_gpio must never bind on the board: once unbound, 6.1 leaves its parent IRQ
# unrequestable and VFIO cannot route it (see docs/passthrough.md)
append="console=ttyAMA0 panic=-1 initcall_blacklist=pl061_gpio_driver_init"
extra=()
while [ $# -gt 0 ]; do
	case "$1" in
	--autorun) autorun=1; shift ;;
	--append) append="$append $2"; shift 2 ;;
	--) shift; extra=("$@"); break ;;
	-h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run-board: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
for f in Image board.cpio; do
	[ -f "$out/$f" ] || { echo "run-board: $out/$f is missing: run 'make images'" >&2; exit 2; }
done
[ "$autorun" = 0 ] || append="$append refvmm.autorun=1"
cmd=("$qemu" -M virt,virtualization=on,gic-version=3 -cpu max,pauth=off -smp 2 -m 2048
	-nographic -no-reboot -kernel "$out/Image" -initrd "$out/board.cpio" -append "$append" "${extra[@]}")
if [ "$autorun" = 0 ]; then
	exec "${cmd[@]}"
fi
# autorun: show the console and recover the VMM exit status from the board's marker line
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
"${cmd[@]}" </dev/null | tee "$log"
qrc=${PIPESTATUS[0]}
set -e
rc=$(sed -n 's/.*REFVMM-AUTORUN-EXIT rc=\([0-9]*\).*/\1/p' "$log" | tail -1)
if [ -z "$rc" ]; then
	echo "run-board: the board did not report the VMM exit status (qemu exit $qrc)" >&2
	exit 1
fi
echo "run-board: VMM exit status $rc" >&2
exit "$rc"
