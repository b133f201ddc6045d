#!/bin/sh
# ab_ring.sh - A/B of the ring queue between two commits, from alternating builds (issue 18).
#
#   tools/ab_ring.sh [-n rounds] [-a base] [-b new] [-p quick|full] [-d dir]
#
# Builds commit `base` (default be63613, before issue 18's ring work) and commit `new`
# (default HEAD) from `git archive` into two source trees under dir (default a new
# /tmp/ab_ring.XXXXXX; kept, so a second run with -d reuses the builds), each with meson's
# default build type (what `make bench` measures). Then n rounds (default 15; 9 at least for a
# 95 % interval of a median), each running both builds back to back, the order alternating
# (ABBA...) so a drift in the machine's speed falls on both:
#
#   bench_queue    --benchmark_filter="$QFILTER"
#   bench_baseline --benchmark_filter="$BFILTER"
#
# (the two filters are set below: the 64-byte 1x1 ring throughput and ring_spin cross-core; the
# cross-core cache-line round trip)
#
# with the harness's own placement (bench_pair picks the two PUs of cross_core from the
# topology, as mproc-bench runs them; nothing to set) and MPROC_PROFILE=profile (default quick),
# one repetition per round. It prints, per side, the median of the rounds with its 95 %
# distribution-free interval (plots/mproc_results/stats.py median_ci) of:
#   ring M items/s     queue/ring/bytes:64/producers:1/consumers:1 msgs_per_second (goal >= 40)
#   ring_spin p50 ns   latency/ring_spin/placement:cross_core p50_ns
#   cacheline p50 ns   baseline/cacheline_rtt/placement:cross_core p50_ns
#   ring_spin/cacheline  ring_spin p50 over the cache-line p50 of the same round and build
#                      (goal <= 1.3)
# and new/base for each, as the median of the per-round ratios with its interval
# (stats.ratio_ci, paired: the two builds of one round ran back to back). The rounds' JSON stays
# in dir/runs. Run it on a quiet machine: a loaded one makes every figure provisional.
# Exit status: 0, 1 (a build or a run failed), 2 (bad usage).
set -eu

rounds=15
base=be63613
new=HEAD
profile=quick
dir=
usage() {
	echo "usage: $0 [-n rounds] [-a base-commit] [-b new-commit] [-p quick|full] [-d dir]" >&2
	exit 2
}
while getopts n:a:b:p:d: opt; do
	case $opt in
	n) rounds=$OPTARG ;;
	a) base=$OPTARG ;;
	b) new=$OPTARG ;;
	p) profile=$OPTARG ;;
	d) dir=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
case $rounds in '' | *[!0-9]*) usage ;; esac
[ "$rounds" -ge 1 ] || usage
case $profile in quick | full) ;; *) usage ;; esac

QFILTER='queue/ring/bytes:64/producers:1/consumers:1/|latency/ring_spin/placement:cross_core'
BFILTER='baseline/cacheline_rtt/placement:cross_core'
root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=python3
for c in "$base" "$new"; do
	git -C "$root" rev-parse --verify -q "$c^{commit}" >/dev/null || {
		echo "$0: '$c' is not a commit of $root" >&2
		exit 2
	}
