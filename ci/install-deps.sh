#!/usr/bin/env bash
# Install the Debian 12 packages the build, the images and the tests need, if any
# are missing. Fast no-op when everything is present. Usage: ci/install-deps.sh
set -euo pipefail
pkgs=(
	make gcc libc6-dev pkg-config
	libfdt-dev libcmocka-dev device-tree-compiler          # host build + unit tests
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross           # cross build of the aarch64 VMM
	clang llvm libclang-rt-14-dev gcovr                    # fuzzing (libFuzzer) and coverage (gcovr: make coverage)
	qemu-system-arm qemu-system-x86                        # emulated boards
	cpio xz-utils zstd kmod file ca-certificates e2fsprogs # image building (e2fsprogs: ext4 test disk)
	patch                                                  # images/vfio: out-of-tree VFIO modules
	python3 python3-pytest python3-labgrid                 # integration suite
)
missing=()
for p in "${pkgs[@]}"; do
	s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[ "$s" = "install ok installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing missing Debian packages: ${missing[*]}" >&2
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null; then SUDO=sudo; else
		echo "install-deps: not root and no sudo; install these packages: ${missing[*]}" >&2
		exit 1
	fi
else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2
$SUDO apt-get install -y -q "${missing[@]}" >&2
