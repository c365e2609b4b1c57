#!/usr/bin/env bash
# Builds the virtio integration tests' board/guest helpers into OUTDIR (called by
# images/build.sh; cached like it: OUTPUT.inputs holds the hash of what it was built from):
#   refvmm-tool                 static aarch64 test tool (integration/tools/refvmm-tool.c)
#   virtio-disk.ext4.gz         ext4 test image with known files (make-disk.py)
#   virtio-disk.sha256          manifest of those files (sha256sum format, ./paths)
#   virtio-disk.size            image size in bytes
# Usage: integration/tools/build.sh OUTDIR     Environment: CROSS (default aarch64-linux-gnu-)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: build.sh OUTDIR}
cross=${CROSS:-aarch64-linux-gnu-}
mkdir -p "$out"

log() { echo "tools: $*"; }
up_to_date() { [ -f "$1" ] && [ -f "$1.inputs" ] && [ "$(cat "$1.inputs")" = "$2" ]; }
mark_built() { printf '%s\n' "$2" >"$1.inputs.tmp" && mv "$1.inputs.tmp" "$1.inputs"; }

command -v "${cross}gcc" >/dev/null || { echo "tools: error: ${cross}gcc missing (run ci/install-deps.sh)" >&2; exit 1; }
cflags=(-static -s -O2 -pthread -std=gnu11 -Wall -Wextra -Werror)
key="tool $(cd "$here" && sha256sum refvmm-tool.c build.sh | sha256sum | cut -d' ' -f1) $("${cross}gcc" -dumpfullversion) ${cflags[*]}"
if up_to_date "$out/refvmm-tool" "$key"; then
	log "refvmm-tool up to date"
else
	log "building refvmm-tool (static aarch64)…"
	"${cross}gcc" "${cflags[@]}" -o "$out/refvmm-tool.tmp" "$here/refvmm-tool.c"
	mv "$out/refvmm-tool.tmp" "$out/refvmm-tool"
	mark_built "$out/refvmm-tool" "$key"
fi

mkfs=$(command -v mkfs.ext4 || PATH=/sbin:/usr/sbin command -v mkfs.ext4 || true)
[ -n "$mkfs" ] || { echo "tools: error: mkfs.ext4 missing (install e2fsprogs: ci/install-deps.sh)" >&2; exit 1; }
key="disk $(cd "$here" && sha256sum make-disk.py build.sh | sha256sum | cut -d' ' -f1) $("$mkfs" -V 2>&1 | sed -n 1p)"
if up_to_date "$out/virtio-disk.ext4.gz" "$key" && [ -f "$out/virtio-disk.sha256" ]; then
	log "virtio-disk up to date"
else
	log "building the ext4 test disk (mkfs.ext4 -d)…"
	/usr/bin/python3 "$here/make-disk.py" "$out"
	mark_built "$out/virtio-disk.ext4.gz" "$key"
fi
