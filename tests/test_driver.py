#!/usr/bin/env python3
"""Suite driver, reader, TSV, plots and report (issue 3 parts 6-7), on the fixtures in
tests/data/ and on fake harnesses (tests/data/fake_harness.py copied in as bench_<name> in a
temporary build dir). TAP output for meson; a name pattern as argv[1] selects cases.

Never touches the real /dev/shm, /dev/mqueue or results/: the driver is pointed at temporary
directories (MPROC_SHM_DIR, MPROC_MQUEUE_DIR, --results, --out)."""
import contextlib
import importlib.util
import io
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
DATA = os.path.join(TESTS, "data")
DRIVER = os.path.join(ROOT, "bench", "mproc-bench")
PLOT = os.path.join(ROOT, "plots", "plot.py")
REPORT = os.path.join(ROOT, "plots", "report.py")
FAKE = os.path.join(DATA, "fake_harness.py")
PY = sys.executable
import registry  # noqa: E402  plots/registry.py (PYTHONPATH: plots/, tests/meson.build)
from mproc_results import gbjson, report, tsv  # noqa: E402

import taprun  # tests/taprun.py: unittest cases as TAP


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


class TmpCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mproc-driver-test.")
        # addCleanup, not tearDown: it also runs when setUp skips or fails half-way.
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.build = os.path.join(self.tmp, "build")
        os.makedirs(os.path.join(self.build, "bench"))
        self.shm = os.path.join(self.tmp, "shm")
        self.mq = os.path.join(self.tmp, "mq")
        os.mkdir(self.shm)
        os.mkdir(self.mq)
        self.results = os.path.join(self.tmp, "results")
        self.env = dict(os.environ, MPROC_SHM_DIR=self.shm, MPROC_MQUEUE_DIR=self.mq,
                        FAKE_PIDFILE=os.path.join(self.tmp, "pids"),
                        MPROC_BENCH_PYTHON="0",   # fake harnesses only, no CPython run
                        MPROC_CROSSCHECK="0")     # no real tools (test_crosscheck.py fakes them)
        for k in list(self.env):
            if k.startswith("FAKE_MODE"):
                del self.env[k]

    def fake(self, *names):
        for n in names:
            dst = os.path.join(self.build, "bench", "bench_" + n)
            shutil.copy(FAKE, dst)
            os.chmod(dst, 0o755)

    def driver(self, *args, **kw):
        argv = [PY, DRIVER, "--build", self.build, "--results", self.results] + list(args)
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, env=kw.get("env", self.env),
                              timeout=taprun.scaled(120))

    def copy_fixture(self, name):
        dst = os.path.join(self.tmp, name)
        shutil.copytree(os.path.join(DATA, name), dst)
        return dst


