#!/usr/bin/env python3
"""CPython's multiprocessing and concurrent.futures, measured with the names the C harnesses
use under ``python/`` (``python/spawn/forkserver/rss_mib:64``), written as Google
Benchmark-compatible JSON so one reader handles both.

Stdlib only. Run with the interpreter you want measured:

    /usr/bin/python3 bench/python/mp_bench.py --profile quick --out python.json [--only spawn,pipe]
        [--topology RUN/topology.json]

The CPU budget (worker counts, efficiency) and the CPUs of each placement (same_core,
cross_core) come from the run's topology.json when mproc-bench passes it, so a
placement:cross_core figure here means the same two CPUs as the C harnesses'; run alone,
they come from sched_getaffinity and sysfs core ids, and the first line on stderr says which
CPUs that chose.

Every figure is measured here, in this run: nothing is copied from elsewhere.
"""

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import re
import signal
import socket
import statistics
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import shared_memory

NS = 1_000_000_000

PROFILES = {
    # repetitions, target seconds per repetition: 6 repetitions is the fewest that give a
    # 95 % interval of a median (plots/mproc_results/stats.py), so quick has 6 short ones,
    # not 3 long ones
    "smoke": (1, 0.02),
    "quick": (6, 0.075),
    "full": (9, 0.5),
}


# --------------------------------------------------------------------------------------------
# placement


def _core_id(cpu):
    base = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
    try:
        with open(base + "physical_package_id") as f:
            pkg = int(f.read())
        with open(base + "core_id") as f:
            core = int(f.read())
        return (pkg, core)
    except OSError:
        return (0, cpu)


def usable_cpus():
    return sorted(os.sched_getaffinity(0))


def _cpu_list(cpus):
    """[0, 1, 2, 5] -> '0-2,5'."""
    out, run = [], []
    for c in sorted(cpus):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [c]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


class Cpus:
    """The CPUs the comparators may use: the budget (how many workers count as "all of them")
    and the two placement pairs (same_core: one CPU twice; cross_core: two CPUs on different
    physical cores, None with one core). In a run they come from the run's topology.json
    (mproc-topo: hwloc, the cgroup cpuset and quota, MPROC_CPUS), so both sides of every
    mproc-vs-CPython join mean the same CPUs; alone, from sched_getaffinity and sysfs."""

    def __init__(self, budget, pairs, source, bound_by=None):
        self.budget = budget
        self.pairs = pairs
        self.source = source
        self.bound_by = bound_by

    @classmethod
    def from_affinity(cls):
        cpus = usable_cpus()
        first = cpus[0]
        cross = next(((first, c) for c in cpus[1:] if _core_id(c) != _core_id(first)), None)
        return cls(max(1, len(cpus)), {"same_core": (first, first), "cross_core": cross},
                   "sched_getaffinity + sysfs core ids")

    @classmethod
    def from_topology(cls, path):
        """Cpus from mproc-topo's JSON; ValueError naming the problem."""
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except OSError as e:
            raise ValueError(f"--topology {path}: {e.strerror or e}") from None
        except ValueError as e:
            raise ValueError(f"--topology {path}: not JSON ({e})") from None
        b = doc.get("budget") if isinstance(doc, dict) else None
        usable = b.get("usable") if isinstance(b, dict) else None
        if not isinstance(usable, int) or isinstance(usable, bool) or usable < 1:
            raise ValueError(f"--topology {path}: no budget.usable (a count >= 1)")
        raw = doc.get("pairs")
        if not isinstance(raw, dict):
            raise ValueError(f"--topology {path}: no pairs (same_core, cross_core)")
        allowed = set(usable_cpus())
        pairs = {}
        for name in ("same_core", "cross_core"):
            v = raw.get(name)
            if v is None and name == "cross_core":
                pairs[name] = None
                continue
            if (not isinstance(v, list) or len(v) != 2
                    or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                               for c in v)):
                raise ValueError(f"--topology {path}: pairs.{name} is not two CPU ids: {v!r}")
            bad = [c for c in v if c not in allowed]
            if bad:
                raise ValueError(f"--topology {path}: pairs.{name} names CPU {bad[0]}, not in "
                                 f"this process's affinity ({_cpu_list(allowed)})")
            pairs[name] = tuple(v)
        return cls(usable, pairs, "topology.json", b.get("bound_by"))

    def describe(self):
        def pair(p):
            return "none (one core)" if p is None else f"CPUs {p[0]},{p[1]}"
        bound = f", bound by {self.bound_by}" if self.bound_by else ""
        return (f"budget {self.budget} CPU{'s' if self.budget != 1 else ''}{bound}; "
                f"same_core {pair(self.pairs['same_core'])}; "
                f"cross_core {pair(self.pairs['cross_core'])} (from {self.source})")

    def context(self):
        return {"usable_cpus": self.budget, "cpus_source": self.source,
                "placement_pairs": {k: list(v) if v else None for k, v in self.pairs.items()}}


# Set by main() before any benchmark runs (from --topology, else from the affinity mask).
CPUS = None


def _cpus():
    global CPUS
    if CPUS is None:
        CPUS = Cpus.from_affinity()
    return CPUS


def placement_pair(placement):
    """Two CPUs: the same one twice, or two on different physical cores. None if impossible."""
    return _cpus().pairs[placement]


def pin(cpu):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def budget():
    return _cpus().budget


# --------------------------------------------------------------------------------------------
# results


class Skip(Exception):
    pass


def percentile(sorted_samples, p):
    if not sorted_samples:
        return 0.0
    k = max(0, math.ceil(p * len(sorted_samples)) - 1)
    return float(sorted_samples[k])


