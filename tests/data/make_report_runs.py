#!/usr/bin/env python3
"""Writes the synthetic runs that tests/test_report.py reads, with known answers:

    report_quiet/      9 repetitions of every figure, clear differences, noise.json quiet:
                       every answer decided (forkserver; fork for Python; Pipe; ring; Value/Array;
                       TCP costlier; 2 workers on both sides; "cores - 1" wrong; chunksizes)
    report_undecided/  no noise.json; the start methods overlap (9 repetitions, intervals that
                       straddle 1) and the pool curves have 3 repetitions (no interval)
    report_busy/       the figures of report_quiet, noise.json busy (load 3.5 on 2 CPUs)

Deterministic (fixed jitter), so the files are stable: python3 tests/data/make_report_runs.py
rewrites them in place. Stdlib only.
"""

import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
JITTER9 = [0.97, 1.0, 1.02, 0.99, 1.01, 0.98, 1.03, 1.0, 0.995]
JITTER3 = [0.98, 1.0, 1.02]
WIDE9 = [0.85, 1.0, 1.15, 0.9, 1.1, 0.95, 1.2, 1.05, 0.8]


def rows(name, fields, jitter, suffix="/manual_time"):
    """Google Benchmark iteration rows of one figure: every field scaled by the jitter."""
    out = []
    for i, j in enumerate(jitter):
        r = {"name": name + suffix, "run_name": name + suffix, "run_type": "iteration",
             "repetitions": len(jitter), "repetition_index": i, "threads": 1,
             "iterations": 10, "time_unit": "ns"}
        t = fields.get("p50_ns") or fields.get("ns_per_task") or 1000.0
        r["real_time"] = r["cpu_time"] = t * j
        for k, v in fields.items():
            r[k] = v * j if k.endswith(("_ns", "ns_per_task")) else v / j
        out.append(r)
    return out


def gb(path, figs, context=None):
    bench = []
    for name, fields, jitter in figs:
        bench += rows(name, fields, jitter)
    with open(path, "w") as f:
        json.dump({"context": dict({"host_name": "synth", "num_cpus": 2}, **(context or {})),
                   "benchmarks": bench}, f, indent=0)
        f.write("\n")


def context(d):
    with open(os.path.join(HERE, "run_baseline", "context.json")) as f:
        ctx = json.load(f)
    ctx["host"] = "synth"
    ctx["profile"] = "full"
    ctx["harnesses"] = {"selected": ["spawn", "latency", "queue", "shm", "manager", "pool",
                                     "python"], "run": [], "ok": [], "failed": [], "skipped": []}
    with open(os.path.join(d, "context.json"), "w") as f:
        json.dump(ctx, f, indent=1)
        f.write("\n")
    shutil.copy(os.path.join(HERE, "run_baseline", "topology.json"), d)