# ------------------------------------------------------------------------------------------
class Reader(unittest.TestCase):
    def test_strip_suffixes(self):
        s = gbjson.strip_suffixes
        self.assertEqual(s("baseline/pipe_rtt/placement:same_core/manual_time"),
                         "baseline/pipe_rtt/placement:same_core")
        self.assertEqual(s("BM/size:64/workers:2/min_time:0.010/manual_time"), "BM/size:64/workers:2")
        self.assertEqual(s("BM/1/iterations:10/repeats:2/real_time/threads:2"), "BM/1")
        self.assertEqual(s("baseline/syscall"), "baseline/syscall")
        self.assertEqual(s("x/process_time/real_time"), "x")
        # Our own argument named like a suffix, before the time type, is kept.
        self.assertEqual(s("spawn/fork/rss_mib:0/threads:8/manual_time"),
                         "spawn/fork/rss_mib:0/threads:8")

    def test_baseline_fixture(self):
        run = gbjson.load_run(os.path.join(DATA, "run_baseline"))
        self.assertTrue(run.complete)
        figs = run.figures
        self.assertEqual(len(figs), 11)
        self.assertEqual(list(figs)[0], "baseline/cacheline_rtt/placement:same_core")
        f = figs["baseline/pipe_rtt/placement:cross_core"]
        self.assertEqual(f.repetitions, 3)
        self.assertAlmostEqual(f.median("p50_ns"), 71000.0)
        self.assertLess(f.value("real_time").cv, 0.05)
        self.assertGreater(figs["baseline/futex_rtt/placement:cross_core"].value("p50_ns").cv, 0.05)
        mc = figs["baseline/memcpy/bytes:1048576"]
        self.assertAlmostEqual(mc.median("real_time"), 31800.0)       # us -> ns
        st = mc.value("real_time")
        self.assertLessEqual(st.min, st.q1)
        self.assertLessEqual(st.q3, st.max)
        self.assertEqual(run.skipped, {})

    def test_nan_counters(self):
        h = gbjson.load_harness(os.path.join(DATA, "gb_nan.json"))
        f = h.figures["baseline/pipe_rtt/placement:same_core"]
        self.assertEqual(f.value("p99_ns").n, 0)
        self.assertEqual(f.value("p99_ns").nonfinite, 2)
        self.assertTrue(math.isnan(f.median("p99_ns")))
        self.assertAlmostEqual(f.median("real_time"), 2000.0)
        self.assertIsNone(f.value("p99_ns").cv)
        sc = h.figures["baseline/syscall"]
        self.assertTrue(math.isnan(sc.median("real_time")))
        self.assertAlmostEqual(sc.median("cpu_time"), 50.0)

    def test_error_entry_is_skipped_with_reason(self):
        h = gbjson.load_harness(os.path.join(DATA, "gb_error.json"))
        self.assertEqual(list(h.figures), ["baseline/pipe_rtt/placement:same_core"])
        self.assertEqual(h.skipped, {"baseline/pipe_rtt/placement:cross_core":
                                     "no cross-core pair: one usable core"})

    def test_aggregates_only(self):
        h = gbjson.load_harness(os.path.join(DATA, "gb_aggregates_only.json"))
        f = h.figures["baseline/fork_exit"]
        self.assertAlmostEqual(f.median("real_time"), 80000.0)
        self.assertAlmostEqual(f.value("real_time").cv, 0.12)
        self.assertEqual(f.repetitions, 9)

    def test_not_a_run_and_corrupt_files(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(gbjson.GBJsonError):
                gbjson.load_run(d)
            with self.assertRaises(gbjson.GBJsonError):
                gbjson.load_run(os.path.join(d, "missing"))
            with open(os.path.join(d, "context.json"), "w") as f:
                f.write('{"complete": true}')
            with open(os.path.join(d, "spawn.json"), "w") as f:
                f.write('{"benchmarks": [')
            with open(os.path.join(d, "other.json"), "w") as f:
                f.write('[1, 2]')
            run = gbjson.load_run(d)
            self.assertEqual(sorted(run.load_errors), ["other.json", "spawn.json"])
            self.assertIn("not valid JSON", run.load_errors["spawn.json"])
            with open(os.path.join(d, "context.json"), "w") as f:
                f.write('{"complete": tru')
            with self.assertRaises(gbjson.GBJsonError):
                gbjson.load_run(d)


# ------------------------------------------------------------------------------------------
class Steps(TmpCase):
    def test_tsv(self):
        run_dir = self.copy_fixture("run_baseline")
        run = gbjson.load_run(run_dir)
        done = tsv.write_run(run)
        self.assertEqual([d[0]["id"] for d in done], ["baseline_latency"])
        path = done[0][2]
        self.assertEqual(path, os.path.join(run_dir, "plots", "data", "baseline_latency.tsv"))
        rows = [l.rstrip("\n").split("\t") for l in open(path) if not l.startswith("#")]
        self.assertEqual([r[0] for r in rows],
                         ["cacheline_rtt", "futex_rtt", "pipe_rtt", "eventfd_rtt"])
        self.assertEqual(rows[2][1:], ["1950", "4875", "71000", "177500"])  # p50, p99 x2

    def test_tsv_missing_cells_are_nan(self):
        run_dir = os.path.join(self.tmp, "r")
        os.mkdir(run_dir)
        with open(os.path.join(run_dir, "context.json"), "w") as f:
            json.dump({"complete": True}, f)
        shutil.copy(os.path.join(DATA, "gb_error.json"), os.path.join(run_dir, "baseline.json"))
        done = tsv.write_run(gbjson.load_run(run_dir))
        rows = [l.split() for l in open(done[0][2]) if not l.startswith("#")]
        self.assertEqual(rows, [["pipe_rtt", "1900", "2500"]])

    def test_lines_kind(self):
        run_dir = os.path.join(self.tmp, "r")
        os.mkdir(run_dir)
        with open(os.path.join(run_dir, "context.json"), "w") as f:
            json.dump({"complete": True}, f)
        rows = []
        for tr, sizes in (("raw_pipe", (65536, 64, 4096)), ("conn_pipe", (64, 4096))):
            for b in sizes:
                n = "pipe/%s/bytes:%d/placement:cross_core/manual_time" % (tr, b)
                rows.append({"name": n, "run_name": n, "run_type": "iteration",
                             "repetitions": 1, "repetition_index": 0, "iterations": 5,
                             "real_time": 1.0, "cpu_time": 1.0, "time_unit": "us",
                             "bytes_per_second": b * 1000.0})
        with open(os.path.join(run_dir, "pipe.json"), "w") as f:
            json.dump({"context": {}, "benchmarks": rows}, f)
        done = {d[0]["id"]: d for d in tsv.write_run(gbjson.load_run(run_dir))}
        self.assertEqual(list(done), ["pipe_throughput"])
        data = [l.split() for l in open(done["pipe_throughput"][2]) if not l.startswith("#")]
        self.assertEqual(data, [["64", "0.064", "0.064", "0.064", "0.064"],
                                ["4096", "4.096", "4.096", "4.096", "4.096"],
                                ["65536", "65.536", "65.536", "NaN", "NaN"]])
        r = self.plot(run_dir)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        if shutil.which("gnuplot"):
            self.assertTrue(os.path.isfile(os.path.join(run_dir, "plots",
                                                        "pipe_throughput.gnuplot.svg")))

    def test_palette_is_fixed(self):
        self.assertEqual(registry.color("same_core"), registry.color("python:same_core"))
        self.assertEqual(registry.color("something_new"), registry.color("something_new"))
        for p in registry.PLOTS:
            self.assertTrue(os.path.isfile(os.path.join(ROOT, "plots", p["kind"] + ".gp")))

    def test_report(self):
        run_dir = self.copy_fixture("run_baseline")
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(report.main([run_dir]), 0)
        text = open(os.path.join(run_dir, "report.md")).read()
        self.assertIn("**2 usable CPUs** (2 physical cores), bound by **hardware**", text)
        self.assertIn("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", text)
        self.assertIn("`baseline/futex_rtt/placement:cross_core`", text)
        self.assertIn("**unstable**", text)
        self.assertEqual(text.count("**unstable**"), 1)
        self.assertIn("## Capabilities", text)
        self.assertIn("Run **complete**", text)

    def test_report_manager_ratios(self):
        """The manager section quotes the issue's ratios from the figures of the run."""
        run_dir = self.copy_fixture("run_baseline")

        def gb(path, figs):
            rows = [{"name": n + "/manual_time", "run_name": n + "/manual_time",
                     "run_type": "iteration", "repetitions": 1, "repetition_index": 0,
                     "threads": 1, "iterations": 100, "real_time": p50, "cpu_time": p50,
                     "time_unit": "ns", "p50_ns": p50, "p99_ns": 2 * p50}
                    for n, p50 in figs]
            with open(path, "w") as f:
                json.dump({"context": {"host_name": "devbox", "num_cpus": 2},
                           "benchmarks": rows}, f)

        gb(os.path.join(run_dir, "manager.json"), [
            ("manager/dict_get/transport:unix", 20000.0),
            ("manager/raw_rtt/transport:unix", 16000.0),
            ("manager/dict_get/transport:unix/spin:off", 18000.0),
            ("manager/dict_get/transport:unix/placement:cross_core", 10000.0),
            ("manager/raw_rtt/transport:unix/placement:cross_core", 100000.0),
            ("manager/dict_get/transport:unix/placement:cross_core/spin:off", 110000.0)])
        gb(os.path.join(run_dir, "python.json"), [
            ("python/manager/dict_get/transport:unix", 120000.0)])
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(report.main([run_dir]), 0)
        text = open(os.path.join(run_dir, "report.md")).read()
        self.assertIn("`dict_get` / `raw_rtt` (unix, same_core): 1.25x\n", text)
        self.assertIn("`dict_get` / `raw_rtt` (unix, cross_core): 0.10x", text)
        self.assertIn("`dict_get` spin:off / spin (unix, cross_core): 11.00x", text)
        self.assertNotIn("target <=", text)             # the targets live in targets.md
        targets = open(os.path.join(run_dir, "targets.md")).read()
        self.assertIn("(`manager/dict_get/transport:unix` / `manager/raw_rtt/transport:unix`) "
                      "| <= 1.5 | 1.25x (no interval) | undecided: too few repetitions", targets)
        # CPython's Manager runs unpinned, ours pinned: not compared, and said so.
        self.assertIn("not compared: placements differ", targets)
        self.assertNotIn("(tcp, same_core)", text)      # no tcp figures, no tcp ratios

    def test_report_pipe_ratios(self):
        """The pipe section splits issue 5's conn_pipe / raw_pipe into conn_pipe / framed_pipe
        and framed_pipe / raw_pipe per placement, and lists the figures in transport order
        whatever the (interleaved) file order."""
        run_dir = self.copy_fixture("run_baseline")
        figs = [("conn_pipe", "cross_core", 1.805e9), ("raw_pipe", "same_core", 4e9),
                ("framed_pipe", "cross_core", 1.9e9), ("raw_pipe", "cross_core", 2e9),
                ("conn_pipe", "same_core", 3.9e9)]
        rows = []
        for tr, place, bps in figs:
            n = "pipe/%s/bytes:65536/placement:%s/manual_time" % (tr, place)
            for i, f in enumerate((0.9, 1.0, 1.1)):        # the median is the middle one
                rows.append({"name": n, "run_name": n, "run_type": "iteration",
                             "repetitions": 3, "repetition_index": i, "iterations": 5,
                             "real_time": 1.0, "cpu_time": 1.0, "time_unit": "us",
                             "bytes_per_second": bps * f})
        with open(os.path.join(run_dir, "pipe.json"), "w") as f:
            json.dump({"context": {"mproc_random_interleaving": "true"}, "benchmarks": rows}, f)
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(report.main([run_dir]), 0)
        text = open(os.path.join(run_dir, "report.md")).read()
        self.assertIn("the repetitions ran randomly interleaved in time", text)
        self.assertIn("| `cross_core` | 0.902x | 0.950x | 0.950x |", text)
        self.assertIn("| `same_core` | 0.975x | — | — |", text)
        targets = open(os.path.join(run_dir, "targets.md")).read()
        self.assertIn("| >= 0.95 | 0.902x (no interval) | undecided: too few repetitions for a "
                      "95 % interval (3 and 3; 6 needed) | bootstrap, interleaved |", targets)
        order = [text.index("`pipe/%s/bytes:65536/placement:%s`" % (tr, pl)) for tr, pl in (
            ("raw_pipe", "cross_core"), ("raw_pipe", "same_core"),
            ("framed_pipe", "cross_core"), ("conn_pipe", "cross_core"),
            ("conn_pipe", "same_core"))]
        self.assertEqual(order, sorted(order))

    def test_report_incomplete(self):
        run_dir = self.copy_fixture("run_incomplete")
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(report.main([run_dir]), 0)
        text = open(os.path.join(run_dir, "report.md")).read()
        self.assertIn("INCOMPLETE RUN", text)
        self.assertIn("`spawn`: interrupted by SIGINT", text)
        self.assertIn("`pipe`: not started", text)

    def edit_context(self, run_dir, **kw):
        path = os.path.join(run_dir, "context.json")
        with open(path) as f:
            ctx = json.load(f)
        ctx.update(kw)
        with open(path, "w") as f:
            json.dump(ctx, f)
        return ctx

    def report_text(self, run_dir):
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(report.main([run_dir]), 0)
        return open(os.path.join(run_dir, "report.md")).read()

    def test_report_says_why_python_failed(self):
        """A failed python harness is reported as failed, with the first line of its error,
        not as "not selected"."""
        run_dir = self.copy_fixture("run_baseline")
        self.edit_context(run_dir, harnesses={
            "selected": ["baseline", "python"], "run": ["baseline", "python"],
            "ok": ["baseline"], "skipped": [],
            "failed": [{"name": "python", "reason": "exit 1", "partial_json": False}]})
        os.makedirs(os.path.join(run_dir, "logs"), exist_ok=True)
        with open(os.path.join(run_dir, "logs", "python.log"), "w") as f:
            f.write("$ /usr/bin/python3 mp_bench.py --profile smoke\n"
                    "Traceback (most recent call last):\n"
                    "  File \"mp_bench.py\", line 1, in <module>\n"
                    "    pool = fork.Pool(2)\n"
                    "OSError: [Errno 30] Read-only file system\n"
                    "# exit status 1 after 0.5 s\n")
        text = self.report_text(run_dir)
        self.assertIn("The CPython comparators **failed** in this run (exit 1: "
                      "`OSError: [Errno 30] Read-only file system`", text)
        self.assertNotIn("`ONLY=` without `python`", text)
        # Not selected: that is what it says then.
        self.edit_context(run_dir, harnesses={"selected": ["baseline"], "run": ["baseline"],
                                              "ok": ["baseline"], "failed": [], "skipped": []})
        self.assertIn("did not run in this run (not selected: `ONLY=` without `python`",
                      self.report_text(run_dir))

    def test_report_without_devshm(self):
        """The "Without /dev/shm" table when the run saw no usable /dev/shm: a row per
        primitive with each side's probe answer (CPython's error where it fails) and the
        figure where both work; on a normal run, one line on how to get it."""
        run_dir = self.copy_fixture("run_baseline")
        text = self.report_text(run_dir)
        self.assertIn("## Without /dev/shm", text)
        self.assertIn("`make bench NO_DEV_SHM=1`", text)
        self.assertNotIn("| primitive | libmproc | CPython |", text)
        err = "OSError: [Errno 30] Read-only file system"
        py = {k: {"ok": True, "error": None} for k in (
            "process/fork", "process/spawn", "process/forkserver", "pipe", "manager")}
        py.update({k: {"ok": False, "error": err} for k in (
            "queue/pipe", "simple_queue", "joinable_queue", "lock", "semaphore", "event",
            "condition", "barrier", "value", "array", "shared_memory", "pool", "futures")})
        mp = {k: {"ok": True, "error": None, "on": "memfd"} for k, in (
            (r[1],) for r in report.DEVSHM_ROWS) if k != "shared_memory/oversize"}
        mp["shared_memory"] = {"ok": False, "error": "-EROFS (Read-only file system)",
                               "on": "shm_open"}
        self.edit_context(run_dir, devshm={
            "mode": "none", "simulated": True, "simulates": "an empty read-only /dev/shm",
            "how": "unshare --mount", "seen": {"path": "/dev/shm", "state": "read-only"},
            "probe": {"mproc": {"primitives": mp}, "cpython": {"primitives": py}}})
        # A figure on both sides for the pipe row: this run's numbers go in the table.
        rows = []
        for n, v in (("latency/conn_pipe/placement:cross_core", 10000.0),
                     ("python/latency/conn_pipe/placement:cross_core", 40000.0)):
            rows.append({"name": n, "run_name": n, "run_type": "iteration", "repetitions": 1,
                         "repetition_index": 0, "threads": 1, "iterations": 10,
                         "real_time": v, "cpu_time": v, "time_unit": "ns", "p50_ns": v})
        with open(os.path.join(run_dir, "latency.json"), "w") as f:
            json.dump({"context": {}, "benchmarks": rows[:1]}, f)
        with open(os.path.join(run_dir, "python.json"), "w") as f:
            json.dump({"context": {}, "benchmarks": rows[1:]}, f)
        text = self.report_text(run_dir)
        sec = text[text.index("## Without /dev/shm"):]
        sec = sec[:sec.index("\n## ", 5)]
        self.assertIn("**read-only**", sec)
        self.assertIn("What to use here", sec)
        table = [l for l in sec.splitlines() if l.startswith("| ")]
        self.assertEqual(table[0], "| primitive | libmproc | CPython | "
                                   "figure: libmproc / CPython |")
        by = {l.split(" | ")[0][2:]: l for l in table[1:]}
        self.assertEqual(len(by), len(report.DEVSHM_ROWS) - 1)      # no oversize probe here
        for row in ("Queue, pipe back end (CPython's Queue)",
                    "Pool (apply_async, cost per task)"):
            self.assertIn("| works (memfd) | **fails**: `%s` |" % err, by[row])
        self.assertIn("| works (memfd) | works | 10 µs (1 rep: no interval) / 40 µs "
                      "(1 rep: no interval); libmproc 4x as fast (no interval) |",
                      by["Pipe (round trip)"])
        self.assertIn("| **fails**: `-EROFS (Read-only file system)` |",
                      by["shared_memory, named (in /dev/shm)"])
        self.assertIn("| no such primitive |", by["Process, vfork"])

    def test_report_bad_input(self):
        r = subprocess.run([PY, REPORT, self.tmp], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)
        self.assertIn("not a run directory", r.stderr)

    def plot(self, run_dir, env=None):
        py = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else PY
        return subprocess.run([py, PLOT, run_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, env=env, timeout=taprun.scaled(120))

    def test_plot(self):
        run_dir = self.copy_fixture("run_baseline")
        r = self.plot(run_dir)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        pdir = os.path.join(run_dir, "plots")
        have_gp = shutil.which("gnuplot") is not None
        for tool, have in (("gnuplot", have_gp), ("mpl", "matplotlib not installed" not in r.stdout)):
            for ext in ("png", "svg"):
                p = os.path.join(pdir, "baseline_latency.%s.%s" % (tool, ext))
                if have:
                    self.assertGreater(os.path.getsize(p), 1000, p)
                    if ext == "svg":
                        ET.parse(p)          # well-formed XML
                    else:
                        with open(p, "rb") as f:
                            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        if not have_gp:
            self.assertIn("plots: gnuplot not installed — skipped", r.stdout)

    def test_plot_without_tools(self):
        run_dir = self.copy_fixture("run_baseline")
        env = dict(os.environ, PATH=os.path.join(self.tmp, "nothing"), PYTHONPATH="/nonexistent")
        # No gnuplot on PATH; matplotlib hidden by running with -S (no site-packages).
        r = subprocess.run([PY, "-S", PLOT, run_dir], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, env=env,
                           timeout=taprun.scaled(60))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("plots: gnuplot not installed — skipped", r.stdout)
        self.assertTrue(os.path.isfile(os.path.join(run_dir, "plots", "data", "baseline_latency.tsv")))

    def test_plot_bad_input(self):
        r = self.plot(self.tmp)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)


# ------------------------------------------------------------------------------------------
class BadInput(TmpCase):
    def one_line_exit_2(self, r, words):
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)
        self.assertFalse(os.path.exists(self.results), "results tree created on bad input")

    def test_bad_profile(self):
        self.fake("baseline")
        self.one_line_exit_2(self.driver("--profile", "nope"), ["nope", "smoke, quick, full"])

    def test_unknown_only(self):
        self.fake("baseline", "spawn")
        self.one_line_exit_2(self.driver("--only", "baseline,unknown"),
                             ["'unknown'", "choose from", "baseline", "spawn"])

    def test_unwritable_out(self):
        self.fake("baseline")
        blocker = os.path.join(self.tmp, "file")
        open(blocker, "w").close()
        self.one_line_exit_2(self.driver("--out", os.path.join(blocker, "run", "x")), ["--out"])
        self.assertEqual(os.listdir(self.tmp).count("file"), 1)
        # A directory we cannot write into (meaningful when not root).
        ro = os.path.join(self.tmp, "ro")
        os.mkdir(ro, 0o500)
        if os.geteuid() != 0:
            self.one_line_exit_2(self.driver("--out", os.path.join(ro, "run")), ["--out"])
            self.assertEqual(os.listdir(ro), [])

    def test_nonempty_out(self):
        self.fake("baseline")
        d = os.path.join(self.tmp, "used")
        os.mkdir(d)
        open(os.path.join(d, "context.json"), "w").close()
        self.one_line_exit_2(self.driver("--out", d), ["not empty"])

    def test_unknown_flag_and_no_build(self):
        self.one_line_exit_2(self.driver("--bogus"), ["--bogus"])
        self.one_line_exit_2(self.driver(), ["no harnesses"])

    def test_missing_build_dir_is_named(self):
        # Named before the harnesses are looked for (was "unknown harness 'baseline'").
        missing = os.path.join(self.tmp, "nonexistent")
        argv = [PY, DRIVER, "--build", missing, "--results", self.results]
        for extra in (["--only", "baseline"], [], ["--list"], ["--verify"]):
            r = subprocess.run(argv + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True, env=self.env, timeout=taprun.scaled(60))
            self.one_line_exit_2(r, ["--build %s" % missing, "no such build directory",
                                     "make build"])

    def test_missing_python_is_named_before_the_run(self):
        self.fake("baseline")
        self.one_line_exit_2(self.driver("--python", "/nonexistent/python3", "--only", "baseline"),
                             ["--python /nonexistent/python3", "no such interpreter"])
        self.one_line_exit_2(self.driver("--python", "/nonexistent/python3", "--verify"),
                             ["--python /nonexistent/python3"])

    def test_version(self):
        with open(os.path.join(ROOT, "meson.build")) as f:
            want = re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)
        r = self.driver("--version")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "mproc-bench %s\n" % want, ""))

    def test_no_dev_shm_bad_mode_and_no_unshare(self):
        self.fake("baseline")
        self.one_line_exit_2(self.driver("--no-dev-shm", "lambda"),
                             ["unknown --no-dev-shm mode 'lambda'", "none, tiny"])
        nothing = os.path.join(self.tmp, "nothing")
        os.mkdir(nothing)
        self.one_line_exit_2(self.driver("--no-dev-shm", env=dict(self.env, PATH=nothing)),
                             ["--no-dev-shm needs unshare(1)"])

    def test_test_only_harness_not_listed(self):
        self.fake("baseline", "shimtest")
        os.mkdir(os.path.join(self.build, "bench", "bench_baseline.p"))
        r = self.driver("--list")
        self.assertEqual(r.returncode, 0)
        names = [l.split()[0] for l in r.stdout.splitlines()]
        self.assertIn("baseline", names)
        self.assertNotIn("shimtest", names)
        self.assertNotIn("baseline.p", names)


