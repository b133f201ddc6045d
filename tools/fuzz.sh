#!/bin/sh
# fuzz.sh [SECONDS] - run every fuzz target for SECONDS (default 60) under ASan+UBSan:
# libFuzzer when clang can build it, else the built-in mutation driver (tests/fuzz/mutate_main.c).
# FUZZ_ENGINE=mutate forces the built-in driver. Work directory: tests/fuzz/work/<target>/ (git-ignored): its corpus grows there (libFuzzer) and
# crash-*/timeout-* inputs land there. Exit 1 if any target found a crash, leak or timeout.
set -u
secs=${1:-60}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
engine=mutate
cc=
if [ "${FUZZ_ENGINE:-}" = mutate ]; then
	:
elif command -v clang >/dev/null 2>&1 && \
   printf 'int LLVMFuzzerTestOneInput(const char *d, long n){return 0;}' | \
   clang -x c -fsanitize=fuzzer -o /tmp/mproc-fuzz-probe - >/dev/null 2>&1; then
	engine=libfuzzer
	cc=clang
fi
rm -f /tmp/mproc-fuzz-probe
b=build-fuzz-$engine
if [ ! -f "$b/build.ninja" ]; then
	CC=${cc:-${CC:-cc}} meson setup "$b" -Dfuzz_engine=$engine -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbenchmarks=disabled >/dev/null || exit 2
fi
ninja -C "$b" >/dev/null || exit 2
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
for exe in "$b"/tests/fuzz-*; do
	[ -f "$exe" ] && [ -x "$exe" ] || continue
	t=${exe##*/fuzz-}
	w=tests/fuzz/work/$t
	mkdir -p "$w/corpus"
	cp -n tests/fuzz/corpus/"$t"/* "$w/corpus/" 2>/dev/null
	echo "fuzz: $t ($engine, ${secs} s)"
	if [ $engine = libfuzzer ]; then
		(cd "$w" && "$top/$exe" -max_total_time="$secs" -malloc_limit_mb=256 -timeout=10 \
			-print_final_stats=1 corpus "$top/tests/fuzz/corpus/$t" > log 2>&1)
		r=$?
		grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$w/log" | tail -1
	else
		(cd "$w" && "$top/$exe" -max_total_time="$secs" corpus > log 2>&1)
		r=$?
		tail -1 "$w/log"
	fi
	if [ $r -ne 0 ]; then
		echo "fuzz: $t FAILED (exit $r): see $w/log and $w/crash-* / $w/timeout-*"
		status=1
	fi
done
exit $status
