#!/usr/bin/python3
"""check_bench_json.py - check a Google Benchmark JSON file for expected names and counters.

    check_bench_json.py HARNESS_JSON --expect REGEX... --counter NAME...
                        [--error REGEX...] [--context KEY...] [--value REGEX NAME NUMBER]...
                        [--per-op COUNTER...]

Exit 0 when every check holds, 1 naming each one that does not, 2 on bad usage or an
unreadable file. Standard library only (json accepts Google Benchmark's bare NaN/Infinity).

  --expect REGEX    some benchmark name matches REGEX (re.search) once Google Benchmark's
                    suffixes (/manual_time, /real_time, /min_time:X, /min_warmup_time:X,
                    /iterations:N, /repeats:N, /threads:N) and aggregate suffixes (_mean ...)
                    are stripped. An entry that skipped with an error still counts (a
                    cross_core probe on a one-core machine is named but not measured); such
                    entries are listed on stderr.
  --counter NAME    NAME is a finite number >= 0 on at least one measured (error-free) entry.
                    Entries that carry p-counters (p50_ns, p99_ns, p999_ns) must carry every
                    requested p-counter, ordered p50 <= p99 <= p999.
  --error REGEX     some entry matching REGEX skipped with an error (and has a message).
  --context KEY     KEY is in the JSON context; KEY=VALUE: and its value is VALUE.
  --value REGEX NAME NUMBER
                    every measured iteration entry matching REGEX has counter NAME == NUMBER
                    (relative tolerance 1e-9), and there is at least one.
  --per-op COUNTER  one time per operation: on every measured iteration entry that carries
                    COUNTER, real_time (in ns) is the time of one of the operations the
                    counter counts: COUNTER = X_per_second needs real_time * X_per_second = 1 s,
                    COUNTER = ns_per_X needs real_time = ns_per_X (relative tolerance 1e-3),
                    and at least one entry carries it. Every entry's time_unit must be known.
"""
import argparse
import json
import math
import os
import re
import sys

