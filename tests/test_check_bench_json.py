#!/usr/bin/python3
"""test_check_bench_json.py - tests of tests/check_bench_json.py on fixed JSON (TAP output).

Google Benchmark's name suffixes (1.7.1 and 1.8.x), aggregates, bare NaN, error entries, and
the exit codes: 0 ok, 1 with every missing thing named, 2 for an unreadable file.
Standard library only.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "check_bench_json.py")

# Shaped like Google Benchmark 1.7.1's JSON (json_reporter.cc): flat counters, run_name
# without the aggregate suffix, bare NaN in a _cv row.
FIXTURE = """{
  "context": {"date": "2026-11-23", "num_cpus": 2, "mproc_version": "0.1.0"},
  "benchmarks": [
    {"name": "x/rtt/placement:same_core/min_time:0.010/manual_time",
     "run_name": "x/rtt/placement:same_core/min_time:0.010/manual_time",
     "run_type": "iteration", "iterations": 10, "real_time": 1.0, "cpu_time": 1.0,
     "time_unit": "ns", "p50_ns": 10, "p99_ns": 20, "p999_ns": 30},
    {"name": "x/rtt/placement:same_core/min_time:0.010/manual_time_mean",
     "run_name": "x/rtt/placement:same_core/min_time:0.010/manual_time",
     "run_type": "aggregate", "aggregate_name": "mean", "iterations": 3,
     "real_time": 1.0, "cpu_time": 1.0, "time_unit": "ns", "p50_ns": 10, "p99_ns": 20,
     "p999_ns": 30},
    {"name": "x/rtt/placement:same_core/min_time:0.010/manual_time_cv",
     "run_name": "x/rtt/placement:same_core/min_time:0.010/manual_time",
     "run_type": "aggregate", "aggregate_name": "cv", "iterations": 3,
     "real_time": 0.0, "cpu_time": 0.0, "time_unit": "ns", "p50_ns": NaN, "p99_ns": NaN,
     "p999_ns": NaN},
    {"name": "x/copy/bytes:64/iterations:10/repeats:2/real_time/threads:2",
     "run_name": "x/copy/bytes:64/iterations:10/repeats:2/real_time/threads:2",
     "run_type": "iteration", "threads": 2, "iterations": 10, "real_time": 1.0, "cpu_time": 1.0,
     "time_unit": "ns", "bytes_per_second": 1e9},
    {"name": "x/spawn/threads:8/manual_time", "run_name": "x/spawn/threads:8/manual_time",
     "run_type": "iteration", "threads": 1, "iterations": 1, "real_time": 1.0,
     "cpu_time": 1.0, "time_unit": "ns", "p50_ns": 1, "p99_ns": 1, "p999_ns": 1},
    {"name": "x/rtt/placement:cross_core/manual_time",
     "run_name": "x/rtt/placement:cross_core/manual_time",
     "run_type": "iteration", "error_occurred": true,
     "error_message": "cross_core needs two usable physical cores",
     "iterations": 0, "real_time": 0, "cpu_time": 0, "time_unit": "ns"}
  ]
}
"""

BAD_ORDER = """{"benchmarks": [{"name": "y/a", "run_name": "y/a", "run_type": "iteration",
  "p50_ns": 30, "p99_ns": 20, "p999_ns": 10}]}"""

# One time per operation: a round of 1000 messages in 2 ms timed as one iteration (real_time
# 2 ms, msgs_per_second 500 k) against the same round as 1000 iterations (real_time 2 us).
PER_OP = """{"benchmarks": [
  {"name": "q/batch/manual_time", "run_name": "q/batch/manual_time", "run_type": "iteration",
   "iterations": 5, "real_time": 2.0, "cpu_time": 0.1, "time_unit": "ms",
   "msgs_per_second": 5e5},
  {"name": "q/op/manual_time", "run_name": "q/op/manual_time", "run_type": "iteration",
   "iterations": 5000, "real_time": 2.0, "cpu_time": 0.1, "time_unit": "us",
   "msgs_per_second": 5e5, "ns_per_task": 2000.0},
  {"name": "q/op/manual_time_mean", "run_name": "q/op/manual_time", "run_type": "aggregate",
   "aggregate_name": "mean", "iterations": 1, "real_time": 9.0, "cpu_time": 0.1,
   "time_unit": "us", "msgs_per_second": 5e5}]}"""
PER_OP_OK = PER_OP.replace('"real_time": 2.0, "cpu_time": 0.1, "time_unit": "ms"',
                           '"real_time": 2000.0, "cpu_time": 0.1, "time_unit": "ns"')

CASES = [
    ("per_op_batch_fails", PER_OP, ["--per-op", "msgs_per_second"], 1,
     "q/batch/manual_time: real_time is 2e+06 ns"),
    ("per_op_ok", PER_OP_OK, ["--per-op", "msgs_per_second", "ns_per_task"], 0, "ok"),
    ("per_op_ns_per_counter_differs", PER_OP_OK.replace('"ns_per_task": 2000.0',
                                                        '"ns_per_task": 4000.0'),
     ["--per-op", "ns_per_task"], 1, "not the time of one operation"),
    ("per_op_counter_nowhere", PER_OP_OK, ["--per-op", "tasks_per_second"], 1,
     "no measured entry carries it"),
    ("per_op_bad_counter_name", PER_OP_OK, ["--per-op", "p50_ns"], 1,
     "not an X_per_second or ns_per_X counter"),
    # (name, fixture, args, expected exit code, text that must appear in the output)
    ("names_with_suffixes_stripped", FIXTURE,
     ["--expect", "^x/rtt/placement:same_core$", "^x/copy/bytes:64$",
      "--counter", "p50_ns", "p99_ns", "p999_ns", "bytes_per_second"], 0, "ok"),
    ("harness_argument_named_threads_is_kept", FIXTURE,
     ["--expect", "^x/spawn/threads:8$"], 0, "ok"),
    ("gb_threads_suffix_is_stripped", FIXTURE, ["--expect", "^x/copy/bytes:64$"], 0, "ok"),
    ("error_entry_names_count", FIXTURE,
     ["--expect", "^x/rtt/placement:cross_core$", "--error", "^x/rtt/placement:cross_core$"],
     0, "skipped with error"),
    ("missing_name_fails", FIXTURE,
     ["--expect", "^x/rtt/placement:same_core$", "^x/nope$"], 1, "'^x/nope$'"),
    ("suffix_is_not_part_of_the_name", FIXTURE,
     ["--expect", "^x/rtt/placement:same_core/manual_time$"], 1, "no benchmark name"),
    ("missing_counter_fails", FIXTURE, ["--counter", "p50_ns", "msgs_per_second"], 1,
     "'msgs_per_second'"),
    ("counter_only_on_error_entry_fails", FIXTURE, ["--counter", "error_message"], 1,
     "'error_message'"),
    ("no_error_entry_fails", FIXTURE, ["--error", "^x/copy/"], 1, "skipped with an error"),
    ("context_key", FIXTURE, ["--context", "mproc_version"], 0, "ok"),
    ("missing_context_key", FIXTURE, ["--context", "hwloc_pus"], 1, "'hwloc_pus'"),
    ("context_value", FIXTURE, ["--context", "mproc_version=0.1.0", "num_cpus=2"], 0, "ok"),
    ("context_value_differs", FIXTURE, ["--context", "mproc_version=0.2.0"], 1,
     "want '0.2.0'"),
    ("exact_value", FIXTURE, ["--value", "^x/rtt/placement:same_core$", "p99_ns", "20"], 0, "ok"),
    ("wrong_value", FIXTURE, ["--value", "^x/rtt/placement:same_core$", "p99_ns", "21"], 1,
     "p99_ns = 20"),
    ("percentiles_out_of_order", BAD_ORDER, ["--counter", "p50_ns", "p99_ns", "p999_ns"], 1,
     "out of order"),
    ("unreadable_file", None, ["--expect", "x"], 2, "cannot read"),
    ("not_json", "{not json", ["--expect", "x"], 2, "cannot read"),
]


def run_case(tmp, fixture, args):
    path = os.path.join(tmp, "bench.json")
    if os.path.exists(path):
        os.unlink(path)
    if fixture is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(fixture)
    r = subprocess.run([sys.executable, CHECKER, path] + args, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def main():
    print("TAP version 13")
    print(f"1..{len(CASES)}")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="mproc-check-") as tmp:
        for i, (name, fixture, args, want_rc, want_text) in enumerate(CASES, 1):
            rc, out = run_case(tmp, fixture, args)
            ok = rc == want_rc and want_text in out
            print(f"{'ok' if ok else 'not ok'} {i} check_bench_json/{name}")
            if not ok:
                failed += 1
                print(f"# exit {rc} (want {want_rc}), want text {want_text!r} in:")
                for line in out.splitlines():
                    print(f"# {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