def noise(d, busy):
    line = ("busy: load 3.5 on 2 usable CPUs, 12 % steal — figures below are provisional"
            if busy else "quiet")
    doc = {"schema": "mproc-noise/1", "usable_cpus": 2,
           "static": {"governor": None, "boost": None, "thp": "madvise"},
           "samples": [{"when": "start", "t": 1795000000.0, "loadavg": [3.5 if busy else 0.1,
                                                                       1.0, 0.5],
                        "psi_cpu_some_avg10": 40.0 if busy else 0.0,
                        "steal_pct": 12.0 if busy else 0.0}],
           "harnesses": {},
           "verdict": {"busy": busy, "reasons": ["load 3.5 on 2 usable CPUs", "12 % steal"]
                       if busy else [], "line": line}}
    with open(os.path.join(d, "noise.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def write(d, start_overlap=False, pool_jitter=JITTER9):
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    context(d)
    J = JITTER9
    fork_c = 110e3 if start_overlap else 200e3
    jit_start = WIDE9 if start_overlap else J
    gb(os.path.join(d, "spawn.json"), [
        ("spawn/fork/rss_mib:0", {"p50_ns": fork_c}, jit_start),
        ("spawn/vfork/rss_mib:0", {"p50_ns": 300e3}, J),
        ("spawn/posix_spawn/rss_mib:0", {"p50_ns": 320e3}, J),
        ("spawn/spawn/rss_mib:0", {"p50_ns": 400e3}, J),
        ("spawn/forkserver/rss_mib:0", {"p50_ns": 100e3}, jit_start)])
    gb(os.path.join(d, "latency.json"), [
        ("latency/conn_pipe/placement:cross_core", {"p50_ns": 20e3}, J)])
    gb(os.path.join(d, "queue.json"), [
        ("latency/pipe_queue/placement:cross_core", {"p50_ns": 34e3}, J),
        ("latency/ring_futex/placement:cross_core", {"p50_ns": 30e3}, J)]
        + [("queue/%s/bytes:64/producers:2/consumers:2" % b, {"msgs_per_second": v}, J)
           for b, v in (("ring", 6e6), ("pipe", 160e3), ("mq", 340e3), ("sysv", 600e3))])
    gb(os.path.join(d, "shm.json"), [
        ("shm/value/lock/procs:1", {"updates_per_second": 70e6}, J)])
    gb(os.path.join(d, "manager.json"), [
        ("manager/value_get/transport:unix", {"p50_ns": 17e3}, J),
        ("manager/value_get/transport:tcp", {"p50_ns": 20e3}, J),
        ("manager/dict_get/transport:unix", {"p50_ns": 18e3}, J),
        ("manager/raw_rtt/transport:unix", {"p50_ns": 21e3}, J)])
    pool = [("pool/cpu/workers:%d/task_ms:20" % w, {"tasks_per_second": v}, pool_jitter)
            for w, v in ((1, 47.0), (2, 93.0), (3, 92.0), (4, 92.5))]
    pool += [("pool/io/workers:%d/task_ms:20" % w, {"efficiency": e}, pool_jitter)
             for w, e in ((1, 0.99), (2, 0.99), (4, 0.98), (8, 0.97), (16, 0.96), (32, 0.7))]
    pool += [("pool_overhead/map/chunksize:%d" % c, {"ns_per_task": v}, pool_jitter)
             for c, v in ((1, 300.0), (10, 250.0), (100, 200.0), (1000, 190.0))]
    gb(os.path.join(d, "pool.json"), pool)
    py = [("python/spawn/fork/rss_mib:0", {"p50_ns": 14e6}, J),
          ("python/spawn/spawn/rss_mib:0", {"p50_ns": 117e6}, J),
          ("python/spawn/forkserver/rss_mib:0", {"p50_ns": 86e6}, J),
          ("python/latency/conn_pipe/placement:cross_core", {"p50_ns": 31e3}, J),
          ("python/latency/pipe_queue/placement:cross_core", {"p50_ns": 62e3}, J),
          ("python/shm/value/lock/procs:1", {"updates_per_second": 1.5e6}, J),
          ("python/manager/value_get/transport:unix", {"p50_ns": 39e3}, J),
          ("python/manager/value_get/transport:tcp", {"p50_ns": 45e3}, J),
          ("python/manager/dict_get/transport:unix", {"p50_ns": 39e3}, J)]
    py += [("python/pool/cpu/workers:%d/task_ms:20" % w, {"tasks_per_second": v}, pool_jitter)
           for w, v in ((1, 55.0), (2, 99.0), (3, 98.0), (4, 87.0))]
    py += [("python/pool/io/workers:%d/task_ms:20" % w, {"efficiency": e}, pool_jitter)
           for w, e in ((1, 0.99), (8, 0.96), (32, 0.8))]
    py += [("python/pool_overhead/map/chunksize:%d" % c, {"ns_per_task": v}, pool_jitter)
           for c, v in ((1, 52e3), (10, 6e3), (100, 1e3), (1000, 300.0))]
    py += [("python/pool_overhead/apply_async/chunksize:1", {"ns_per_task": 50e3}, pool_jitter)]
    gb(os.path.join(d, "python.json"), py)


def main():
    write(os.path.join(HERE, "report_quiet"))
    noise(os.path.join(HERE, "report_quiet"), False)
    write(os.path.join(HERE, "report_undecided"), start_overlap=True, pool_jitter=JITTER3)
    write(os.path.join(HERE, "report_busy"))
    noise(os.path.join(HERE, "report_busy"), True)


if __name__ == "__main__":
    main()
