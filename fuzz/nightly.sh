#!/usr/bin/env bash
# Long fuzzing runs of every libFuzzer target (fuzz/targets/fuzz_*.c), one target
# after the other, each in libFuzzer fork mode with --jobs workers; then corpus
# merge + minimisation back into fuzz/corpus/<target>, crash de-duplication by
# stack, Markdown/JSON reports and line coverage of the VMM sources reached by the
# corpora. `make fuzz` runs it with a short duration, `make fuzz-nightly` with hours.
#
# Two corpora per target: DIR/fuzz/cache/<target> keeps everything that adds a
# libFuzzer feature (edge hit counts: the best starting point for the next run on
# this machine, not committed); fuzz/corpus/<target> (committed, kept small) gets the
# generated seed-* files plus only the inputs that add new *edges*
# (-merge=1 -use_counters=0 into a fresh directory, which then replaces it).
#
# usage: fuzz/nightly.sh [--hours H | --seconds S] [--jobs N] [--targets "a b"]
#                        [--build-dir DIR] [--no-build] [--no-merge] [--no-coverage]
#                        [--coverage-only] [--fail-on-crash]
#   --hours H      total fuzzing time, split evenly between the targets (default 8)
#   --seconds S    fuzzing time per target instead (make fuzz: 60)
#   --jobs N       libFuzzer -fork=N workers per target (default: nproc)
#   --targets T    space- or comma-separated target names (default: all)
#   --no-merge     leave fuzz/corpus alone (new units stay in DIR/fuzz/work)
# Output: DIR/fuzz/report/{summary,<target>}.{md,json}, DIR/fuzz/crashes/<target>/<sig>/,
#         DIR/fuzz/coverage/{html/index.html,report.txt,summary.json}, DIR/fuzz/work/<target>/,
#         DIR/fuzz/cache/<target>/.
# Exit status: 0 done (crashes are reported, not fatal unless --fail-on-crash), 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=build
HOURS=8
SECONDS_PER=
JOBS=$(nproc 2>/dev/null || echo 1)
TARGETS=
BUILD_FIRST=1
MERGE=1
COVERAGE=1
COVERAGE_ONLY=0
FAIL_ON_CRASH=
PY=/usr/bin/python3

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
	case "$1" in
	--hours) HOURS=$2; shift 2 ;;
	--seconds) SECONDS_PER=$2; shift 2 ;;
	--jobs) JOBS=$2; shift 2 ;;
	--targets) TARGETS=$2; shift 2 ;;
	--build-dir) BUILD=$2; shift 2 ;;
	--no-build) BUILD_FIRST=0; shift ;;
	--no-merge) MERGE=0; shift ;;
	--no-coverage) COVERAGE=0; shift ;;
	--coverage-only) COVERAGE_ONLY=1; shift ;;
	--fail-on-crash) FAIL_ON_CRASH=--fail-on-crash; shift ;;
	-h|--help) usage ;;
	*) echo "nightly.sh: unknown argument $1" >&2; usage ;;
	esac
done

ALL=$(ls fuzz/targets/fuzz_*.c | sed 's#.*/\(fuzz_[a-z0-9_]*\)\.c#\1#' | sort)
TARGETS=${TARGETS//,/ }
[ -n "${TARGETS// /}" ] || TARGETS=$ALL
for t in $TARGETS; do
	[ -f "fuzz/targets/$t.c" ] || { echo "nightly.sh: no target $t (have: $(echo $ALL))" >&2; exit 2; }
done
set -- $TARGETS
NT=$#
if [ -z "$SECONDS_PER" ]; then
	SECONDS_PER=$(awk -v h="$HOURS" -v n="$NT" 'BEGIN { s = int(h * 3600 / n); print (s < 10 ? 10 : s) }')
fi

# the LLVM tools that match clang
CLANG_MAJOR=$(clang --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)
tool() { command -v "$1-$CLANG_MAJOR" 2>/dev/null || command -v "$1" 2>/dev/null || echo "$1"; }
PROFDATA=$(tool llvm-profdata)
LLVMCOV=$(tool llvm-cov)
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(tool llvm-symbolizer)}

LF=$BUILD/fuzz/libfuzzer
COVB=$BUILD/fuzz/cov
# sockets, libFuzzer fork directories and leftovers of crashed inputs stay here
export TMPDIR=$ROOT/$BUILD/fuzz/tmp
rm -rf "$TMPDIR"
mkdir -p "$TMPDIR" "$BUILD/fuzz/report"

if [ "$BUILD_FIRST" = 1 ]; then
	make -s fuzz-build fuzz-cov-build
fi

opt() { # opt TARGET KEY DEFAULT: value from fuzz/options/TARGET.options
	local v
	v=$(sed -n "s/^\s*$2\s*=\s*\(.*\)/\1/p" "fuzz/options/$1.options" 2>/dev/null | tail -1)
	echo "${v:-$3}"
}