from mproc_results.gbjson import strip_suffixes  # the one implementation of the naming rule
# (PYTHONPATH: plots/, set by meson for the tests)
AGGREGATE = re.compile(r"_(mean|median|stddev|cv|[A-Za-z0-9]+)$")
P_COUNTERS = ("p50_ns", "p99_ns", "p999_ns")
UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def base_name(entry):
    """The benchmark's name without Google Benchmark's suffixes: the join key."""
    name = entry.get("run_name") or entry.get("name", "")
    if "run_name" not in entry and entry.get("run_type") == "aggregate":
        name = AGGREGATE.sub("", name)
    return strip_suffixes(name)


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check(doc, args):
    problems = []
    entries = doc.get("benchmarks")
    if not isinstance(entries, list):
        return ["no 'benchmarks' list in the file"]
    names = [base_name(e) for e in entries]
    measured = [e for e in entries if not e.get("error_occurred")]
    errors = [(n, e) for n, e in zip(names, entries) if e.get("error_occurred")]

    for n, e in errors:
        print(f"note: {n}: skipped with error: {e.get('error_message', '')}", file=sys.stderr)

    for rx in args.expect:
        try:
            r = re.compile(rx)
        except re.error as exc:
            problems.append(f"bad regex {rx!r}: {exc}")
            continue
        if not any(r.search(n) for n in names):
            problems.append(f"no benchmark name matches {rx!r} (names: {sorted(set(names))})")

    for c in args.counter:
        if not any(is_number(e.get(c)) and e[c] >= 0 for e in measured):
            problems.append(f"counter {c!r} is on no measured entry as a finite number >= 0")

    wanted_p = [c for c in P_COUNTERS if c in args.counter]
    for n, e in zip(names, entries):
        if e.get("error_occurred") or e.get("run_type") == "aggregate":
            continue
        if not any(c in e for c in P_COUNTERS):
            continue
        missing = [c for c in wanted_p if not is_number(e.get(c))]
        if missing:
            problems.append(f"{e.get('name')}: carries p-counters but lacks {missing}")
            continue
        have = [e[c] for c in P_COUNTERS if is_number(e.get(c))]
        if have != sorted(have):
            problems.append(f"{e.get('name')}: percentiles out of order: "
                            + ", ".join(f"{c}={e.get(c)}" for c in P_COUNTERS))

    for rx in args.error:
        r = re.compile(rx)
        if not any(r.search(n) and e.get("error_message") for n, e in errors):
            problems.append(f"no entry matching {rx!r} skipped with an error message")

    context = doc.get("context", {})
    for kv in args.context:
        k, want = kv.split("=", 1) if "=" in kv else (kv, None)
        if k not in context:
            problems.append(f"context key {k!r} is missing (have: {sorted(context)})")
        elif want is not None and str(context[k]) != want:
            problems.append(f"context key {k!r} is {context[k]!r}, want {want!r}")

    for rx, cname, want in args.value:
        r = re.compile(rx)
        try:
            w = float(want)
        except ValueError:
            problems.append(f"--value {rx} {cname}: {want!r} is not a number")
            continue
        hits = [e for n, e in zip(names, entries)
                if r.search(n) and not e.get("error_occurred")
                and e.get("run_type", "iteration") == "iteration"]
        if not hits:
            problems.append(f"--value: no measured entry matches {rx!r}")
        for e in hits:
            got = e.get(cname)
            if not is_number(got) or not math.isclose(got, w, rel_tol=1e-9, abs_tol=1e-9):
                problems.append(f"{e.get('name')}: {cname} = {got}, want {w}")

    for cname in args.per_op:
        rate = cname.endswith("_per_second")
        if not rate and not cname.startswith("ns_per_"):
            problems.append(f"--per-op {cname}: not an X_per_second or ns_per_X counter")
            continue
        hits = 0
        for e in measured:
            if e.get("run_type", "iteration") != "iteration" or not is_number(e.get(cname)):
                continue
            hits += 1
            unit = UNIT_NS.get(e.get("time_unit"))
            rt = e.get("real_time")
            if unit is None or not is_number(rt):
                problems.append(f"{e.get('name')}: real_time {rt!r} in unit "
                                f"{e.get('time_unit')!r} is not a time")
                continue
            rt_ns = rt * unit
            want = 1e9 / e[cname] if rate and e[cname] > 0 else e[cname]
            if not math.isclose(rt_ns, want, rel_tol=1e-3):
                problems.append(f"{e.get('name')}: real_time is {rt_ns:.6g} ns but one "
                                f"operation by {cname} = {e[cname]:.6g} is {want:.6g} ns: "
                                "real_time is not the time of one operation")
        if not hits:
            problems.append(f"--per-op {cname}: no measured entry carries it")
    return problems


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json_file", metavar="HARNESS_JSON")
    p.add_argument("--expect", nargs="*", default=[], action="extend", metavar="REGEX")
    p.add_argument("--counter", nargs="*", default=[], action="extend", metavar="NAME")
    p.add_argument("--error", nargs="*", default=[], action="extend", metavar="REGEX")
    p.add_argument("--context", nargs="*", default=[], action="extend", metavar="KEY[=VALUE]")
    p.add_argument("--value", nargs=3, default=[], action="append",
                   metavar=("REGEX", "NAME", "NUMBER"))
    p.add_argument("--per-op", nargs="*", default=[], action="extend", metavar="COUNTER")
    args = p.parse_args(argv)
    try:
        with open(args.json_file, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"check_bench_json: cannot read {args.json_file}: {exc}", file=sys.stderr)
        return 2
    problems = check(doc, args)
    for msg in problems:
        print(f"check_bench_json: {args.json_file}: {msg}", file=sys.stderr)
    if problems:
        return 1
    n = len(doc.get("benchmarks", []))
    print(f"check_bench_json: {args.json_file}: ok ({n} entries, {len(args.expect)} names, "
          f"{len(args.counter)} counters)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