def latency_counters(samples_ns):
    s = sorted(samples_ns)
    return {"p50_ns": percentile(s, 0.50), "p99_ns": percentile(s, 0.99),
            "p999_ns": percentile(s, 0.999)}


class Runner:
    def __init__(self, profile, only, verbose, name_filter=None, reps=None):
        self.profile = profile
        self.reps, self.target_s = PROFILES[profile]
        self.reps = reps or self.reps
        self.name_filter = name_filter      # compiled regex over names (re.search), or None
        self.only = only
        self.verbose = verbose
        self.entries = []
        self.family = 0

    def wanted(self, group):
        return not self.only or group in self.only

    def error(self, name, message, reps=None, rep=0, fam=None):
        """Record name as skipped with message, shaped as the C harnesses' SkipWithError
        entries (error_occurred, error_message): gbjson lists it under the skipped benchmarks
        with its reason, and the run goes on."""
        if fam is None:
            fam = self.family
            self.family += 1
        self.entries.append({
            "name": name, "family_index": fam, "per_family_instance_index": 0,
            "run_name": name, "run_type": "iteration", "repetitions": reps or self.reps,
            "repetition_index": rep, "threads": 1, "error_occurred": True,
            "error_message": message, "iterations": 0, "real_time": 0.0,
            "cpu_time": 0.0, "time_unit": "ns"})

    def run(self, name, fn, *args, reps=None):
        """fn(*args) -> (iterations, seconds, counters) for one repetition."""
        if self.name_filter is not None and not self.name_filter.search(name):
            return
        reps = reps or self.reps
        runs = []
        fam = self.family
        self.family += 1
        t0 = time.monotonic()
        for r in range(reps):
            try:
                iters, secs, counters = fn(*args)
            except Skip as e:
                self.error(name, str(e), reps, r, fam)
                if self.verbose:
                    print(f"  {name}: skipped: {e}", file=sys.stderr)
                return
            except Exception as e:  # CPython's own error: this benchmark only, the rest go on
                if not getattr(e, "_mp_bench_reported", False):
                    traceback.print_exc()
                    _mark_reported(e)
                self.error(name, error_text(e), reps, r, fam)
                print(f"  {name}: skipped: {error_text(e)}", file=sys.stderr)
                return
            iters = max(1, iters)
            e = {"name": name, "family_index": fam, "per_family_instance_index": 0,
                 "run_name": name, "run_type": "iteration", "repetitions": reps,
                 "repetition_index": r, "threads": 1, "iterations": iters,
                 "real_time": secs * NS / iters, "cpu_time": secs * NS / iters,
                 "time_unit": "ns"}
            e.update(counters)
            runs.append(e)
        self.entries.extend(runs)
        if reps > 1 and runs:
            self._aggregates(name, fam, runs, reps)
        if self.verbose:
            med = statistics.median(r["real_time"] for r in runs) if runs else float("nan")
            print(f"  {name}: {med / 1000:.2f} us/iter ({time.monotonic() - t0:.1f} s)",
                  file=sys.stderr)

    def _aggregates(self, name, fam, runs, reps):
        keys = ["real_time", "cpu_time"] + [k for k in runs[0] if k not in (
            "name", "family_index", "per_family_instance_index", "run_name", "run_type",
            "repetitions", "repetition_index", "threads", "iterations", "real_time",
            "cpu_time", "time_unit", "label")]
        for agg in ("mean", "median", "stddev", "cv"):
            e = {"name": f"{name}_{agg}", "family_index": fam, "per_family_instance_index": 0,
                 "run_name": name, "run_type": "aggregate", "repetitions": reps,
                 "threads": 1, "aggregate_name": agg,
                 "aggregate_unit": "percentage" if agg == "cv" else "time",
                 "iterations": len(runs), "time_unit": "ns"}
            for k in keys:
                vals = [float(r[k]) for r in runs if k in r]
                if not vals:
                    continue
                mean = statistics.fmean(vals)
                sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
                e[k] = {"mean": mean, "median": statistics.median(vals), "stddev": sd,
                        "cv": (sd / mean) if mean else float("nan")}[agg]
            self.entries.append(e)


def error_text(e):
    """An exception as CPython prints its last line: 'OSError: [Errno 30] Read-only file
    system'."""
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _mark_reported(e):
    try:
        e._mp_bench_reported = True
    except AttributeError:
        pass


class Shared:
    """A resource several benchmarks share (a Pool, an executor, a Manager), made on first use.
    If making it fails (no /dev/shm: SemLock raises OSError), the error is kept and every
    benchmark that asks for it is recorded as skipped with that error; the others go on."""

    def __init__(self, make):
        self.make = make
        self.obj = None
        self.err = None

    def get(self):
        if self.err is not None:
            raise self.err
        if self.obj is None:
            try:
                self.obj = self.make()
            except Exception as e:
                self.err = e
                raise
        return self.obj

    def close(self, how):
        if self.obj is not None:
            how(self.obj)
            self.obj = None


def timed_loop(target_s, one, min_iters=1, max_iters=1_000_000):
    """Run one() until target_s elapses; returns (iterations, seconds, samples_ns)."""
    samples = []
    start = time.perf_counter_ns()
    deadline = start + int(target_s * NS)
    n = 0
    while n < min_iters or (time.perf_counter_ns() < deadline and n < max_iters):
        t = time.perf_counter_ns()
        one()
        samples.append(time.perf_counter_ns() - t)
        n += 1
    return n, (time.perf_counter_ns() - start) / NS, samples


# --------------------------------------------------------------------------------------------
# spawn: start -> reaped, per start method, swept over the parent's RSS


