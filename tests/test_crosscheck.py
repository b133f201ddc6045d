#!/usr/bin/env python3
"""Cross-checks with independent tools (mproc_results/crosscheck.py), their report section and the
reference index (plots/report.py): parsers on the real tools' output captured here
(tests/data/crosscheck/), then the checks against fake tools (shell scripts that print those
fixtures, found through MPROC_CROSSCHECK_PATH), missing tools, a >2x disagreement, a hanging
tool killed at its timeout, signals, and the driver's step. TAP output for meson; a name
pattern as argv[1] selects cases. Never runs the real tools."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
DATA = os.path.join(TESTS, "data")
FIX = os.path.join(DATA, "crosscheck")
CROSSCHECK = ["-m", "mproc_results.crosscheck"]      # PYTHONPATH: plots/ (meson)
DRIVER = os.path.join(ROOT, "bench", "mproc-bench")
REPORT = os.path.join(ROOT, "plots", "report.py")
FAKE_HARNESS = os.path.join(DATA, "fake_harness.py")
PY = sys.executable
from mproc_results import crosscheck, report
from mproc_results import doc as mdoc  # noqa: E402  (PYTHONPATH: plots/)

import taprun  # tests/taprun.py: unittest cases as TAP


def fixture(name):
    with open(os.path.join(FIX, name), encoding="utf-8") as f:
        return f.read()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def gb_entry(name, real_time, unit="ns", **counters):
    e = {"name": name + "/manual_time", "run_name": name + "/manual_time",
         "run_type": "iteration", "repetitions": 1, "repetition_index": 0, "threads": 1,
         "iterations": 10, "real_time": real_time, "cpu_time": real_time, "time_unit": unit}
    e.update(counters)
    return e


# Fake tools: each prints a captured fixture (or a count), answers --version/--help, and
# appends its argv to $FAKE_LOG. FAKE_HANG_<TOOL>=1 makes it start a grandchild and sleep.
FAKE_TOOL = r"""#!/bin/sh
echo "$(basename "$0") $*" >> "$FAKE_LOG"
case "$1" in --version|--help) echo "%(name)s fake 1.0"; exit 0;; esac
if [ -n "$%(hang)s" ]; then
	sleep 60 & echo $! >> "$FAKE_PIDS"; echo $$ >> "$FAKE_PIDS"
	exec sleep 60