# ------------------------------------------------------------------------------------------
class MakeVars(TmpCase):
    """make bench / make verify reject a bad PROFILE, ONLY or NO_DEV_SHM before anything is
    installed or built: run as `make -n` (nothing would run even if the check failed, except
    the recursive $(MAKE) lines, themselves -n) and nothing may be printed to do."""

    def make(self, *args):
        if not shutil.which("make"):
            self.skipTest("make not installed")
        env = {k: v for k, v in self.env.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        return subprocess.run(["make", "-n", "-C", ROOT, "--no-print-directory"] + list(args)
                              + ["BUILD=" + self.build + "-none"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, env=env, timeout=taprun.scaled(60))

    def rejected(self, r, words):
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "", "commands would have run before the check")
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)

    def test_bad_profile(self):
        for goal in ("bench", "verify"):
            self.rejected(self.make(goal, "PROFILE=bogus"),
                          ["make %s" % goal, "PROFILE='bogus'", "smoke quick full"])

    def test_bad_only(self):
        self.rejected(self.make("bench", "ONLY=baseline,spwn"),
                      ["unknown harness 'spwn'", "baseline", "spawn", "python"])

    def test_bad_no_dev_shm(self):
        self.rejected(self.make("bench", "NO_DEV_SHM=lambda"), ["NO_DEV_SHM='lambda'", "tiny"])

    def test_good_variables_pass(self):
        for args in (["PROFILE=smoke", "ONLY=baseline,pool", "NO_DEV_SHM=tiny"],
                     ["PROFILE=", "ONLY=", "NO_DEV_SHM="], ["NO_DEV_SHM=1"], ["NO_DEV_SHM=0"]):
            r = self.make("bench", *args)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("deps.sh bench", r.stdout)