def _noop():
    pass


def touch_rss(mib):
    if mib <= 0:
        return None
    buf = bytearray(mib << 20)
    for off in range(0, len(buf), 4096):     # touch every page: resident, not just reserved
        buf[off] = 1
    return buf


def bench_spawn(rn):
    rss_list = [0, 64] + ([512] if rn.profile == "full" else [])
    if rn.profile == "smoke":
        rss_list = [0]
    for method in ("fork", "spawn", "forkserver"):
        if method not in mp.get_all_start_methods():
            continue
        ctx = mp.get_context(method)
        for mib in rss_list:
            ballast = touch_rss(mib)

            def one_rep(ctx=ctx):
                def one():
                    p = ctx.Process(target=_noop)
                    p.start()
                    p.join()
                n, secs, s = timed_loop(rn.target_s, one, min_iters=2 if rn.profile != "smoke" else 1)
                return n, secs, latency_counters(s)
            rn.run(f"python/spawn/{method}/rss_mib:{mib}", one_rep)
            del ballast


# --------------------------------------------------------------------------------------------
# pipe: one-way throughput of Connection.send_bytes/recv_bytes


def _pipe_sender(conn, size, count, cpu):
    pin(cpu)
    payload = bytes(size)
    for _ in range(count):
        conn.send_bytes(payload)
    conn.close()


def bench_pipe(rn):
    sizes = [64, 4096, 65536, 1 << 20] if rn.profile != "smoke" else [64, 65536]
    for transport, duplex in (("conn_pipe", False), ("conn_stream", True)):
        for placement in ("same_core", "cross_core"):
            pair = placement_pair(placement)
            for size in sizes:
                name = f"python/pipe/{transport}/bytes:{size}/placement:{placement}"
                if pair is None:
                    rn.run(name, _skip, "one usable core: no cross-core pair")
                    continue

                def one_rep(size=size, duplex=duplex, pair=pair):
                    count = max(8, min(200_000, int(rn.target_s * 2e9 / (size * 8 + 20000))))
                    r, w = mp.Pipe(duplex=duplex)
                    p = mp.get_context("fork").Process(target=_pipe_sender,
                                                       args=(w, size, count, pair[1]))
                    old = os.sched_getaffinity(0)
                    pin(pair[0])
                    t = time.perf_counter_ns()
                    p.start()
                    w.close()
                    got = 0
                    for _ in range(count):
                        got += len(r.recv_bytes())
                    secs = (time.perf_counter_ns() - t) / NS
                    p.join()
                    r.close()
                    os.sched_setaffinity(0, old)
                    if got != size * count:
                        raise RuntimeError(f"received {got} bytes, sent {size * count}")
                    return count, secs, {"bytes_per_second": got / secs,
                                         "msgs_per_second": count / secs}
                rn.run(name, one_rep)


def _skip(reason):
    raise Skip(reason)


# --------------------------------------------------------------------------------------------
# queue: Queue and SimpleQueue throughput, P producers x C consumers


def _q_producer(q, size, count, cpu, start):
    pin(cpu)
    payload = bytes(size)
    start.wait()
    for _ in range(count):
        q.put(payload)


def _q_consumer(q, count, out, start):
    start.wait()
    got = 0
    for _ in range(count):
        got += len(q.get())
    out.put(got)


