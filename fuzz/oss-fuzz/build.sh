#!/bin/bash -eu
# OSS-Fuzz / ClusterFuzzLite build script for the reference VMM fuzz targets
# (fuzz/targets/fuzz_*.c). The infrastructure sets CC, CFLAGS, CXX, CXXFLAGS,
# LIB_FUZZING_ENGINE, OUT, SRC and WORK; this script only reads them. It builds
# the production sources of reference-vmm/src (main.c excepted), the driver-side
# queue builder and the harness support with $CC $CFLAGS, links every target with
# $CXX $CXXFLAGS $LIB_FUZZING_ENGINE (libFuzzer is C++), and installs next to each
# binary its seed corpus (<target>_seed_corpus.zip), dictionary (<target>.dict)
# and options (<target>.options). Needs libfdt-dev and zip (see Dockerfile).
# Local check: CC=clang CXX=clang++ CFLAGS=-fsanitize=address,fuzzer-no-link \
#   CXXFLAGS=$CFLAGS LIB_FUZZING_ENGINE=-fsanitize=fuzzer OUT=/tmp/out fuzz/oss-fuzz/build.sh

: "${WORK:=$(mktemp -d)}"
# the checkout: $REFVMM_ROOT, else the current directory (OSS-Fuzz's WORKDIR), else
# $SRC/reference-vmm, else relative to this script (fuzz/oss-fuzz/build.sh)
ROOT=${REFVMM_ROOT:-}
if [ -z "$ROOT" ]; then
	if [ -d fuzz/targets ]; then ROOT=$PWD
	elif [ -n "${SRC:-}" ] && [ -d "$SRC/reference-vmm/fuzz/targets" ]; then ROOT=$SRC/reference-vmm
	else ROOT=$(cd "$(dirname "$0")/../.." && pwd)
	fi
fi
cd "$ROOT"
mkdir -p "$OUT" "$WORK/refvmm-obj"

INC="-std=gnu11 -D_GNU_SOURCE -pthread -Ireference-vmm/include -Ireference-vmm/src \
-Ireference-vmm/tests/support -Ifuzz/support -Imocks"
srcs=$(find reference-vmm/src -name '*.c' ! -name main.c | sort)
srcs="$srcs reference-vmm/tests/support/vq_builder.c $(ls fuzz/support/*.c)"

objs=()
for s in $srcs; do
	o="$WORK/refvmm-obj/$(echo "$s" | tr '/' '_').o"
	$CC $CFLAGS $INC -c "$s" -o "$o"
	objs+=("$o")
done

for t in fuzz/targets/fuzz_*.c; do
	name=$(basename "$t" .c)
	$CC $CFLAGS $INC -c "$t" -o "$WORK/refvmm-obj/$name.o"
	$CXX $CXXFLAGS "$WORK/refvmm-obj/$name.o" "${objs[@]}" $LIB_FUZZING_ENGINE \
		-lfdt -lpthread -o "$OUT/$name"
	if ls fuzz/corpus/"$name"/* >/dev/null 2>&1; then
		rm -f "$OUT/${name}_seed_corpus.zip"
		zip -q -j "$OUT/${name}_seed_corpus.zip" fuzz/corpus/"$name"/*
	fi
	[ -f "fuzz/dict/$name.dict" ] && cp "fuzz/dict/$name.dict" "$OUT/"
	[ -f "fuzz/options/$name.options" ] && cp "fuzz/options/$name.options" "$OUT/"
done
echo "build.sh: $(ls fuzz/targets/fuzz_*.c | wc -l) targets in $OUT"