# ------------------------------------------------------------------------------------------
class Driver(TmpCase):
    def load_ctx(self, run_dir):
        with open(os.path.join(run_dir, "context.json")) as f:
            return json.load(f)

    def test_run_layout(self):
        self.fake("baseline", "fake")
        r = self.driver("--profile", "smoke", "--no-plots")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        latest = os.path.join(self.results, "latest")
        self.assertTrue(os.path.islink(latest))
        self.assertFalse(os.path.isabs(os.readlink(latest)))
        run_dir = os.path.realpath(latest)
        self.assertEqual(os.path.dirname(os.path.dirname(run_dir)), os.path.realpath(self.results))
        ctx = self.load_ctx(run_dir)
        self.assertIs(ctx["complete"], True)
        self.assertEqual(ctx["status"], "ok")
        self.assertEqual(ctx["profile"], "smoke")
        self.assertEqual(ctx["harnesses"]["ok"], ["baseline", "fake"])
        for k in ("host", "kernel", "cpu_model", "compiler", "git", "libc", "gbench_version",
                  "hwloc_version", "python", "budget", "started_utc", "finished_utc"):
            self.assertIn(k, ctx)
        for n in ("baseline", "fake"):
            with open(os.path.join(run_dir, n + ".json")) as f:
                doc = json.load(f)
            self.assertEqual(doc["context"]["mproc_profile"], "smoke")   # --profile passed
            self.assertIn("mode ok profile smoke",
                          open(os.path.join(run_dir, "logs", n + ".log")).read())
        self.assertTrue(os.path.isfile(os.path.join(run_dir, "report.md")))
        self.assertEqual([l for l in os.listdir(run_dir) if l.endswith(".part")], [])
        # noise.json (mproc_results/noise.py): a sample at the start, around each harness,
        # at the end.
        with open(os.path.join(run_dir, "noise.json")) as f:
            nz = json.load(f)
        self.assertEqual(nz["schema"], "mproc-noise/1")
        self.assertEqual([s["when"] for s in nz["samples"]],
                         ["start", "before:baseline", "after:baseline", "before:fake",
                          "after:fake", "before:decide", "after:decide", "end"])
        self.assertEqual(sorted(nz["harnesses"]), ["baseline", "decide", "fake"])
        for h in nz["harnesses"].values():
            self.assertIsInstance(h["nivcsw"], int)
            self.assertIsInstance(h["busy"], bool)
        self.assertIn(nz["verdict"]["line"].split(":")[0], ("quiet", "busy"))
        self.assertEqual(ctx["noise"], "noise.json")
        # The warning at the start says what the start snapshot found (busy or unreadable).
        self.assertEqual("mproc-bench: warning: machine " in r.stdout,
                         bool(nz["start"]["reasons"]), r.stdout)
        progress = [l for l in r.stdout.splitlines() if l.startswith("[")]
        self.assertEqual(len(progress), 4)
        self.assertIn("ETA", progress[0])
        self.assertIn("report.md", r.stdout.splitlines()[-1])

    def test_run_with_plots(self):
        self.fake("baseline")
        r = self.driver("--profile", "smoke", "--out", os.path.join(self.tmp, "run"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.results, "latest")))
        self.assertTrue(any(l.startswith("plots: ") for l in r.stdout.splitlines()), r.stdout)
        self.assertTrue(os.path.isfile(os.path.join(self.tmp, "run", "plots", "data",
                                                    "baseline_latency.tsv")))
        text = open(os.path.join(self.tmp, "run", "report.md")).read()
        self.assertIn("baseline/pipe_rtt/placement:cross_core", text)

    def test_failing_harnesses_do_not_stop_the_run(self):
        self.fake("a", "b", "c", "d")
        env = dict(self.env, FAKE_MODE_A="fail", FAKE_MODE_B="nojson", FAKE_MODE_C="crash")
        r = self.driver("--profile", "smoke", "--no-plots", "--out",
                        os.path.join(self.tmp, "run"), env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        ctx = self.load_ctx(os.path.join(self.tmp, "run"))
        self.assertTrue(ctx["complete"])
        self.assertEqual(ctx["status"], "failed")
        failed = {f["name"]: f["reason"] for f in ctx["harnesses"]["failed"]}
        self.assertEqual(failed, {"a": "exit 3", "b": "exit 0 but no valid JSON written",
                                  "c": "killed by SIGSEGV"})
        self.assertEqual(ctx["harnesses"]["ok"], ["d"])
        self.assertIn("FAILED", r.stdout)
        text = open(os.path.join(self.tmp, "run", "report.md")).read()
        self.assertIn("Failed harnesses", text)

    def test_harness_timeout(self):
        self.fake("slow", "next")
        env = dict(self.env, FAKE_MODE_SLOW="sleep")
        # 4 s on a quiet machine; scaled with the load, or 'next' (a Python start-up and a
        # JSON write) ran past it too at load 6 on 2 CPUs.
        limit = int(math.ceil(taprun.scaled(4)))
        t0 = time.monotonic()
        r = self.driver("--no-plots", "--harness-timeout", str(limit), "--out",
                        os.path.join(self.tmp, "run"), env=env)
        self.assertLess(time.monotonic() - t0, taprun.scaled(30))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        ctx = self.load_ctx(os.path.join(self.tmp, "run"))
        self.assertEqual(ctx["harnesses"]["failed"], [{"name": "slow", "reason":
                                                       "timed out after %d s" % limit,
                                                       "partial_json": False}], r.stdout)
        self.assertEqual(ctx["harnesses"]["ok"], ["next"])
        for pid in (int(x) for x in open(env["FAKE_PIDFILE"]).read().split()):
            self.assertFalse(alive(pid))

    def test_orphans_are_reaped(self):
        self.fake("orph")
        env = dict(self.env, FAKE_MODE="orphan")
        r = self.driver("--no-plots", "--out", os.path.join(self.tmp, "run"), env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        pid = int(open(env["FAKE_PIDFILE"]).read())
        self.assertFalse(alive(pid), "setsid'd grandchild left running")

    def interrupt(self, sig):
        self.fake("a_first", "b_sleep", "c_never")
        env = dict(self.env, FAKE_MODE_B_SLEEP="shm")
        run_dir = os.path.join(self.tmp, "run")
        p = subprocess.Popen([PY, DRIVER, "--build", self.build, "--results", self.results,
                              "--profile", "smoke", "--out", run_dir], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
        pidfile = env["FAKE_PIDFILE"]
        deadline = time.monotonic() + taprun.scaled(60)
        while not (os.path.exists(pidfile) and open(pidfile).read().endswith("\n")):
            self.assertLess(time.monotonic(), deadline, "fake harness never started")
            self.assertIsNone(p.poll(), "driver exited early")
            time.sleep(0.05)
        pids = [int(x) for x in open(pidfile).read().split()]
        self.assertEqual(len(os.listdir(self.shm)), 1)
        t0 = time.monotonic()
        p.send_signal(sig)
        out, err = p.communicate(timeout=taprun.scaled(30))
        took = time.monotonic() - t0
        self.assertEqual(p.returncode, 128 + sig, out + err)
        self.assertLess(took, taprun.scaled(10.0))
        for pid in pids:
            self.assertFalse(alive(pid), "harness process %d left running" % pid)
        ctx = self.load_ctx(run_dir)
        self.assertIs(ctx["complete"], False)
        self.assertEqual(ctx["status"], "interrupted")
        self.assertEqual(ctx["harnesses"]["ok"], ["a_first"])
        self.assertEqual(ctx["harnesses"]["failed"][0]["name"], "b_sleep")
        self.assertEqual(ctx["harnesses"]["skipped"][0]["name"], "c_never")
        with open(os.path.join(run_dir, "a_first.json")) as f:
            self.assertIsInstance(json.load(f)["benchmarks"], list)
        self.assertFalse(os.path.exists(os.path.join(run_dir, "b_sleep.json")))
        self.assertEqual([f for f in os.listdir(run_dir) if ".part" in f or ".tmp" in f], [])
        self.assertEqual(os.listdir(self.shm), [], "stale shm name of the dead harness left")
        self.assertIn("INCOMPLETE", open(os.path.join(run_dir, "report.md")).read())

    def test_no_dev_shm_run(self):
        """--no-dev-shm: the harnesses see a read-only /dev/shm, context.json says so and
        holds the CPython probe's answers; the host's /dev/shm is untouched."""
        if os.geteuid() != 0 and subprocess.run(["unshare", "-Urm", "true"],
                                                stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("neither root nor unprivileged user namespaces")
        if subprocess.run(["unshare", "-m", "true"] if os.geteuid() == 0 else ["true"],
                          stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("unshare -m is not permitted here")
        self.fake("baseline")
        env = dict(self.env)
        del env["MPROC_SHM_DIR"]          # the real /dev/shm, as the namespace shows it
        before = os.access("/dev/shm", os.W_OK)
        run_dir = os.path.join(self.tmp, "run")
        r = self.driver("--profile", "smoke", "--no-plots", "--no-dev-shm", "--out", run_dir,
                        env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("/dev/shm is read-only (simulated", r.stdout)
        ctx = self.load_ctx(run_dir)
        d = ctx["devshm"]
        self.assertEqual((d["mode"], d["simulated"], d["seen"]["state"]),
                         ("none", True, "read-only"))
        self.assertIn("unshare", d["how"])
        py = d["probe"]["cpython"]["primitives"]
        self.assertTrue(py["pipe"]["ok"])
        self.assertFalse(py["queue/pipe"]["ok"])
        self.assertIn("Read-only file system", py["queue/pipe"]["error"])
        self.assertIn("not built", d["probe"]["mproc"]["error"])      # a fake build
        self.assertEqual(os.access("/dev/shm", os.W_OK), before)
        text = open(os.path.join(run_dir, "report.md")).read()
        self.assertIn("| Queue, pipe back end (CPython's Queue) | not probed", text)

    def test_kill9_leaves_nothing_and_is_reported(self):
        """kill -9 of the driver during a harness that forked a child and an orphaned,
        setsid'd grandchild: all of them die (the keeper sees the driver's pipe close), the
        run's private TMPDIR goes, and the next run reports the dead run and marks it."""
        self.fake("a_tree")
        tmpdir = os.path.join(self.tmp, "tmp")
        os.mkdir(tmpdir)
        env = dict(self.env, FAKE_MODE="tree", TMPDIR=tmpdir)
        run_dir = os.path.join(self.results, "host", "20260101T000000Z")
        p = subprocess.Popen([PY, DRIVER, "--build", self.build, "--results", self.results,
                              "--profile", "smoke", "--no-plots", "--out", run_dir], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pidfile = env["FAKE_PIDFILE"]
        deadline = time.monotonic() + 60
        while not (os.path.exists(pidfile) and open(pidfile).read().endswith("\n")):
            self.assertLess(time.monotonic(), deadline, "fake harness never started")
            self.assertIsNone(p.poll(), "driver exited early")
            time.sleep(0.05)
        fields = open(pidfile).read().split()
        pids, run_tmp = [int(x) for x in fields[:3]], fields[3]
        self.assertEqual(os.path.dirname(run_tmp), tmpdir)     # a private TMPDIR per run
        self.assertTrue(os.path.exists(os.path.join(run_tmp, "pymp-fake")))
        for pid in pids:
            self.assertTrue(alive(pid))
        p.kill()
        p.wait(timeout=30)
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in pids) or os.path.exists(run_tmp):
            self.assertLess(time.monotonic(), deadline, "left behind: %s%s" % (
                [pid for pid in pids if alive(pid)],
                " and " + run_tmp if os.path.exists(run_tmp) else ""))
            time.sleep(0.05)
        ctx = self.load_ctx(run_dir)
        self.assertEqual(ctx["status"], "running")               # nobody could say otherwise
        self.assertEqual(ctx["driver_pid"], p.pid)
        self.assertTrue(ctx["driver_boot_id"])
        self.assertIsInstance(ctx["driver_start_ticks"], int)
        r = self.driver("--profile", "smoke", "--no-plots", env=dict(self.env, TMPDIR=tmpdir))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("run died: ", r.stdout)
        self.assertIn("20260101T000000Z", r.stdout)
        ctx = self.load_ctx(run_dir)
        self.assertEqual(ctx["status"], "died")
        self.assertIs(ctx["complete"], False)
        self.assertIn(str(p.pid), ctx["died"]["why"])
        self.assertEqual(os.listdir(tmpdir), [])
        # Reported once: a later --clean-stale lists it as incomplete, no longer as dying.
        r = self.driver("--clean-stale", env=dict(self.env, TMPDIR=tmpdir))
        self.assertNotIn("run died", r.stdout)
        self.assertIn("20260101T000000Z (died)", r.stdout)

    def test_clean_stale_finds_dead_run(self):
        """--clean-stale marks a run whose driver is gone (its pid dead, or alive but with
        another start time: a reused pid) and leaves a live one alone."""
        me = os.getpid()
        runs = {"dead": {"driver_pid": dead_pid()},
                "reused": {"driver_pid": me, "driver_start_ticks": -1},
                "live": {"driver_pid": me}}
        for name, extra in runs.items():
            d = os.path.join(self.results, "host", name)
            os.makedirs(d)
            with open(os.path.join(d, "context.json"), "w") as f:
                json.dump(dict(extra, complete=False, status="running",
                               host=socket.gethostname()), f)
        r = self.driver("--clean-stale")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.count("run died: "), 2, r.stdout)
        for name, want in (("dead", "died"), ("reused", "died"), ("live", "running")):
            self.assertEqual(self.load_ctx(os.path.join(self.results, "host", name))["status"],
                             want, name)

    def test_sigint(self):
        self.interrupt(signal.SIGINT)

    def test_sigterm(self):
        self.interrupt(signal.SIGTERM)

    def test_eta_scales_with_finished_harnesses(self):
        import importlib.machinery
        import importlib.util
        # The driver's own directory is on sys.path when it runs: its results_path module.
        rp = importlib.util.spec_from_file_location(
            "results_path", os.path.join(os.path.dirname(DRIVER), "results_path.py"))
        sys.modules.setdefault("results_path", importlib.util.module_from_spec(rp))
        rp.loader.exec_module(sys.modules["results_path"])
        loader = importlib.machinery.SourceFileLoader("mproc_bench", DRIVER)
        spec = importlib.util.spec_from_loader("mproc_bench", loader)
        mb = importlib.util.module_from_spec(spec)
        loader.exec_module(mb)
        hs = [mb.Harness(n, "native", "/x") for n in ("baseline", "spawn", "unknown_one")]

        class A:
            profile = "quick"
        run = mb.Run(A(), self.tmp, hs, self.results)
        exp = [h.expected("quick") for h in hs]
        self.assertEqual(exp, [mb.EXPECTED_S["baseline"][1], mb.EXPECTED_S["spawn"][1],
                               mb.DEFAULT_EXPECTED[1]])
        self.assertAlmostEqual(run.eta(0), sum(exp))
        run.durations["baseline"] = exp[0] / 2.0          # ran twice as fast as expected
        self.assertAlmostEqual(run.eta(1), (exp[1] + exp[2]) / 2.0)
        py = mb.Harness("python", "python", "/src/bench/python/mp_bench.py", default=False)
        self.assertEqual(py.argv("/r/python.json.part", "smoke", "/usr/bin/python3"),
                         ["/usr/bin/python3", "/src/bench/python/mp_bench.py", "--profile",
                          "smoke", "--out", "/r/python.json.part"])
        # The run's topology.json goes to the CPython comparators (their CPUs = the C side's).
        self.assertEqual(py.argv("/r/python.json.part", "smoke", "py", "/r/topology.json")[-2:],
                         ["--topology", "/r/topology.json"])
        self.assertEqual(hs[0].argv("/r/b.json.part", "full", "py"),
                         ["/x", "--benchmark_out=/r/b.json.part", "--benchmark_out_format=json",
                          "--profile=full"])
        self.assertEqual(mb.fmt_dur(75), "1:15")
        self.assertEqual(mb.fmt_dur(3725), "1:02:05")

    def test_clean_stale(self):
        dead, me = dead_pid(), os.getpid()
        for n in ("mproc-%d-0-aa" % dead, "mproc-%d-1-bb" % me, "sem.mproc-%d-2-cc" % dead,
                  "other-%d" % dead):
            open(os.path.join(self.shm, n), "w").close()
        open(os.path.join(self.mq, "mproc-%d-3-dd" % dead), "w").close()
        # Socket directories of the manager ($TMPDIR) and forkserver: a dead creator's go, a
        # live one's, a non-socket's and an unrelated name stay.
        tmpd = os.path.join(self.tmp, "tmpdir")
        os.mkdir(tmpd)
        keep = ["mproc-%d-Ab12Cd" % me, "mproc-%d-fs-Zz9Yy8" % dead, "mproc-%d-xyz" % dead]
        for n in ["mproc-%d-Ab12Cd" % dead, "mproc-%d-fs-Qq1Ww2" % dead] + keep:
            os.mkdir(os.path.join(tmpd, n))
        for n in ("mproc-%d-Ab12Cd" % dead, "mproc-%d-fs-Qq1Ww2" % dead, "mproc-%d-Ab12Cd" % me):
            s = socket.socket(socket.AF_UNIX)
            s.bind(os.path.join(tmpd, n, "sock"))
            s.close()
        open(os.path.join(tmpd, "mproc-%d-fs-Zz9Yy8" % dead, "data"), "w").close()
        inc = os.path.join(self.results, "host", "20260101T000000Z")
        os.makedirs(inc)
        with open(os.path.join(inc, "context.json"), "w") as f:
            json.dump({"complete": False, "status": "interrupted"}, f)
        # A run's private TMPDIR whose driver is gone goes (with what is in it); a live one's
        # stays.
        os.makedirs(os.path.join(tmpd, "mproc-bench-%d-abcd1234" % dead, "pymp-x"))
        keep.append("mproc-bench-%d-efgh5678" % me)
        os.mkdir(os.path.join(tmpd, keep[-1]))
        r = self.driver("--clean-stale", env=dict(self.env, TMPDIR=tmpd))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(os.listdir(tmpd)), sorted(keep))
        self.assertEqual(sorted(os.listdir(self.shm)), sorted(["mproc-%d-1-bb" % me,
                                                               "other-%d" % dead]))
        self.assertEqual(os.listdir(self.mq), [])
        self.assertIn("incomplete run kept", r.stdout)
        self.assertTrue(os.path.isdir(inc))


# ------------------------------------------------------------------------------------------
MP_BENCH = os.path.join(ROOT, "bench", "python", "mp_bench.py")


class MpBench(TmpCase):
    """The CPython comparators isolate each benchmark: an exception records that benchmark as
    skipped with CPython's own error (as the C harnesses' SkipWithError), the rest go on."""

    def test_error_entry_is_a_skip_with_the_error(self):
        spec = importlib.util.spec_from_file_location("mp_bench", MP_BENCH)
        mp_bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mp_bench)
        rn = mp_bench.Runner("smoke", [], False)
        shared = mp_bench.Shared(lambda: (_ for _ in ()).throw(
            OSError(30, "Read-only file system")))
        with contextlib.redirect_stderr(io.StringIO()):
            rn.run("python/x/a", lambda: shared.get())
            rn.run("python/x/b", lambda: shared.get())        # the same error, made once
            rn.run("python/x/c", lambda: (3, 0.001, {"p50_ns": 5.0}))
        path = os.path.join(self.tmp, "python.json")
        with open(path, "w") as f:
            json.dump({"context": {}, "benchmarks": rn.entries}, f)
        h = gbjson.load_harness(path)
        self.assertEqual(list(h.figures), ["python/x/c"])
        self.assertEqual(h.skipped, {n: "OSError: [Errno 30] Read-only file system"
                                     for n in ("python/x/a", "python/x/b")})

    def mp_bench(self, *args):
        py = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else PY
        return subprocess.run([py, MP_BENCH] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True,
                              timeout=taprun.scaled(120))

    def topology(self, doc):
        path = os.path.join(self.tmp, "topology.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        return path

    def test_topology_gives_budget_and_pairs(self):
        """With the run's topology.json the comparators use its budget and its placement
        pairs, not their own view of the machine: a topology with one usable core has no
        cross-core pair, on any machine."""
        cpu = min(os.sched_getaffinity(0))
        topo = self.topology({"budget": {"usable": 1, "bound_by": "MPROC_CPUS"},
                              "pairs": {"same_core": [cpu, cpu], "cross_core": None}})
        out = os.path.join(self.tmp, "python.json")
        r = self.mp_bench("--profile", "smoke", "--only", "latency", "--filter",
                          "^python/latency/conn_pipe/", "--topology", topo, "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("budget 1 CPU, bound by MPROC_CPUS; same_core CPUs %d,%d; cross_core "
                      "none (one core) (from topology.json)" % (cpu, cpu), r.stderr)
        with open(out) as f:
            ctx = json.load(f)["context"]
        self.assertEqual((ctx["usable_cpus"], ctx["cpus_source"]), (1, "topology.json"))
        self.assertEqual(ctx["placement_pairs"], {"same_core": [cpu, cpu], "cross_core": None})
        h = gbjson.load_harness(out)
        self.assertIn("python/latency/conn_pipe/placement:same_core", h.figures)
        self.assertEqual(h.skipped, {"python/latency/conn_pipe/placement:cross_core":
                                     "one usable core: no cross-core pair"})

    def test_without_topology_says_which_cpus(self):
        out = os.path.join(self.tmp, "python.json")
        r = self.mp_bench("--profile", "smoke", "--only", "latency", "--filter", "^none$",
                          "--out", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        cpus = sorted(os.sched_getaffinity(0))
        self.assertIn("budget %d CPU" % len(cpus), r.stderr)
        self.assertIn("same_core CPUs %d,%d" % (cpus[0], cpus[0]), r.stderr)
        self.assertIn("(from sched_getaffinity + sysfs core ids); no --topology", r.stderr)
        with open(out) as f:
            ctx = json.load(f)["context"]
        self.assertEqual(ctx["usable_cpus"], len(cpus))
        self.assertEqual(ctx["placement_pairs"]["same_core"], [cpus[0], cpus[0]])

    def test_bad_topology_is_exit_2(self):
        out = os.path.join(self.tmp, "python.json")
        cpu = min(os.sched_getaffinity(0))
        for doc, want in (
                (None, "No such file"),
                ({"pairs": {"same_core": [cpu, cpu]}}, "no budget.usable"),
                ({"budget": {"usable": 2}}, "no pairs"),
                ({"budget": {"usable": 2}, "pairs": {"same_core": [cpu]}},
                 "pairs.same_core is not two CPU ids"),
                ({"budget": {"usable": 2}, "pairs": {"same_core": [cpu, cpu],
                                                     "cross_core": [cpu, 4095]}},
                 "pairs.cross_core names CPU 4095, not in this process's affinity")):
            topo = (os.path.join(self.tmp, "missing.json") if doc is None
                    else self.topology(doc))
            r = self.mp_bench("--profile", "smoke", "--only", "latency", "--topology", topo,
                              "--out", out)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertIn(want, r.stderr)
            self.assertFalse(os.path.exists(out))

    def test_read_only_dev_shm(self):
        """In a mount namespace with a read-only /dev/shm the pools and executors are skipped
        with CPython's OSError, pipes and managers are measured, and it exits 0."""
        if os.geteuid() != 0 or subprocess.run(["unshare", "-m", "true"],
                                               stderr=subprocess.DEVNULL).returncode != 0:
            self.skipTest("needs root and unshare -m")
        out = os.path.join(self.tmp, "python.json")
        py = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else PY
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            'mount -t tmpfs -o ro tmpfs /dev/shm && exec "$@"', "sh", py,
                            MP_BENCH, "--profile", "smoke", "--only",
                            "pipe,manager,pool_overhead", "--out", out],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=240)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        h = gbjson.load_harness(out)
        self.assertIn("python/pool_overhead/map/chunksize:1", h.skipped)
        self.assertIn("python/pool_overhead/submit/chunksize:1", h.skipped)
        for n, why in h.skipped.items():
            self.assertTrue(n.startswith("python/pool_overhead/"), n)
            self.assertEqual(why, "OSError: [Errno 30] Read-only file system", n)
        self.assertIn("python/manager/dict_get/transport:unix", h.figures)
        self.assertIn("python/pipe/conn_pipe/bytes:64/placement:same_core", h.figures)


# ------------------------------------------------------------------------------------------
class RealRun(TmpCase):
    """The driver over the real build (bench_baseline, mproc-topo): run by the smoke suite,
    which sets MPROC_BUILD_DIR; skipped elsewhere and where the harness is not built."""

    def setUp(self):
        super().setUp()
        self.real_build = os.environ.get("MPROC_BUILD_DIR")
        if not self.real_build:
            self.skipTest("MPROC_BUILD_DIR not set (smoke suite only)")
        if not os.access(os.path.join(self.real_build, "bench", "bench_baseline"), os.X_OK):
            self.skipTest("bench_baseline not built")

    def procs_mentioning(self, text):
        out = []
        for n in os.listdir("/proc"):
            if not n.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % n, "rb") as f:
                    if text.encode() in f.read():
                        out.append(int(n))
            except OSError:
                pass
        return [p for p in out if alive(p)]

    def test_smoke_run(self):
        run_dir = os.path.join(self.tmp, "run")
        r = subprocess.run([PY, DRIVER, "--build", self.real_build, "--profile", "smoke",
                            "--only", "baseline", "--out", run_dir, "--results", self.results],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, env=self.env, timeout=taprun.scaled(240))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(run_dir, "context.json")) as f:
            ctx = json.load(f)
        self.assertIs(ctx["complete"], True)
        self.assertEqual(ctx["topology"]["json"], "topology.json")
        self.assertGreaterEqual(ctx["budget"]["usable"], 1)
        self.assertIn("provenance", ctx["budget"])
        self.assertTrue(os.path.getsize(os.path.join(run_dir, "topology.xml")) > 100)
        run = gbjson.load_run(run_dir)
        names = set(run.figures) | set(run.skipped)
        for want in ("baseline/pipe_rtt/placement:same_core", "baseline/fork_exit",
                     "baseline/syscall"):
            self.assertIn(want, names)
        text = open(os.path.join(run_dir, "report.md")).read()
        self.assertIn("usable CPUs", text)
        self.assertIn("baseline/syscall", text)
        self.assertEqual(self.procs_mentioning(run_dir), [])

    def test_recommend_measure_runs_the_driver(self):
        """mproc-recommend --measure is a run of the driver over bench_pool and the CPython
        pool comparator (only the curves it reads), not a run directory of its own."""
        if not os.access(os.path.join(self.real_build, "bench", "bench_pool"), os.X_OK):
            self.skipTest("bench_pool not built")
        r = subprocess.run([PY, os.path.join(ROOT, "bench", "mproc-recommend"), "--measure",
                            "--profile", "smoke", "--build", self.real_build, "--results",
                            self.results, "--json"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, env=self.env,
                           timeout=taprun.scaled(240))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rec = json.loads(r.stdout)                      # stdout is the answer alone
        run_dir = rec["run"]
        self.assertTrue(run_dir.startswith(self.results) and run_dir.endswith("-recommend"))
        self.assertIn("[1/2] pool", r.stderr)           # the driver's progress, on stderr
        with open(os.path.join(run_dir, "context.json")) as f:
            ctx = json.load(f)
        self.assertEqual(ctx["schema"], "mproc-run/1")
        self.assertEqual((ctx["profile"], ctx["harnesses"]["ok"]), ("smoke", ["pool", "python"]))
        self.assertEqual(ctx["topology"]["json"], "topology.json")
        for fn in ("recommendation.json", "report.md", "noise.json"):
            self.assertTrue(os.path.isfile(os.path.join(run_dir, fn)), fn)
        run = gbjson.load_run(run_dir)
        names = set(run.figures) | set(run.skipped)
        self.assertIn("pool/cpu/workers:1/task_ms:1", names)
        self.assertIn("python/pool/cpu/workers:1/task_ms:1", names)
        self.assertIn("python/pool_overhead/map/chunksize:1", names)
        for n in names:                                 # only what the recommendation reads
            self.assertRegex(n, r"^(python/)?(pool/(cpu|io)/|pool_overhead/map/)")
        # The CPython side took its CPUs from the run's topology.json.
        with open(os.path.join(run_dir, "python.json")) as f:
            self.assertEqual(json.load(f)["context"]["cpus_source"], "topology.json")
        self.assertEqual(self.procs_mentioning(run_dir), [])

    def test_interrupt_real_harness(self):
        run_dir = os.path.join(self.tmp, "run")
        p = subprocess.Popen([PY, DRIVER, "--build", self.real_build, "--profile", "quick",
                              "--only", "baseline", "--out", run_dir, "--results",
                              self.results], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, env=self.env)
        deadline = time.monotonic() + taprun.scaled(60)
        while not self.procs_mentioning(run_dir + "/baseline.json.part"):
            self.assertLess(time.monotonic(), deadline, "harness never started")
            self.assertIsNone(p.poll())
            time.sleep(0.05)
        time.sleep(1.0)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=taprun.scaled(30))
        self.assertEqual(p.returncode, 130, out + err)
        self.assertLess(time.monotonic() - t0, taprun.scaled(10.0))
        self.assertEqual(self.procs_mentioning(run_dir), [])
        with open(os.path.join(run_dir, "context.json")) as f:
            ctx = json.load(f)
        self.assertIs(ctx["complete"], False)
        self.assertFalse(os.path.exists(os.path.join(run_dir, "baseline.json.part")))


# ------------------------------------------------------------------------------------------
def main():
    return taprun.main(sys.modules[__name__], "driver", sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