fuzz_one() {
	local t=$1 w=$BUILD/fuzz/work/$1 cache=$BUILD/fuzz/cache/$1
	rm -rf "$w"
	mkdir -p "$w/corpus" "$w/artifacts" "$cache" "fuzz/regressions/$t"
	local before
	before=$(find "fuzz/corpus/$t" -type f ! -name 'README*' 2>/dev/null | wc -l)
	local dict=()
	[ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
	echo "== $t: ${SECONDS_PER}s, $JOBS job(s), corpus $before"
	local start=$SECONDS
	"$LF/$t" -fork="$JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
		-max_total_time="$SECONDS_PER" -max_len="$(opt "$t" max_len 4096)" \
		-timeout="$(opt "$t" timeout 10)" -rss_limit_mb=2048 -print_final_stats=1 \
		"${dict[@]}" -artifact_prefix="$w/artifacts/" \
		"$w/corpus" "$cache" "fuzz/corpus/$t" "fuzz/regressions/$t" >"$w/fuzz.log" 2>&1 &
	local pid=$! every=$(( SECONDS_PER > 600 ? 60 : 10 ))
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1
		if (( (SECONDS - start) % every == 0 )); then
			local st
			st=$(grep -E '^#[0-9]+: cov:' "$w/fuzz.log" | tail -1 || true)
			printf '   [%s %4ds/%ss] %s\n' "$t" $((SECONDS - start)) "$SECONDS_PER" "${st:-starting}"
		fi
	done
	wait "$pid" || echo "   $t: libFuzzer exited with status $? (see $w/fuzz.log)"
	grep -E '^#[0-9]+: cov:' "$w/fuzz.log" | tail -1 | sed "s/^/   [$t done] /" || true

	# crashes: reproduce, de-duplicate by stack
	if ls "$w/artifacts/"* >/dev/null 2>&1; then
		rm -rf "$BUILD/fuzz/crashes/$t"
		$PY fuzz/tools/fuzz_report.py crashes --build-dir "$BUILD" --target "$t"
	fi

	# the local cache: everything with a new feature (fresh directory, then replace)
	local maxlen
	maxlen=$(opt "$t" max_len 4096)
	mkdir -p "$w/cache.new"
	if "$LF/$t" -merge=1 -max_len="$maxlen" -timeout=30 -merge_control_file="$w/cache.ctl" \
		"$w/cache.new" "$cache" "$w/corpus" "fuzz/corpus/$t" >"$w/cache-merge.log" 2>&1; then
		rm -rf "$cache" && mv "$w/cache.new" "$cache"
	fi

	# the committed corpus: seeds + inputs with new edges, into a fresh directory
	local after=$before
	if [ "$MERGE" = 1 ]; then
		local fresh=$w/merged
		mkdir -p "$fresh"
		cp "fuzz/corpus/$t"/seed-* "$fresh/" 2>/dev/null || true
		if "$LF/$t" -merge=1 -use_counters=0 -max_len="$maxlen" -timeout=30 \
			-merge_control_file="$w/merge.ctl" "$fresh" "fuzz/corpus/$t" "$cache" "$w/corpus" \
			>"$w/merge.log" 2>&1; then
			find "fuzz/corpus/$t" -maxdepth 1 -type f ! -name 'README*' -delete
			cp "$fresh"/* "fuzz/corpus/$t/" 2>/dev/null || true
			after=$(find "fuzz/corpus/$t" -type f ! -name 'README*' | wc -l)
			echo "   corpus: $before -> $after files, cache $(ls "$cache" | wc -l) (git status fuzz/corpus)"
		else
			echo "   merge failed (see $w/merge.log); fuzz/corpus/$t unchanged"
		fi
	fi
	printf '{"target": "%s", "seconds": %s, "jobs": %s, "corpus_before": %s, "corpus_after": %s}\n' \
		"$t" "$SECONDS_PER" "$JOBS" "$before" "$after" >"$w/meta.json"
}

coverage() {
	local cov=$BUILD/fuzz/coverage
	rm -rf "$cov"
	mkdir -p "$cov/prof"
	echo "== coverage of the VMM sources by the corpora"
	local objs=() first=
	for t in "$@"; do
		[ -x "$COVB/$t" ] || { echo "   $COVB/$t missing (make fuzz-cov-build)"; continue; }
		LLVM_PROFILE_FILE="$cov/prof/$t-%p.profraw" "$COVB/$t" -q -n \
			"fuzz/corpus/$t" "fuzz/regressions/$t" >"$cov/prof/$t.log" 2>&1 ||
			echo "   $t: replay failed under coverage (see $cov/prof/$t.log)"
		if [ -z "$first" ]; then first=$COVB/$t; else objs+=(-object "$COVB/$t"); fi
	done
	[ -n "$first" ] || return 0
	"$PROFDATA" merge -sparse "$cov"/prof/*.profraw -o "$cov/fuzz.profdata"
	"$LLVMCOV" show -format=html -output-dir="$cov/html" -instr-profile="$cov/fuzz.profdata" \
		-show-line-counts-or-regions "$first" "${objs[@]}" reference-vmm/src >/dev/null
	"$LLVMCOV" report -instr-profile="$cov/fuzz.profdata" "$first" "${objs[@]}" \
		reference-vmm/src >"$cov/report.txt"
	"$LLVMCOV" export -summary-only -instr-profile="$cov/fuzz.profdata" "$first" "${objs[@]}" \
		reference-vmm/src >"$cov/summary.json"
	echo "   line coverage (lines, missed, %):"
	awk '$1 ~ /(virtio\/(queue|mmio|blk|console|vsock[a-z_]*)|core\/config|aarch64\/(image|fdt)|passthrough\/dt_node)\.c$/ {
		printf "     %-26s %6s %6s %8s\n", $1, $8, $9, $10 }' "$cov/report.txt"
	echo "   html: $cov/html/index.html"
}

if [ "$COVERAGE_ONLY" = 1 ]; then
	coverage "$@"
	$PY fuzz/tools/fuzz_report.py write --build-dir "$BUILD" --targets "$*" >/dev/null
	exit 0
fi
echo "nightly.sh: $NT target(s), ${SECONDS_PER}s each, $JOBS job(s); reports in $BUILD/fuzz/report"
for t in "$@"; do
	fuzz_one "$t"
done
[ "$COVERAGE" = 1 ] && coverage "$@"
$PY fuzz/tools/fuzz_report.py write --build-dir "$BUILD" --targets "$*" \
	--seconds "$SECONDS_PER" --jobs "$JOBS" $FAIL_ON_CRASH