def _queue_round(fork, make, size, P, C, total):
    """One timed round: P producers put total messages of size bytes, C consumers get them.

    Process start is outside the timed region (as in bench_queue.c, whose workers persist
    across rounds): every worker waits at a barrier, and the clock starts when it opens.
    """
    q = make()
    out = fork.Queue()
    start = fork.Barrier(P + C + 1)
    cons = [fork.Process(target=_q_consumer, args=(q, total // C, out, start))
            for _ in range(C)]
    prods = [fork.Process(target=_q_producer, args=(q, size, total // P, None, start))
             for _ in range(P)]
    for p in cons + prods:
        p.start()
    try:
        start.wait(timeout=60)
        t = time.perf_counter_ns()
        got = sum(out.get() for _ in range(C))
        secs = (time.perf_counter_ns() - t) / NS
    finally:
        for p in cons + prods:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
                p.join()
    if got != size * total:
        raise RuntimeError(f"received {got} bytes, sent {size * total}")
    return secs


def bench_queue(rn):
    sizes = [64, 4096, 65536] if rn.profile != "smoke" else [64]
    b = budget()
    counts = [1, 2, 4] if rn.profile == "full" else [c for c in (1, 2, 4) if c <= max(1, b)]
    if rn.profile == "smoke":
        counts = [1]
    fork = mp.get_context("fork")
    for kind, make in (("pipe", fork.Queue), ("simple_pipe", fork.SimpleQueue)):
        for size in sizes:
            for P in counts:
                for C in counts:
                    name = f"python/queue/{kind}/bytes:{size}/producers:{P}/consumers:{C}"
                    sized = {}

                    def one_rep(size=size, P=P, C=C, make=make, sized=sized):
                        # Like Google Benchmark's iteration calibration: an untimed pilot
                        # round measures this machine's rate, then every repetition moves
                        # about target_s worth of messages (64 KiB messages are ~10x slower
                        # than 64 B ones, so a fixed count would make the full profile last
                        # tens of minutes).
                        unit = P * C
                        if "total" not in sized:
                            pilot = max(unit * 4, 2000 - 2000 % unit)
                            secs = _queue_round(fork, make, size, P, C, pilot)
                            want = int(rn.target_s * pilot / max(secs, 1e-6))
                            sized["total"] = max(unit * 4, min(100_000, want))
                        total = sized["total"] - sized["total"] % unit
                        secs = _queue_round(fork, make, size, P, C, total)
                        return total, secs, {"bytes_per_second": size * total / secs,
                                             "msgs_per_second": total / secs}
                    rn.run(name, one_rep)


# --------------------------------------------------------------------------------------------
# latency: 8-byte round trips between two pinned processes


def _echo_conn(rx, tx, cpu):
    pin(cpu)
    while True:
        m = rx.recv_bytes()
        if not m:
            break
        tx.send_bytes(m)


def _echo_queue(rx, tx, cpu):
    pin(cpu)
    while True:
        m = rx.get()
        if m is None:
            break
        tx.put(m)


def _echo_lock(a, b, n, cpu):
    # Ping-pong by handing two locks back and forth (Lock handoff).
    pin(cpu)
    for _ in range(n):
        a.acquire()
        b.release()


def _echo_sem(a, b, n, cpu):
    pin(cpu)
    for _ in range(n):
        a.acquire()
        b.release()


def _echo_event(a, b, n, cpu):
    pin(cpu)
    for _ in range(n):
        a.wait()
        a.clear()
        b.set()


def bench_latency(rn):
    fork = mp.get_context("fork")
    payload = b"12345678"
    for placement in ("same_core", "cross_core"):
        pair = placement_pair(placement)
        for prim in ("conn_pipe", "conn_stream", "pipe_queue", "lock_handoff", "semaphore",
                     "event"):
            name = f"python/latency/{prim}/placement:{placement}"
            if pair is None:
                rn.run(name, _skip, "one usable core: no cross-core pair")
                continue

            def one_rep(prim=prim, pair=pair):
                old = os.sched_getaffinity(0)
                pin(pair[0])
                try:
                    return latency_rep(prim, pair)
                finally:
                    os.sched_setaffinity(0, old)

            def latency_rep(prim, pair):
                n = 200 if rn.profile == "smoke" else max(500, int(rn.target_s * 20000))
                samples = []
                if prim in ("conn_pipe", "conn_stream"):
                    duplex = prim == "conn_stream"
                    r1, w1 = mp.Pipe(duplex=duplex)
                    r2, w2 = mp.Pipe(duplex=duplex)
                    p = fork.Process(target=_echo_conn, args=(r1, w2, pair[1]))
                    p.start()
                    for _ in range(n):
                        t = time.perf_counter_ns()
                        w1.send_bytes(payload)
                        r2.recv_bytes()
                        samples.append(time.perf_counter_ns() - t)
                    w1.send_bytes(b"")
                    p.join()
                    for c in (r1, w1, r2, w2):
                        c.close()
                elif prim == "pipe_queue":
                    q1, q2 = fork.Queue(), fork.Queue()
                    p = fork.Process(target=_echo_queue, args=(q1, q2, pair[1]))
                    p.start()
                    for _ in range(n):
                        t = time.perf_counter_ns()
                        q1.put(payload)
                        q2.get()
                        samples.append(time.perf_counter_ns() - t)
                    q1.put(None)
                    p.join()
                else:
                    if prim == "event":
                        a, b = fork.Event(), fork.Event()
                        p = fork.Process(target=_echo_event, args=(a, b, n, pair[1]))
                        p.start()
                        for _ in range(n):
                            t = time.perf_counter_ns()
                            a.set()
                            b.wait()
                            b.clear()
                            samples.append(time.perf_counter_ns() - t)
                    else:
                        mk = fork.Lock if prim == "lock_handoff" else (lambda: fork.Semaphore(1))
                        a, b = mk(), mk()
                        a.acquire()
                        b.acquire()
                        fn = _echo_lock if prim == "lock_handoff" else _echo_sem
                        p = fork.Process(target=fn, args=(a, b, n, pair[1]))
                        p.start()
                        for _ in range(n):
                            t = time.perf_counter_ns()
                            a.release()
                            b.acquire()
                            samples.append(time.perf_counter_ns() - t)
                    p.join()
                secs = sum(samples) / NS
                return n, secs, latency_counters(samples)
            rn.run(name, one_rep)


# --------------------------------------------------------------------------------------------
# shm: shared counter updates per second; shared_memory create/attach


def _inc_locked(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def _inc_raw(v, n):
    for _ in range(n):
        v.value += 1


def bench_shm(rn):
    fork = mp.get_context("fork")
    b = budget()
    procs = [1] if rn.profile == "smoke" else sorted({1, 2, b} if rn.profile == "quick"
                                                     else set(range(1, b + 1)))
    for mode in ("lock", "none"):
        for P in procs:
            name = f"python/shm/value/{mode}/procs:{P}"

            def one_rep(mode=mode, P=P):
                n = max(1000, int(rn.target_s * (1_500_000 if mode == "lock" else 4_000_000) / P))
                v = fork.Value("q", 0, lock=True) if mode == "lock" else fork.Value("q", 0,
                                                                                     lock=False)
                fn = _inc_locked if mode == "lock" else _inc_raw
                ps = [fork.Process(target=fn, args=(v, n)) for _ in range(P)]
                t = time.perf_counter_ns()
                for p in ps:
                    p.start()
                for p in ps:
                    p.join()
                secs = (time.perf_counter_ns() - t) / NS
                total = n * P
                got = v.value
                c = {"updates_per_second": total / secs}
                if mode == "none":
                    c["lost_updates"] = float(total - got)
                elif got != total:
                    raise RuntimeError(f"locked counter {got} != {total}")
                return total, secs, c
            rn.run(name, one_rep)
    for size in ([4096, 1 << 20, 64 << 20] if rn.profile != "smoke" else [4096]):
        def create_rep(size=size):
            def one():
                s = shared_memory.SharedMemory(create=True, size=size)
                s.close()
                s.unlink()
            n, secs, samples = timed_loop(rn.target_s, one, min_iters=3)
            return n, secs, latency_counters(samples)
        rn.run(f"python/shm/create/named/bytes:{size}", create_rep)

        def attach_rep(size=size):
            owner = shared_memory.SharedMemory(create=True, size=size)
            try:
                def one():
                    s = shared_memory.SharedMemory(name=owner.name)
                    s.close()
                n, secs, samples = timed_loop(rn.target_s, one, min_iters=3)
            finally:
                owner.close()
                owner.unlink()
            return n, secs, latency_counters(samples)
        rn.run(f"python/shm/attach/named/bytes:{size}", attach_rep)


# --------------------------------------------------------------------------------------------
# manager: one proxy call's round trip, over a Unix socket and over TCP with an authkey


def bench_manager(rn):
    from multiprocessing.managers import SyncManager
    ops = ["connect", "dict_set", "dict_get", "list_append", "value_get", "queue_put_get",
           "lock_acquire_release"]
    for transport in ("unix", "tcp"):
        key = os.urandom(32)

        def make(transport=transport, key=key):
            if transport == "tcp":
                mgr = SyncManager(address=("127.0.0.1", 0), authkey=key)
            else:
                mgr = SyncManager(authkey=key)
            mgr.start()
            try:
                d = mgr.dict()
                d["k"] = b"x" * 8
                lst = mgr.list()
                val = mgr.Value("q", 7)
                q = mgr.Queue()
                lk = mgr.Lock()
            except BaseException:
                mgr.shutdown()
                raise
            calls = {
                "dict_set": lambda: d.__setitem__("k", b"12345678"),
                "dict_get": lambda: d["k"],
                "list_append": lambda: lst.append(b"12345678"),
                "value_get": lambda: val.value,
                "queue_put_get": lambda: (q.put(b"12345678"), q.get()),
                "lock_acquire_release": lambda: (lk.acquire(), lk.release()),
                "_list": lst,
            }
            return mgr, calls

        shared = Shared(make)
        try:
            for op in ops:
                name = f"python/manager/{op}/transport:{transport}"

                def one_rep(op=op, key=key):
                    mgr, calls = shared.get()
                    if op == "connect":
                        def one():
                            c = SyncManager(address=mgr.address, authkey=key)
                            c.connect()
                        n, secs, s = timed_loop(rn.target_s, one, min_iters=3)
                    else:
                        fn = calls[op]
                        n, secs, s = timed_loop(rn.target_s, fn, min_iters=10)
                        if op == "list_append":
                            del calls["_list"][:]
                    return n, secs, latency_counters(s)
                rn.run(name, one_rep)
        finally:
            shared.close(lambda m: m[0].shutdown())


# --------------------------------------------------------------------------------------------
# pools: per-task overhead, CPU and I/O scaling, time to error after a worker is SIGKILLed


def _noop_task(x):
    return x


_SPIN_PER_MS = None


def _spin(n):
    acc = 0
    for i in range(n):
        acc += i * i
    return acc


def calibrate_spin_per_ms(trials=5):
    """Loop iterations of _spin per millisecond on this machine, this interpreter: the
    fastest of a few trials of >= 20 ms each (as bench_pool.c's calibrate). One trial that
    lost the CPU for a while made every task shorter than it claimed: a 1-worker pool of
    "20 ms" tasks then ran 78 tasks/s, and each decider round (a new process, a new
    calibration) measured a different task."""
    n = 20000
    while True:
        t = time.perf_counter()
        _spin(n)
        dt = time.perf_counter() - t
        if dt > 0.02:
            break
        n *= 2
    for _ in range(trials - 1):
        t = time.perf_counter()
        _spin(n)
        dt = min(dt, time.perf_counter() - t)
    return n / (dt * 1000)


def _cpu_task(n):
    return _spin(n)


def _io_task(ms):
    time.sleep(ms / 1000)
    return ms


def bench_pool_overhead(rn):
    fork = mp.get_context("fork")
    chunks = [1, 10, 100, 1000] if rn.profile != "smoke" else [1]
    n_tasks = 2000 if rn.profile != "smoke" else 200
    workers = min(2, budget()) if budget() > 1 else 1

    def make_pool():
        pool = fork.Pool(workers)
        try:
            pool.map(_noop_task, range(workers * 4))   # warm: workers up
        except BaseException:
            pool.terminate()
            raise
        return pool

    def make_executor():
        ex = ProcessPoolExecutor(workers, mp_context=fork)
        try:
            list(ex.map(_noop_task, range(workers * 4)))
        except BaseException:
            ex.shutdown(wait=True, cancel_futures=True)
            raise
        return ex

    shared_pool = Shared(make_pool)
    try:
        for api in ("map", "imap", "apply_async"):
            for cs in chunks:
                if api == "apply_async" and cs != 1:
                    continue
                name = f"python/pool_overhead/{api}/chunksize:{cs}"

                def one_rep(api=api, cs=cs):
                    pool = shared_pool.get()
                    t = time.perf_counter_ns()
                    if api == "map":
                        r = pool.map(_noop_task, range(n_tasks), chunksize=cs)
                    elif api == "imap":
                        r = list(pool.imap(_noop_task, range(n_tasks), chunksize=cs))
                    else:
                        rs = [pool.apply_async(_noop_task, (i,)) for i in range(n_tasks)]
                        r = [x.get() for x in rs]
                    secs = (time.perf_counter_ns() - t) / NS
                    if r != list(range(n_tasks)):
                        raise RuntimeError("wrong results")
                    return n_tasks, secs, {"ns_per_task": secs * NS / n_tasks}
                rn.run(name, one_rep)
    finally:
        shared_pool.close(lambda p: (p.terminate(), p.join()))
    shared_ex = Shared(make_executor)
    try:
        for cs in chunks:
            for api in ("submit", "executor_map"):
                if api == "submit" and cs != 1:
                    continue
                name = f"python/pool_overhead/{api}/chunksize:{cs}"

                def one_rep(api=api, cs=cs):
                    ex = shared_ex.get()
                    n = n_tasks // 2
                    t = time.perf_counter_ns()
                    if api == "submit":
                        fs = [ex.submit(_noop_task, i) for i in range(n)]
                        r = [f.result() for f in fs]
                    else:
                        r = list(ex.map(_noop_task, range(n), chunksize=cs))
                    secs = (time.perf_counter_ns() - t) / NS
                    if r != list(range(n)):
                        raise RuntimeError("wrong results")
                    return n, secs, {"ns_per_task": secs * NS / n}
                rn.run(name, one_rep)
    finally:
        shared_ex.close(lambda ex: ex.shutdown(wait=True, cancel_futures=True))


def bench_pool_scaling(rn):
    fork = mp.get_context("fork")
    b = budget()
    spin_per_ms = calibrate_spin_per_ms()
    if rn.profile == "smoke":
        cpu_workers, io_workers, task_ms_list = [1, 2], [1, 4], [1]
    elif rn.profile == "quick":
        cpu_workers = sorted({1, 2, b, 2 * b})
        io_workers = [1, 8, 32]
        task_ms_list = [20]
    else:
        cpu_workers = sorted(set(list(range(1, 2 * b + 1)) if b <= 8
                                 else [1, 2, 4, b // 2, b, b + b // 2, 2 * b]))
        io_workers = [1, 2, 4, 8, 16, 32, 64]
        task_ms_list = [1, 20]
    for task_ms in task_ms_list:
        n = int(spin_per_ms * task_ms)
        base = None
        for W in cpu_workers:
            name = f"python/pool/cpu/workers:{W}/task_ms:{task_ms}"

            def one_rep(W=W):
                nonlocal base
                # >= 16 tasks per busy CPU: fewer measure the map's tail more than the pool
                # (bench_pool.c's pool/cpu says why).
                tasks = max(2 * W, max(16, int(rn.target_s * 1000 / task_ms)) * min(W, b))
                with fork.Pool(W) as pool:
                    pool.map(_noop_task, range(W))
                    t = time.perf_counter_ns()
                    pool.map(_cpu_task, [n] * tasks, chunksize=1)
                    secs = (time.perf_counter_ns() - t) / NS
                tps = tasks / secs
                if W == 1 and base is None:
                    base = tps
                sp = tps / base if base else float("nan")
                return tasks, secs, {"tasks_per_second": tps, "speedup": sp,
                                     "efficiency": sp / min(W, b)}
            rn.run(name, one_rep)
    io_ms = 20
    for W in io_workers:
        name = f"python/pool/io/workers:{W}/task_ms:{io_ms}"

        def one_rep(W=W):
            tasks = max(2 * W, W * max(2, int(rn.target_s * 1000 / io_ms)))
            with fork.Pool(W) as pool:
                pool.map(_noop_task, range(W))
                t = time.perf_counter_ns()
                pool.map(_io_task, [io_ms] * tasks, chunksize=1)
                secs = (time.perf_counter_ns() - t) / NS
            ideal = W * 1000.0 / io_ms
            tps = tasks / secs
            return tasks, secs, {"tasks_per_second": tps, "efficiency": tps / ideal}
        rn.run(name, one_rep)


def _sleep_task(s):
    time.sleep(s)
    return s


def bench_pool_failure(rn):
    """Time from SIGKILL of a busy worker to an error at the caller. CPython's Pool never
    reports one (gh-66587): after a bounded wait we record 'hang (> T s)'."""
    fork = mp.get_context("fork")
    bound = {"smoke": 0.5, "quick": 2.0, "full": 5.0}[rn.profile]

    def pool_rep():
        pool = fork.Pool(1)
        try:
            r = pool.apply_async(_sleep_task, (30,))
            time.sleep(0.2)
            victim = pool._pool[0].pid
            t = time.perf_counter_ns()
            os.kill(victim, signal.SIGKILL)
            try:
                r.get(timeout=bound)
                hung = 0.0
            except mp.TimeoutError:
                hung = 1.0
            except Exception:
                hung = 0.0
            secs = (time.perf_counter_ns() - t) / NS
        finally:
            pool.terminate()
            pool.join()
        return 1, secs, {"hang": hung, "bound_s": bound}
    rn.run("python/pool/failure/pool_sigkill", pool_rep)

    def executor_rep():
        ex = ProcessPoolExecutor(1, mp_context=fork)
        try:
            f = ex.submit(_sleep_task, 30)
            time.sleep(0.2)
            victim = next(iter(ex._processes.values())).pid
            t = time.perf_counter_ns()
            os.kill(victim, signal.SIGKILL)
            hung = 0.0
            try:
                f.result(timeout=bound)
            except BrokenProcessPool:
                pass
            except TimeoutError:
                hung = 1.0
            secs = (time.perf_counter_ns() - t) / NS
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
        return 1, secs, {"hang": hung, "bound_s": bound}
    rn.run("python/pool/failure/executor_sigkill", executor_rep)


# --------------------------------------------------------------------------------------------
# probe: does each primitive work here at all (no /dev/shm, a read-only or tiny one)? Each is
# tried in a child interpreter of its own, so a crash (SIGBUS) or a hang costs only that one.
# Keys are shared with bench/devshm_probe.c (libmproc's side) and plots/mproc_results/report.py.


def _probe_send(conn):
    conn.send_bytes(b"x")
    conn.close()


def _probe_put(q):
    q.put(b"x")


def _probe_lock(lk):
    with lk:
        pass


def _probe_release(s):
    s.release()


def _probe_set(e):
    e.set()


def _probe_notify(c):
    with c:
        c.notify_all()


def _probe_barrier(b):
    b.wait(timeout=10)


def _probe_value(v):
    with v.get_lock():
        v.value += 1


def _probe_array(a):
    a[0] = 7


def _probe_child(target, *args):
    p = mp.get_context("fork").Process(target=target, args=args)
    p.start()
    p.join(30)
    if p.exitcode != 0:
        raise RuntimeError(f"child exit code {p.exitcode}")


def _probe_process(method):
    if method not in mp.get_all_start_methods():
        raise NotImplementedError(f"no start method '{method}' in CPython")
    p = mp.get_context(method).Process(target=_noop)
    p.start()
    p.join(30)
    if p.exitcode != 0:
        raise RuntimeError(f"child exit code {p.exitcode}")


def _probe_pipe():
    r, w = mp.Pipe(duplex=False)
    _probe_child(_probe_send, w)
    assert r.recv_bytes() == b"x"


def _probe_queue(make):
    q = make()
    _probe_child(_probe_put, q)
    got = q.get(timeout=10) if not isinstance(q, mp.queues.SimpleQueue) else q.get()
    assert got == b"x"
    if isinstance(q, mp.queues.JoinableQueue):
        q.task_done()
        q.join()


def _probe_semaphore():
    s = mp.get_context("fork").Semaphore(0)
    _probe_child(_probe_release, s)
    assert s.acquire(timeout=10)


def _probe_event():
    e = mp.get_context("fork").Event()
    _probe_child(_probe_set, e)
    assert e.wait(10)


def _probe_barrier_both():
    b = mp.get_context("fork").Barrier(2)
    p = mp.get_context("fork").Process(target=_probe_barrier, args=(b,))
    p.start()
    b.wait(timeout=10)
    p.join(30)


def _probe_value_both():
    v = mp.get_context("fork").Value("q", 0)
    _probe_child(_probe_value, v)
    assert v.value == 1


def _probe_array_both():
    a = mp.get_context("fork").Array("q", 4)
    _probe_child(_probe_array, a)
    assert a[0] == 7


def _probe_shared_memory():
    s = shared_memory.SharedMemory(create=True, size=1 << 20)
    try:
        s.buf[:] = b"\1" * len(s.buf)      # every page touched: a tmpfs too small fails here
    finally:
        s.close()
        s.unlink()


def _probe_shared_memory_oversize(size):
    """A named segment bigger than /dev/shm's free space: CPython only sets the size
    (ftruncate), so creation succeeds and the first write to a page that tmpfs cannot back
    kills the process with SIGBUS. The caller unlinks the name when this child dies."""
    s = shared_memory.SharedMemory(create=True, size=size)
    print(json.dumps({"name": s.name}), flush=True)
    for off in range(0, size, 4096):
        s.buf[off] = 1
    s.close()
    s.unlink()


def _probe_manager():
    with mp.get_context("fork").Manager() as m:
        d = m.dict()
        d["k"] = 1
        assert d["k"] == 1


def _probe_pool():
    with mp.get_context("fork").Pool(1) as pool:
        assert pool.map(abs, [-1]) == [1]


def _probe_futures():
    with ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as ex:
        assert ex.submit(abs, -1).result(timeout=30) == 1


PROBES = {
    "process/fork": lambda: _probe_process("fork"),
    "process/spawn": lambda: _probe_process("spawn"),
    "process/forkserver": lambda: _probe_process("forkserver"),
    "pipe": _probe_pipe,
    "queue/pipe": lambda: _probe_queue(mp.get_context("fork").Queue),
    "simple_queue": lambda: _probe_queue(mp.get_context("fork").SimpleQueue),
    "joinable_queue": lambda: _probe_queue(mp.get_context("fork").JoinableQueue),
    "lock": lambda: _probe_child(_probe_lock, mp.get_context("fork").Lock()),
    "semaphore": _probe_semaphore,
    "event": _probe_event,
    "condition": lambda: _probe_child(_probe_notify, mp.get_context("fork").Condition()),
    "barrier": _probe_barrier_both,
    "value": _probe_value_both,
    "array": _probe_array_both,
    "shared_memory": _probe_shared_memory,
    "manager": _probe_manager,
    "pool": _probe_pool,
    "futures": _probe_futures,
}


def probe_one(key, arg=None):
    """Child side: run one probe, print one JSON line {"ok", "error"}; exit 0."""
    try:
        if key == "shared_memory/oversize":
            _probe_shared_memory_oversize(int(arg))
        else:
            PROBES[key]()
        res = {"ok": True, "error": None}
    except Exception as e:
        res = {"ok": False, "error": error_text(e)}
    print(json.dumps(res), flush=True)
    return 0


def probe_all(oversize=0, timeout_s=60):
    """Parent side: {key: {"ok", "error"}} for every probe, each in its own interpreter."""
    import subprocess
    out = {}
    keys = list(PROBES) + (["shared_memory/oversize"] if oversize > 0 else [])
    for key in keys:
        argv = [sys.executable, os.path.abspath(__file__), "--probe-one", key]
        if key == "shared_memory/oversize":
            argv.append(str(oversize))
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, universal_newlines=True,
                               timeout=timeout_s, start_new_session=True)
        except subprocess.TimeoutExpired:
            out[key] = {"ok": False, "error": f"no answer within {timeout_s} s (hang)"}
            continue
        res, name = None, None
        for line in r.stdout.splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and "name" in doc:
                name = doc["name"]
            elif isinstance(doc, dict) and "ok" in doc:
                res = doc
        if name:                              # the oversize child died holding it
            try:
                shared_memory.SharedMemory(name=name).unlink()
            except OSError:
                pass
        if r.returncode < 0:
            try:
                sig = signal.Signals(-r.returncode).name
            except ValueError:
                sig = f"signal {-r.returncode}"
            what = "created, then killed by" if name else "killed by"
            res = {"ok": False, "error": f"{what} {sig}"}
        elif res is None:
            last = (r.stderr.strip().splitlines() or ["no output"])[-1]
            res = {"ok": False, "error": f"exit {r.returncode}: {last}"}
        out[key] = res
    return out


GROUPS = {
    "spawn": bench_spawn,
    "pipe": bench_pipe,
    "queue": bench_queue,
    "latency": bench_latency,
    "shm": bench_shm,
    "manager": bench_manager,
    "pool_overhead": bench_pool_overhead,
    "pool": bench_pool_scaling,
    "pool_failure": bench_pool_failure,
}


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="CPython multiprocessing measured with mproc's benchmark names "
                    "(Google Benchmark-compatible JSON).")
    ap.add_argument("--profile", default="quick", help="smoke, quick or full")
    ap.add_argument("--only", default="", help="comma-separated groups: " + ", ".join(GROUPS))
    ap.add_argument("--out", help="JSON file to write (required unless --probe)")
    ap.add_argument("--probe", action="store_true",
                    help="try each primitive once, each in a child interpreter, and print "
                         "{primitive: {ok, error}} as JSON (what works without /dev/shm)")
    ap.add_argument("--probe-oversize", type=int, default=0, metavar="BYTES",
                    help="with --probe: also create a shared_memory segment of BYTES and "
                         "touch every page (only where /dev/shm is a private tiny tmpfs)")
    ap.add_argument("--probe-one", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--list", action="store_true", help="list the groups and exit")
    ap.add_argument("--filter", default=os.environ.get("BENCHMARK_FILTER", ""),
                    help="regex: only the names it matches (re.search), like "
                         "--benchmark_filter (the decider: plots/mproc_results/decide.py); "
                         "default: "
                         "$BENCHMARK_FILTER, which Google Benchmark reads in the C harnesses "
                         "(mproc-recommend --measure sets it for both)")
    ap.add_argument("--repetitions", type=int, default=0,
                    help="repetitions per name (default: the profile's)")
    ap.add_argument("--topology", metavar="FILE",
                    help="the run's topology.json (mproc-topo --json): the CPU budget and the "
                         "placement pairs, the same CPUs as the C harnesses' (mproc-bench "
                         "passes it); without it: sched_getaffinity and sysfs")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    if a.list:
        print("\n".join(GROUPS))
        return 0
    if a.probe_one:
        return probe_one(*a.probe_one[:2])
    if a.probe:
        doc = {"python_version": platform.python_version(),
               "primitives": probe_all(max(0, a.probe_oversize))}
        print(json.dumps(doc, indent=1))
        return 0
    if not a.out:
        print("mp_bench: --out is required", file=sys.stderr)
        return 2
    if a.profile not in PROFILES:
        print(f"mp_bench: unknown profile '{a.profile}' (valid: {', '.join(PROFILES)})",
              file=sys.stderr)
        return 2
    only = [x for x in a.only.split(",") if x]
    bad = [x for x in only if x not in GROUPS]
    if bad:
        print(f"mp_bench: unknown group '{bad[0]}' (valid: {', '.join(GROUPS)})",
              file=sys.stderr)
        return 2
    try:
        name_filter = re.compile(a.filter) if a.filter else None
    except re.error as e:
        print(f"mp_bench: bad --filter '{a.filter}': {e}", file=sys.stderr)
        return 2
    if a.repetitions < 0:
        print(f"mp_bench: bad --repetitions {a.repetitions} (want >= 1)", file=sys.stderr)
        return 2
    global CPUS
    try:
        CPUS = Cpus.from_topology(a.topology) if a.topology else Cpus.from_affinity()
    except ValueError as e:
        print(f"mp_bench: {e}", file=sys.stderr)
        return 2
    print(f"mp_bench: {CPUS.describe()}"
          + ("" if a.topology else "; no --topology: pass the run's topology.json to use "
             "the C harnesses' CPUs"), file=sys.stderr)
    rn = Runner(a.profile, only, a.verbose, name_filter, a.repetitions or None)
    started = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    for g, fn in GROUPS.items():
        if rn.wanted(g):
            if a.verbose:
                print(f"python/{g}", file=sys.stderr)
            try:
                fn(rn)
            except Exception as e:      # outside any benchmark: the group, not the run
                traceback.print_exc()
                rn.error(f"python/{g}", error_text(e))
    doc = {
        "context": {
            "date": started,
            "host_name": socket.gethostname(),
            "executable": sys.executable,
            "num_cpus": os.cpu_count(),
            **CPUS.context(),
            "python_version": platform.python_version(),
            "python_implementation": platform.python_implementation(),
            "mproc_profile": a.profile,
            "library_build_type": "release",
            "comparator": "cpython-multiprocessing",
        },
        "benchmarks": rn.entries,
    }
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