done
[ -n "$dir" ] || dir=$(mktemp -d /tmp/ab_ring.XXXXXX)
mkdir -p "$dir/runs"
rm -f "$dir"/runs/*.json "$dir"/runs/*.log     # a reused dir: this run's rounds only

# build SIDE COMMIT: dir/SIDE/src from git archive, dir/SIDE/build (reused when the commit is
# the same as last time).
build() {
	side=$1
	commit=$(git -C "$root" rev-parse "$2^{commit}")
	if [ "$(cat "$dir/$side/commit" 2>/dev/null)" != "$commit" ]; then
		rm -rf "$dir/$side"
		mkdir -p "$dir/$side/src"
		git -C "$root" archive "$commit" | tar -x -C "$dir/$side/src"
		meson setup "$dir/$side/build" "$dir/$side/src" >"$dir/$side/setup.log" 2>&1 || {
			echo "$0: meson setup of $side ($commit) failed: $dir/$side/setup.log" >&2
			exit 1
		}
		echo "$commit" >"$dir/$side/commit"
	fi
	# mproc-floor: bench_baseline runs its probes in it (a minimal process beside it).
	ninja -C "$dir/$side/build" bench/bench_queue bench/bench_baseline bench/mproc-floor \
		>"$dir/$side/build.log" 2>&1 || {
		echo "$0: build of $side failed: $dir/$side/build.log" >&2
		exit 1
	}
	echo "$side: $(git -C "$root" log -1 --format='%h %s' "$commit" | cut -c1-90)"
}
build base "$base"
build new "$new"

# run SIDE ROUND
run() {
	b=$dir/$1/build/bench
	out=$dir/runs/$1.$2
	MPROC_PROFILE=$profile "$b/bench_queue" --profile="$profile" \
		--benchmark_filter="$QFILTER" \
		--benchmark_repetitions=1 --benchmark_out="$out.queue.json" \
		--benchmark_out_format=json >"$out.queue.log" 2>&1 || {
		echo "$0: bench_queue of $1 failed in round $2: $out.queue.log" >&2
		exit 1
	}
	MPROC_PROFILE=$profile "$b/bench_baseline" --profile="$profile" \
		--benchmark_filter="$BFILTER" \
		--benchmark_repetitions=1 --benchmark_out="$out.baseline.json" \
		--benchmark_out_format=json >"$out.baseline.log" 2>&1 || {
		echo "$0: bench_baseline of $1 failed in round $2: $out.baseline.log" >&2
		exit 1
	}
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
i=1
while [ "$i" -le "$rounds" ]; do
	if [ $((i % 4)) -eq 1 ] || [ $((i % 4)) -eq 0 ]; then
		run base "$i"
		run new "$i"
	else
		run new "$i"
		run base "$i"
	fi
	printf '\rround %d of %d' "$i" "$rounds" >&2
	i=$((i + 1))
done
echo >&2
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

PYTHONPATH=$root/plots "$py" - "$dir/runs" "$rounds" <<'EOF'
import json, math, os, sys
from mproc_results import stats

runs, n = sys.argv[1], int(sys.argv[2])
METRICS = [
    ("ring M items/s", "queue", "queue/ring/bytes:64/producers:1/consumers:1",
     "msgs_per_second", 1e-6),
    ("ring_spin p50 ns", "queue", "latency/ring_spin/placement:cross_core", "p50_ns", 1.0),
    ("cacheline p50 ns", "baseline", "baseline/cacheline_rtt/placement:cross_core", "p50_ns", 1.0),
]


def value(side, i, harness, name, counter):
    try:
        with open(os.path.join(runs, "%s.%d.%s.json" % (side, i, harness))) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return math.nan
    for b in doc.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration" or b.get("error_occurred"):
            continue
        if b.get("run_name", b.get("name", "")).split("/manual_time")[0] == name:
            v = b.get(counter)
            return float(v) if isinstance(v, (int, float)) else math.nan
    return math.nan


vals = {}
for side in ("base", "new"):
    for label, h, name, counter, scale in METRICS:
        vals[(side, label)] = [value(side, i, h, name, counter) * scale for i in range(1, n + 1)]
    vals[(side, "ring_spin/cacheline")] = [
        a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan
        for a, b in zip(vals[(side, "ring_spin p50 ns")], vals[(side, "cacheline p50 ns")])]


def fmt(x):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else "%.3g" % x


labels = [m[0] for m in METRICS] + ["ring_spin/cacheline"]
print("%d rounds; median [95 %% interval] per side; new/base paired by round" % n)
print("%-22s %-28s %-28s %s" % ("figure", "base", "new", "new/base"))
for label in labels:
    cells = []
    for side in ("base", "new"):
        v = vals[(side, label)]
        m = stats.median(v)
        ci = stats.median_ci(v)
        lo, hi = (fmt(ci[0]), fmt(ci[1])) if ci else ("-", "-")
        cells.append("%s [%s, %s]" % (fmt(m), lo, hi) + ("" if ci else " (too few rounds)"))
    r, lo, hi = stats.ratio_ci(vals[("new", label)], vals[("base", label)], paired=True)
    print("%-22s %-28s %-28s %s [%s, %s]" % (label, cells[0], cells[1], fmt(r), fmt(lo), fmt(hi)))
missing = sum(1 for k, v in vals.items() for x in v if isinstance(x, float) and math.isnan(x))
if missing:
    print("note: %d figure(s) missing (a benchmark skipped or failed; see %s/*.log)"
          % (missing, runs))
EOF