fi
%(body)s
"""

BODIES = {
    "perf": 'cat "$FIX/perf_bench_sched_pipe.txt"',
    "hackbench": 'cat "$FIX/hackbench.txt"',
    "stress-ng": 'case "$*" in *--switch*) cat "$FIX/stress_ng_switch.txt";; '
                 '*--fork*) cat "$FIX/stress_ng_fork.txt";; *) exit 1;; esac',
    "lscpu": 'cat "$FIX/lscpu_p.txt"',
    "hwloc-calc": 'case "$*" in *" pu "*) echo 2;; *" core "*) echo "${FAKE_CORES:-2}";; '
                  '*) echo 1;; esac',
    "nproc": "echo 2",
}


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mproc-crosscheck-test.")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bin = os.path.join(self.tmp, "bin")
        os.mkdir(self.bin)
        self.log = os.path.join(self.tmp, "tool.log")
        self.pids = os.path.join(self.tmp, "pids")
        self.env_before = dict(os.environ)
        self.addCleanup(self.restore_env)
        os.environ.update(MPROC_CROSSCHECK_PATH=self.bin, FIX=FIX, FAKE_LOG=self.log,
                          FAKE_PIDS=self.pids)
        for k in [k for k in os.environ if k.startswith("FAKE_HANG") or k == "FAKE_CORES"]:
            del os.environ[k]
        crosscheck.STATE.signum = None
        self.addCleanup(self.kill_leftovers)
        # The machine running the tests may be busy: generous limits, except where a test
        # sets its own.
        self.addCleanup(setattr, crosscheck, "VERSION_TIMEOUT_S", crosscheck.VERSION_TIMEOUT_S)
        crosscheck.VERSION_TIMEOUT_S = 60.0

    def restore_env(self):
        os.environ.clear()
        os.environ.update(self.env_before)

    def kill_leftovers(self):
        for p in self.tool_pids():
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def tool_pids(self):
        try:
            with open(self.pids) as f:
                return [int(x) for x in f.read().split()]
        except OSError:
            return []

    def tools(self, *names):
        for n in names or BODIES:
            path = os.path.join(self.bin, n)
            with open(path, "w") as f:
                f.write(FAKE_TOOL % {"name": n, "body": BODIES[n],
                                     "hang": "FAKE_HANG_" + n.upper().replace("-", "_")})
            os.chmod(path, 0o755)

    def calls(self):
        try:
            with open(self.log) as f:
                return [l.split() for l in f.read().splitlines()]
        except OSError:
            return []

    def make_run(self, queue=True, latency=True):
        """tests/data/run_baseline (pipe_rtt same core 1.95 µs, fork_exit 82 µs, 1/2/2
        counts) plus a latency and a queue harness file."""
        run = os.path.join(self.tmp, "run")
        shutil.copytree(os.path.join(DATA, "run_baseline"), run)
        if latency:
            with open(os.path.join(run, "latency.json"), "w") as f:
                json.dump({"context": {}, "benchmarks": [
                    gb_entry("latency/conn_pipe/placement:same_core", 48000.0),
                    gb_entry("latency/raw_pipe/placement:same_core", 40000.0)]}, f)
        if queue:
            with open(os.path.join(run, "queue.json"), "w") as f:
                json.dump({"context": {}, "benchmarks": [
                    gb_entry("queue/pipe/bytes:64/producers:1/consumers:1", 300.0, "us",
                             msgs_per_second=100000.0),
                    gb_entry("queue/pipe/bytes:64/producers:2/consumers:2", 300.0, "us",
                             msgs_per_second=1e6),
                    gb_entry("queue/raw_pipe/bytes:64/producers:1/consumers:1", 2.0, "us",
                             msgs_per_second=5e5)]}, f)
        return run

    def check(self, doc, cid):
        for c in doc["checks"]:
            if c["id"] == cid:
                return c
        self.fail("no check %s in %s" % (cid, [c["id"] for c in doc["checks"]]))

    def run_checks(self, run, **kw):
        kw.setdefault("timeout", 120.0)
        kw.setdefault("total", 600.0)
        lines = []
        doc = crosscheck.crosscheck(run, "smoke", log=lines.append, **kw)
        return doc, lines


# ------------------------------------------------------------------------------------------
class Parse(unittest.TestCase):
    def test_perf_round_trip_in_ns(self):
        f = crosscheck.parse_perf_pipe(fixture("perf_bench_sched_pipe.txt"))
        self.assertAlmostEqual(f["value"], 43558.8)         # usecs/op x 1000: a round trip
        self.assertEqual(f["unit"], "ns")
        self.assertEqual(f["loops"], 5000)
        self.assertAlmostEqual(f["total_s"], 0.217)

    def test_hackbench_per_message(self):
        f = crosscheck.parse_hackbench(fixture("hackbench.txt"))
        self.assertEqual((f["groups"], f["fds"], f["loops"], f["bytes"]), (1, 1, 2000, 64))
        self.assertEqual(f["messages"], 2000)
        self.assertAlmostEqual(f["value"], 0.026e9 / 2000)
        # F senders x F receivers: every sender writes to every receiver.
        # "-g 2 -f 4" prints 2 x 4 file descriptors per group.
        text = ("Running in process mode with 2 groups using 8 file descriptors each "
                "(== 16 tasks)\nEach sender will pass 100 messages of 64 bytes\nTime: 0.320\n")
        f = crosscheck.parse_hackbench(text)
        self.assertEqual(f["messages"], 2 * 4 * 4 * 100)
        self.assertAlmostEqual(f["value"], 0.32e9 / 3200)

    def test_stress_ng_switch(self):
        f = crosscheck.parse_stress_switch(fixture("stress_ng_switch.txt"))
        self.assertAlmostEqual(f["value"], 42811.64)
        self.assertEqual(f["bogo_ops"], 23155)
        # Before 0.15.01 the log kind is "info:" and the metric reads "switch: (pipe) N".
        old = ("stress-ng: info:  [48] switch            20000      1.00      0.10      0.60"
               "     20000.00       28571.43        70.00          2500\n"
               "stress-ng: info:  [48] switch: (pipe) 6042.75 nanosecs per context switch "
               "(based on parent run time)\n")
        f = crosscheck.parse_stress_switch(old)
        self.assertAlmostEqual(f["value"], 6042.75)
        self.assertEqual(f["bogo_ops"], 20000)
        # No misc metric: wall time per bogo op.
        f = crosscheck.parse_stress_switch(old.splitlines()[0])
        self.assertAlmostEqual(f["value"], 1e9 / 20000.0)

    def test_stress_ng_fork(self):
        f = crosscheck.parse_stress_fork(fixture("stress_ng_fork.txt"))
        self.assertEqual(f["bogo_ops"], 66)
        self.assertAlmostEqual(f["value"], 1.00e9 / 66)
        # The other stressor's row is not taken for this one.
        self.assertIsNone(crosscheck.parse_stress_fork(fixture("stress_ng_switch.txt")))

    def test_lscpu(self):
        self.assertEqual(crosscheck.parse_lscpu(fixture("lscpu_p.txt")),
                         {"pus": 2, "cores": 2, "packages": 1})
        self.assertEqual(crosscheck.parse_lscpu(fixture("lscpu_smt.txt")),
                         {"pus": 8, "cores": 4, "packages": 2})

    def test_garbage_gives_no_figure(self):
        for p in (crosscheck.parse_perf_pipe, crosscheck.parse_hackbench,
                  crosscheck.parse_stress_switch, crosscheck.parse_stress_fork,
                  crosscheck.parse_lscpu, crosscheck.parse_int):
            self.assertIsNone(p(""), p.__name__)
            self.assertIsNone(p("command not found\nusage: ...\n"), p.__name__)


class Checks(Base):
    def test_all_tools(self):
        self.tools()
        run = self.make_run()
        doc, lines = self.run_checks(run)
        self.assertEqual([c["status"] for c in doc["checks"]], ["ok"] * 7, lines)
        perf = self.check(doc, "perf_sched_pipe")
        self.assertEqual(perf["pinned_pu"], min(os.sched_getaffinity(0)))
        comp = {x["ours"]: x for x in perf["comparisons"]}
        # Only the bare pipe round trips measure what perf measures: not mproc_conn's.
        self.assertEqual(sorted(comp), ["baseline/pipe_rtt/placement:same_core",
                                        "latency/raw_pipe/placement:same_core"])
        # 43.6 µs against 40 µs agrees; against the fixture's 1.95 µs it is flagged.
        self.assertAlmostEqual(comp["latency/raw_pipe/placement:same_core"]["ratio"],
                               43558.8 / 40000.0)
        self.assertTrue(comp["baseline/pipe_rtt/placement:same_core"]["flag"])
        self.assertTrue(perf["flag"])
        # perf's loop count comes from our own figure (at least 1000).
        perf_call = [c for c in self.calls() if c[:2] == ["perf", "bench"]][0]
        self.assertEqual(perf_call[2:5], ["sched", "pipe", "-l"])
        self.assertGreaterEqual(int(perf_call[5]), 1000)
        # hackbench: one sender, one receiver, one bare pipe, against the raw-pipe yardstick
        # of the same shape only (never the framed queue/pipe, whatever fan-out it has).
        hb = self.check(doc, "hackbench")
        hb_call = [c for c in self.calls() if c[0] == "hackbench" and c[1] != "--help"][0]
        self.assertEqual(hb_call[1:8], ["-p", "-s", "64", "-g", "1", "-f", "1"])
        self.assertEqual([x["ours"] for x in hb["comparisons"]],
                         ["queue/raw_pipe/bytes:64/producers:1/consumers:1"])
        self.assertAlmostEqual(hb["comparisons"][0]["ours_value"], 2000.0)
        # stress-ng --switch (two switches per op) against a same-core round trip.
        sw = self.check(doc, "stress_ng_switch")
        self.assertAlmostEqual(sw["comparisons"][0]["ours_value"], 1950.0)
        self.assertFalse(sw["comparisons"][1]["flag"])          # 42.8 µs vs 40 µs
        self.assertTrue(sw["flag"])
        self.assertIn("--switch-method", [a for c in self.calls() for a in c])
        fk = self.check(doc, "stress_ng_fork")
        self.assertEqual(fk["comparisons"][0]["ours"], "baseline/fork_exit")
        self.assertAlmostEqual(fk["comparisons"][0]["ours_value"], 82000.0)
        self.assertNotIn("spawn/fork/rss_mib:0", [x["ours"] for x in fk["comparisons"]])
        for cid in ("lscpu", "hwloc_calc", "nproc"):
            self.assertFalse(self.check(doc, cid)["flag"], cid)
        self.assertTrue(any(l.startswith("crosscheck: perf bench sched pipe: ") for l in lines))

    def test_disagreement_over_2x_is_flagged_with_both_numbers(self):
        self.tools()
        run = self.make_run()
        doc, lines = self.run_checks(run)
        line = [l for l in lines if l.startswith("crosscheck: stress-ng --switch: ")][0]
        self.assertIn("42.8 µs", line)          # the tool's figure
        self.assertIn("1.95 µs", line)          # ours
        self.assertIn("DISAGREE", line)
        # Exactly 2x is not flagged, just over is; and so the other way round.
        self.assertFalse(crosscheck.compare(200.0, ("x", 100.0), "")["flag"])
        self.assertTrue(crosscheck.compare(201.0, ("x", 100.0), "")["flag"])
        self.assertFalse(crosscheck.compare(50.0, ("x", 100.0), "")["flag"])
        self.assertTrue(crosscheck.compare(49.0, ("x", 100.0), "")["flag"])

    def test_counts_that_differ_are_flagged(self):
        self.tools()
        os.environ["FAKE_CORES"] = "4"
        doc, lines = self.run_checks(self.make_run())
        hw = self.check(doc, "hwloc_calc")
        bad = [x for x in hw["comparisons"] if x["flag"]]
        self.assertEqual([(x["what"], x["tool_value"], x["ours_value"]) for x in bad],
                         [("cores", 4, 2)])
        self.assertIn("cores 4 vs 2  DISAGREE",
                      [l for l in lines if l.startswith("crosscheck: hwloc-calc")][0])

    def test_missing_tools_are_one_line_each(self):
        run = self.make_run()
        doc, lines = self.run_checks(run)        # an empty MPROC_CROSSCHECK_PATH
        self.assertEqual({c["status"] for c in doc["checks"]}, {"not installed"})
        for c in doc["checks"]:
            self.assertEqual(c["comparisons"], [])
            self.assertIn("not installed", crosscheck.summary_line(c))
        self.assertEqual(len([l for l in lines if "not installed" in l]), 7)
        self.assertEqual(self.calls(), [])

    def test_no_mproc_figure_runs_no_tool(self):
        self.tools()
        run = self.make_run(queue=False, latency=False)
        os.remove(os.path.join(run, "baseline.json"))
        doc, _ = self.run_checks(run)
        for cid in ("perf_sched_pipe", "hackbench", "stress_ng_switch", "stress_ng_fork"):
            self.assertEqual(self.check(doc, cid)["status"], "no mproc figure", cid)
        self.assertFalse(any(c[0] in ("perf", "hackbench", "stress-ng") for c in self.calls()))
        # The topology checks still ran.
        self.assertEqual(self.check(doc, "lscpu")["status"], "ok")

    def test_hanging_tool_is_killed_at_its_timeout(self):
        self.tools()
        os.environ["FAKE_HANG_HACKBENCH"] = "1"
        c = crosscheck
        self.addCleanup(setattr, c, "CHECKS", c.CHECKS)
        c.CHECKS = (c.check_hackbench,)
        doc, _ = self.run_checks(self.make_run(), timeout=1.0)
        hb = self.check(doc, "hackbench")
        self.assertEqual(hb["status"], "timeout")
        self.assertLess(hb["elapsed_s"], taprun.scaled(30))  # 1 s, SIGTERM, SIGKILL
        pids = self.tool_pids()
        self.assertEqual(len(pids), 2)          # the tool and its grandchild
        deadline = time.monotonic() + taprun.scaled(5)
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([p for p in pids if alive(p)], [])

    def test_total_budget_skips_the_rest(self):
        self.tools()
        os.environ["FAKE_HANG_PERF"] = "1"
        c = crosscheck
        self.addCleanup(setattr, c, "CHECKS", c.CHECKS)
        c.CHECKS = (c.check_perf, c.check_hackbench, c.check_switch, c.check_fork)
        t0 = time.monotonic()
        doc, _ = self.run_checks(self.make_run(), timeout=60.0, total=3.0)
        self.assertLess(time.monotonic() - t0, taprun.scaled(30))
        # Killed when the budget ran out (or, on a very busy machine, not started at all).
        self.assertIn(self.check(doc, "perf_sched_pipe")["status"], ("timeout", "skipped"))
        for cid in ("hackbench", "stress_ng_switch", "stress_ng_fork"):
            self.assertEqual(self.check(doc, cid)["status"], "skipped", cid)

    def test_a_broken_check_does_not_lose_the_others(self):
        self.tools("nproc")
        c = crosscheck
        self.addCleanup(setattr, c, "CHECKS", c.CHECKS)

        def check_broken(ctx):
            raise ValueError("boom")
        c.CHECKS = (check_broken, c.check_nproc)
        doc, _ = self.run_checks(self.make_run())
        self.assertEqual([(x["id"], x["status"]) for x in doc["checks"]],
                         [("check_broken", "failed"), ("nproc", "ok")])
        self.assertIn("internal error: boom", doc["checks"][0]["detail"])

    def test_perf_that_does_not_run_is_not_installed(self):
        # Ubuntu's /usr/bin/perf wrapper without linux-tools-<kernel>: exits 2.
        path = os.path.join(self.bin, "perf")
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho 'WARNING: perf not found for kernel 6.8.0-1'\nexit 2\n")
        os.chmod(path, 0o755)
        doc, _ = self.run_checks(self.make_run())
        perf = self.check(doc, "perf_sched_pipe")
        self.assertEqual(perf["status"], "not installed")
        self.assertIn("linux-tools", perf["detail"])


class Command(Base):
    def cli(self, *args, **kw):
        return subprocess.run([PY] + CROSSCHECK + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=60, **kw)

    def test_bad_input(self):
        r = self.cli(self.tmp)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("not a run directory", r.stderr)
        r = self.cli(self.make_run(), "--profile", "huge")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "run", "crosscheck.json")))

    def test_writes_crosscheck_json(self):
        self.tools()
        run = self.make_run()
        r = self.cli(run, "--profile", "smoke", "--timeout", "120", "--total", "600")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(run, "crosscheck.json")) as f:
            doc = json.load(f)
        self.assertEqual(doc["schema"], "mproc-crosscheck/1")
        self.assertEqual(len(doc["checks"]), 7)
        self.assertIn("$ ", r.stdout)            # the log shows every command and its output
        self.assertIn("  | # Running 'sched/pipe' benchmark:", r.stdout)

    def test_sigterm_kills_the_tool_and_writes_what_it_has(self):
        self.tools("perf")
        os.environ["FAKE_HANG_PERF"] = "1"
        run = self.make_run()
        p = subprocess.Popen([PY] + CROSSCHECK + [run, "--profile", "smoke"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
        deadline = time.monotonic() + taprun.scaled(20)
        while len(self.tool_pids()) < 2:
            self.assertLess(time.monotonic(), deadline, "the tool never started")
            time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=taprun.scaled(10))
        self.assertEqual(p.returncode, 128 + signal.SIGTERM, out + err)
        with open(os.path.join(run, "crosscheck.json")) as f:
            doc = json.load(f)
        self.assertTrue(doc["interrupted"])
        self.assertEqual(doc["checks"][-1]["status"], "interrupted")
        self.assertEqual([c["id"] for c in doc["checks"]][-1], "perf_sched_pipe")
        deadline = time.monotonic() + taprun.scaled(5)
        while any(alive(x) for x in self.tool_pids()) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([x for x in self.tool_pids() if alive(x)], [])


class Driver(Base):
    def driver(self, *args, env=None):
        build = os.path.join(self.tmp, "build")
        os.makedirs(os.path.join(build, "bench"), exist_ok=True)
        dst = os.path.join(build, "bench", "bench_baseline")
        shutil.copy(FAKE_HARNESS, dst)
        os.chmod(dst, 0o755)
        shm = os.path.join(self.tmp, "shm")
        os.makedirs(shm, exist_ok=True)
        e = dict(os.environ, MPROC_SHM_DIR=shm, MPROC_MQUEUE_DIR=shm, MPROC_BENCH_PYTHON="0",
                 FAKE_PIDFILE=os.path.join(self.tmp, "harness-pids"))
        e.update(env or {})
        out = os.path.join(self.tmp, "out")
        r = subprocess.run([PY, DRIVER, "--build", build, "--results",
                            os.path.join(self.tmp, "results"), "--profile", "smoke",
                            "--no-plots", "--out", out] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, env=e, timeout=taprun.scaled(120))
        return r, out

    def test_driver_runs_the_step(self):
        self.tools()
        r, out = self.driver()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(os.path.isfile(os.path.join(out, "crosscheck.json")))
        self.assertIn("$ ", open(os.path.join(out, "logs", "crosscheck.log")).read())
        with open(os.path.join(out, "context.json")) as f:
            ctx = json.load(f)
        self.assertEqual(ctx["crosscheck"]["file"], "crosscheck.json")
        self.assertEqual(ctx["crosscheck"]["status"], "ok")
        self.assertIn("crosscheck: stress-ng --switch: ", r.stdout)
        self.assertIn("crosscheck: hackbench: no mproc figure", r.stdout)
        text = open(os.path.join(out, "report.md")).read()
        self.assertIn("## Cross-checks", text)
        self.assertIn("**DISAGREE**", text)      # the fake baseline's 2 µs vs perf's 43.6 µs

    def test_sigint_during_the_step(self):
        self.tools()
        os.environ["FAKE_HANG_PERF"] = "1"
        build = os.path.join(self.tmp, "build")
        os.makedirs(os.path.join(build, "bench"))
        shutil.copy(FAKE_HARNESS, os.path.join(build, "bench", "bench_baseline"))
        os.chmod(os.path.join(build, "bench", "bench_baseline"), 0o755)
        shm = os.path.join(self.tmp, "shm")
        os.mkdir(shm)
        out = os.path.join(self.tmp, "out")
        env = dict(os.environ, MPROC_SHM_DIR=shm, MPROC_MQUEUE_DIR=shm, MPROC_BENCH_PYTHON="0")
        p = subprocess.Popen([PY, DRIVER, "--build", build, "--results",
                              os.path.join(self.tmp, "results"), "--profile", "smoke",
                              "--no-plots", "--out", out], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True, env=env)
        deadline = time.monotonic() + taprun.scaled(60)
        while len(self.tool_pids()) < 2:
            self.assertLess(time.monotonic(), deadline, "the tool never started")
            self.assertIsNone(p.poll())
            time.sleep(0.05)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        o, e = p.communicate(timeout=taprun.scaled(30))
        self.assertEqual(p.returncode, 130, o + e)
        self.assertLess(time.monotonic() - t0, taprun.scaled(10))
        self.assertEqual([x for x in self.tool_pids() if alive(x)], [])
        with open(os.path.join(out, "crosscheck.json")) as f:
            self.assertTrue(json.load(f)["interrupted"])
        with open(os.path.join(out, "context.json")) as f:
            self.assertEqual(json.load(f)["crosscheck"]["status"], "interrupted")
        self.assertIn("**Interrupted**", open(os.path.join(out, "report.md")).read())

    def test_no_crosscheck(self):
        self.tools()
        for args, env, why in ((["--no-crosscheck"], {}, "--no-crosscheck"),
                               ([], {"MPROC_CROSSCHECK": "0"}, "MPROC_CROSSCHECK=0")):
            r, out = self.driver(*args, env=env)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertFalse(os.path.exists(os.path.join(out, "crosscheck.json")))
            self.assertIn("crosscheck: not wanted (%s)" % why, r.stdout)
            self.assertEqual(self.calls(), [])
            self.assertIn("Not run (%s)." % why, open(os.path.join(out, "report.md")).read())
            shutil.rmtree(out)


class Report(Base):
    def test_section(self):
        self.tools("perf", "stress-ng")
        run = self.make_run()
        doc, _ = self.run_checks(run)
        crosscheck.write_json_atomic(os.path.join(run, "crosscheck.json"), doc)
        text = "\n".join(mdoc.render_md_items(report.section_crosschecks(
            report.gbjson.load_run(run))))
        self.assertIn("| `perf bench sched pipe` | round trip | 43.6 µs | "
                      "`latency/raw_pipe/placement:same_core` 40 µs | 1.09x | agrees |", text)
        self.assertIn("- `stress-ng --fork` 15.2 ms vs `baseline/fork_exit` 82 µs", text)
        self.assertIn("- `hackbench`: not installed", text)
        self.assertIn("- `lscpu`: not installed", text)
        # crosscheck.json is not a harness file.
        self.assertNotIn("crosscheck", report.gbjson.load_run(run).harnesses)

    def test_section_without_or_with_corrupt_file(self):
        run = self.make_run()
        text = "\n".join(mdoc.render_md_items(report.section_crosschecks(
            report.gbjson.load_run(run))))
        self.assertIn("Not run (no crosscheck.json", text)
        with open(os.path.join(run, "crosscheck.json"), "w") as f:
            f.write("{not json")
        text = "\n".join(mdoc.render_md_items(report.section_crosschecks(
            report.gbjson.load_run(run))))
        self.assertIn("`crosscheck.json` unreadable", text)


class ReferenceIndex(Base):
    def test_index(self):
        ref = os.path.join(self.tmp, "reference")
        os.mkdir(ref)
        shutil.copytree(os.path.join(DATA, "run_baseline"), os.path.join(ref, "devbox"))
        # A machine directory holding runs: the newest is the reference.
        shutil.copytree(self.make_run(), os.path.join(ref, "big16", "20261101T000000Z"))
        shutil.copytree(os.path.join(DATA, "run_incomplete"),
                        os.path.join(ref, "big16", "20261123T000000Z"))
        os.mkdir(os.path.join(ref, "empty"))
        r = subprocess.run([PY, REPORT, "--reference-index", ref], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True,
                           timeout=taprun.scaled(60))
        self.assertEqual(r.returncode, 0, r.stderr)
        text = open(os.path.join(ref, "README.md")).read()
        self.assertIn("Generated by `plots/report.py --reference-index", text)
        self.assertIn("[devbox](devbox/report.md)", text)
        self.assertIn("[big16](big16/20261123T000000Z/report.md)", text)
        self.assertIn("| empty | unreadable: no run directory", text)
        self.assertIn("**incomplete**", text)
        row = [l for l in text.splitlines() if "`baseline/pipe_rtt/placement:same_core`" in l][0]
        self.assertEqual(row.count("|"), 4)      # figure, devbox, big16
        self.assertIn("1.95 µs", row)
        self.assertIn("—", [l for l in text.splitlines() if "spawn/forkserver" in l][0])

    def test_empty_and_bad(self):
        ref = os.path.join(self.tmp, "reference")
        os.mkdir(ref)
        r = subprocess.run([PY, REPORT, "--reference-index", ref, "--stdout"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=taprun.scaled(60))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("No reference runs yet.", r.stdout)
        r = subprocess.run([PY, REPORT, "--reference-index", os.path.join(self.tmp, "nope")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=taprun.scaled(60))
        self.assertEqual(r.returncode, 2)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)


# ------------------------------------------------------------------------------------------
def main():
    return taprun.main(sys.modules[__name__], "crosscheck", sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
