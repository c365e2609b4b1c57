#!/usr/bin/env bash
# Download Debian packages of a foreign architecture (default arm64) into a cache
# and unpack them. Usage: ci/fetch-debs.sh [-a ARCH] DEST_DIR PKG...
# PKG may be an exact name or a name pattern resolved against the mirror's lists
# (e.g. 'linux-image-6.1.0-*-arm64' picks the newest unsigned 6.1 kernel).
# Each package is unpacked into DEST_DIR/PKG/; DEST_DIR/PKG.version records the version.
set -euo pipefail
arch=arm64
if [ "${1:-}" = "-a" ]; then arch=$2; shift 2; fi
[ $# -ge 2 ] || { echo "usage: $0 [-a ARCH] DEST_DIR PKG..." >&2; exit 2; }
dest=$1; shift
cache=${REFVMM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reference-vmm}
lists=$cache/apt-$arch
mkdir -p "$lists/partial" "$cache/debs-$arch" "$dest"
o=(-o "APT::Architecture=$arch" -o "APT::Architectures=$arch" -o "Dir::State::Lists=$lists"
   -o "Dir::Cache::archives=$cache/debs-$arch" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
# refresh the package lists at most once a day
if [ -z "$(find "$lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
	echo "fetch-debs: updating $arch package lists" >&2
	apt-get "${o[@]}" -q update >&2
fi
for want in "$@"; do
	pkg=$want
	if [[ $want == *'*'* ]]; then
		re="^${want//\*/[0-9]+}\$"
		pkg=$(apt-cache "${o[@]}" pkgnames 2>/dev/null | grep -E "$re" | sort -V | tail -1)
		[ -n "$pkg" ] || { echo "fetch-debs: no $arch package matches '$want'" >&2; exit 1; }
	fi
	ver=$(apt-cache "${o[@]}" policy "$pkg" | awk '/Candidate:/ {print $2}')
	[ -n "$ver" ] && [ "$ver" != "(none)" ] || { echo "fetch-debs: $arch package '$pkg' not found" >&2; exit 1; }
	if [ -f "$dest/$pkg.version" ] && [ "$(cat "$dest/$pkg.version")" = "$ver" ]; then
		continue
	fi
	deb=$(ls "$cache/debs-$arch/${pkg}_"*"_$arch.deb" "$cache/debs-$arch/${pkg}_"*"_all.deb" 2>/dev/null | grep -F "_${ver//:/%3a}_" | head -1 || true)
	if [ -z "$deb" ]; then
		echo "fetch-debs: downloading $pkg $ver ($arch)" >&2
		(cd "$cache/debs-$arch" && apt-get "${o[@]}" -q download "$pkg=$ver" >&2)
		deb=$(ls "$cache/debs-$arch/${pkg}_"*.deb | grep -F "_${ver//:/%3a}_" | head -1)
	fi
	rm -rf "${dest:?}/$pkg"
	dpkg-deb -x "$deb" "$dest/$pkg"
	echo "$ver" >"$dest/$pkg.version"
	echo "$pkg" >"$dest/${want//\*/_}.name"
done
