#!/usr/bin/env python3
"""mproc_results/decide.py (the decider: deciding pairs measured again, interleaved, within a
budget; decide.json) and mproc_results/verify.py (two runs: agree, undecided, disagree), on
synthetic runs written to a temporary directory, with a fake measurer: nothing here measures anything
(issue 17). TAP output for meson; a name pattern as argv[1] selects."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
from mproc_results import decide, gbjson  # noqa: E402  (PYTHONPATH: plots/)

import taprun  # tests/taprun.py: unittest cases as TAP

PY = sys.executable


def rows(name, field, values, unit_field=True):
    """Iteration rows of one name, one per value, in a shuffled repetition order."""
    out = []
    order = list(range(len(values)))
    order = order[1::2] + order[0::2]          # the file lists them out of order
    for i in order:
        e = {"name": name + "/manual_time", "run_name": name + "/manual_time",
             "run_type": "iteration", "repetitions": len(values), "repetition_index": i,
             "iterations": 100, "real_time": values[i], "cpu_time": values[i],
             "time_unit": "ns"}
        e[field] = values[i]
        out.append(e)
    return out


def write_run(path, harnesses, interleaved=("spawn",), extra=None):
    """harnesses: {harness: [(name, field, values)]}."""
    os.makedirs(path)
    with open(os.path.join(path, "context.json"), "w") as f:
        json.dump({"schema": "mproc-run/1", "profile": "quick", "complete": True,
                   "budget": {"usable": 2}}, f)
    for h, figs in harnesses.items():
        bm = []
        for name, field, values in figs:
            bm += rows(name, field, values)
        ctx = {"mproc_random_interleaving": "true" if h in interleaved else "false"}
        with open(os.path.join(path, h + ".json"), "w") as f:
            json.dump({"context": ctx, "benchmarks": bm}, f)
    for fn, doc in (extra or {}).items():
        with open(os.path.join(path, fn), "w") as f:
            json.dump(doc, f)


# Two start methods in one interleaved harness (decided, unpaired), fork against forkserver
# undecided, and a CPython figure for the headline (not interleaved with mproc's).
DRIFT = [1.0, 1.03, 0.98, 1.05, 1.01, 1.02]
SPAWN = {
    "spawn": [("spawn/forkserver/rss_mib:0", "p50_ns", [300e3 * d for d in DRIFT]),
              ("spawn/spawn/rss_mib:0", "p50_ns", [400e3 * d for d in DRIFT]),
              ("spawn/fork/rss_mib:0", "p50_ns", [250e3, 340e3, 305e3, 260e3, 300e3, 350e3])],
    "python": [("python/spawn/fork/rss_mib:0", "p50_ns",
                [1.0e6, 1.1e6, 0.9e6, 1.05e6, 0.95e6, 1.0e6])],
}


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="test_decide-")
        decide.Stop.signum = 0

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_dir(self, name="run", harnesses=SPAWN, **kw):
        p = os.path.join(self.tmp, name)
        write_run(p, harnesses, **kw)
        return p

    def pairs(self, path):
        return {p.id: p for p in decide.deciding_pairs(gbjson.load_run(path))}


class Pairs(Base):
    def test_found_interleaved_not_paired(self):
        ps = self.pairs(self.run_dir())
        fs = ps["start/forkserver_vs_spawn"]
        self.assertTrue(fs.main_interleaved)       # one harness, repetitions shuffled together
        # ... but shuffled repetitions were not measured in pairs: repetition i of A and of B
        # may be far apart in time, so the main pass's interval is the unpaired bootstrap.
        self.assertEqual(fs.main["interval"], "unpaired (bootstrap)")
        self.assertLess(fs.main["lo"], 0.75)
        self.assertGreater(fs.main["hi"], 0.75)
        self.assertAlmostEqual(fs.main["ratio"], 0.75)      # ratio of the medians
        head = ps["headline/spawn/fork/rss_mib:0"]
        self.assertFalse(head.main_interleaved)     # mproc and CPython: different processes
        self.assertEqual(head.main["interval"], "unpaired (bootstrap)")
        self.assertEqual(head.source, "headline")
        self.assertEqual((head.a, head.b), ("spawn/fork/rss_mib:0", "python/spawn/fork/rss_mib:0"))
        self.assertNotIn("channel/pipe_vs_queue", ps)        # figures absent: left out

    def test_manager_pairs_unpinned_twin(self):
        # CPython's Manager runs unpinned; mproc's plain dict_get pins both processes to one
        # PU: the headline pair is the unpinned twin against CPython, as in the report.
        vals = [1.0e3, 1.1e3, 0.9e3, 1.05e3, 0.95e3, 1.0e3]
        h = {"manager": [("manager/dict_get/transport:unix", "p50_ns", vals),
                         ("manager/dict_get/transport:unix/placement:unpinned", "p50_ns",
                          vals)],
             "python": [("python/manager/dict_get/transport:unix", "p50_ns",
                         [v * 10 for v in vals])]}
        ps = self.pairs(self.run_dir(harnesses=h))
        p = ps["headline/manager/dict_get/transport:unix/placement:unpinned"]
        self.assertEqual((p.a, p.b), ("manager/dict_get/transport:unix/placement:unpinned",
                                      "python/manager/dict_get/transport:unix"))
        self.assertNotIn("headline/manager/dict_get/transport:unix", ps)
        # Without the twin, the plain figure is still paired (placements differ: the report
        # says so).
        del h["manager"][1]
        ps = self.pairs(self.run_dir(name="run2", harnesses=h))
        self.assertIn("headline/manager/dict_get/transport:unix", ps)

    def test_cross_harness_targets(self):
        # fork (spawn harness) against the bare fork + exit (baseline), and the ring round
        # trip (queue harness) against the cache line (baseline): measured minutes apart, so
        # the decider measures them again, each decided against its target, not 1.
        noisy = [1.0, 1.1, 0.9, 1.05, 0.95, 1.0]
        h = {"spawn": [("spawn/fork/rss_mib:0", "p50_ns", [300e3 * d for d in DRIFT])],
             "baseline": [("baseline/fork_exit", "p50_ns", [150e3 * d for d in DRIFT]),
                          ("baseline/cacheline_rtt/placement:cross_core", "p50_ns",
                           [100 * d for d in noisy])],
             "queue": [("latency/ring_spin/placement:cross_core", "p50_ns",
                        [125 * d for d in noisy[::-1]])]}
        ps = self.pairs(self.run_dir(harnesses=h))
        fork = ps["target/fork_vs_fork_exit"]
        self.assertEqual((fork.source, fork.threshold), ("target", 1.1))
        self.assertEqual((fork.a, fork.b), ("spawn/fork/rss_mib:0", "baseline/fork_exit"))
        self.assertAlmostEqual(fork.main["ratio"], 2.0)
        self.assertEqual(fork.main["verdict"], "worse")    # 2x, beyond 1.1: missed
        ring = ps["target/ring_vs_cacheline"]
        self.assertEqual(ring.threshold, 1.3)
        self.assertEqual(ring.main["verdict"], "undecided")  # 1.25, +-10 % straddles 1.3
        self.assertIn("straddles 1.3", ring.why())
        self.assertEqual(ring.as_dict()["threshold"], 1.3)
        # Paired rounds at 1.2 decide it: below the target is "better" (met).
        k = [0]

        def measure(name, field):
            k[0] += 1
            return 120.0 if name.startswith("latency/") else 100.0
        decide.extend([ring], measure, 1e9, clock=lambda: float(k[0]))
        self.assertEqual(ring.summary()["verdict"], "better")
        self.assertEqual(ring.status(), "decided")

    def test_not_interleaved_is_unpaired(self):
        ps = self.pairs(self.run_dir(interleaved=()))
        self.assertFalse(ps["start/forkserver_vs_spawn"].main_interleaved)

    def test_too_few_repetitions(self):
        h = {"spawn": [("spawn/fork/rss_mib:0", "p50_ns", [1.0, 1.1, 0.9]),
                       ("spawn/forkserver/rss_mib:0", "p50_ns", [1.0, 1.1, 0.9])]}
        p = self.pairs(self.run_dir(harnesses=h))["start/fork_vs_forkserver"]
        self.assertIsNone(p.main["lo"])
        self.assertEqual(p.status(), "undecided")
        self.assertIn("too few repetitions", p.why())


class Extend(Base):
    def test_extends_until_decided(self):
        path = self.run_dir()
        ps = self.pairs(path)
        p = ps["start/fork_vs_forkserver"]
        self.assertEqual(p.status(), "undecided")
        calls = []

        def measure(name, field):
            calls.append(name)
            return 200e3 if name == "spawn/fork/rss_mib:0" else 300e3

        clock = iter(range(0, 10000)).__next__
        spent, exhausted = decide.extend([p], measure, 1000.0, clock=clock)
        self.assertFalse(exhausted)
        self.assertEqual(p.status(), "decided")
        self.assertIn(p.summary()["interval"],                # the decider's pairs, or all
                      ("paired (decider runs only)", "unpaired (bootstrap)"))
        self.assertGreaterEqual(len(p.samples_a), 1)
        # Alternation: A B, then B A.
        self.assertEqual(calls[:4], ["spawn/fork/rss_mib:0", "spawn/forkserver/rss_mib:0",
                                     "spawn/forkserver/rss_mib:0", "spawn/fork/rss_mib:0"][
                                         :len(calls[:4])])

    def test_budget_stops(self):
        p = self.pairs(self.run_dir())["start/fork_vs_forkserver"]
        t = [0.0]

        def clock():
            return t[0]

        def measure(name, field):
            t[0] += 4.0                             # each run "takes" 4 s
            return 300e3                            # equal: never decides

        spent, exhausted = decide.extend([p], measure, 20.0, clock=clock)
        self.assertTrue(exhausted)
        self.assertLessEqual(spent, 20.0)
        self.assertEqual(len(p.samples_a), 2)       # 8 s a round: a third would overrun
        self.assertEqual(p.status(), "undecided")

    def test_budget_counts_rounds_of_this_cycle(self):
        # Three pairs that never decide, 8 s a round each, budget 40 s: the first cycle
        # takes 24 s, the second has room for two rounds only; a check against the time
        # spent before the cycle would let the third run to 48 s.
        t = [0.0]

        def measure(name, field):
            t[0] += 4.0
            return 300e3

        ps = [decide.Pair("p%d" % i, "x", "answer", "a%d" % i, "b%d" % i, "p50_ns", "p50_ns")
              for i in range(3)]
        spent, exhausted = decide.extend(ps, measure, 40.0, clock=lambda: t[0])
        self.assertTrue(exhausted)
        self.assertLessEqual(spent, 40.0)
        self.assertEqual(sum(len(p.samples_a) for p in ps), 5)

    def test_zero_budget_measures_nothing(self):
        p = self.pairs(self.run_dir())["start/fork_vs_forkserver"]
        spent, exhausted = decide.extend([p], lambda n, f: self.fail("measured"), 0.0)
        self.assertTrue(exhausted)
        self.assertEqual(p.samples_a, [])

    def test_failing_figure_gives_up(self):
        p = self.pairs(self.run_dir())["start/fork_vs_forkserver"]

        def measure(name, field):
            raise RuntimeError("boom")

        decide.extend([p], measure, 100.0)
        self.assertEqual(len(p.errors), 2)
        self.assertEqual(p.samples_a, [])

    def test_unpaired_becomes_paired_with_enough_rounds(self):
        p = self.pairs(self.run_dir())["headline/spawn/fork/rss_mib:0"]
        p.main_a = p.main_a[:3]                     # main pass alone: too few
        vals = {"spawn/fork/rss_mib:0": 1.0, "python/spawn/fork/rss_mib:0": 4.0}
        decide.extend([p], lambda n, f: vals[n], 1000.0)
        s = p.summary()
        self.assertEqual(s["interval"], "paired (decider runs only)")
        self.assertEqual(s["verdict"], "better")

    def test_tie_stops_when_within_5_percent(self):
        # Two sides that differ by 1 %: never "better" or "worse", but once the interval lies
        # within +-5 % of 1 the pair is "equivalent" and gets no more rounds.
        p = self.pairs(self.run_dir())["start/fork_vs_forkserver"]
        self.assertEqual(p.status(), "undecided")
        k = [0]

        def measure(name, field):
            k[0] += 1
            wobble = 1.0 + 0.01 * (k[0] % 3)
            return 303e3 * wobble if name == "spawn/fork/rss_mib:0" else 300e3 * wobble

        decide.extend([p], measure, 1e9, clock=iter(range(10 ** 6)).__next__)
        self.assertEqual(p.status(), "equivalent")
        self.assertEqual(p.summary()["verdict"], "undecided")
        self.assertLess(len(p.samples_a), decide.MAX_ROUNDS)
        self.assertFalse(p.needs_more())
        self.assertIn("within +-5 %", p.why())

    def test_answers_before_headline_rows(self):
        # Two undecided pairs, budget for one round: the answer's pair gets it.
        t = [0.0]

        def measure(name, field):
            t[0] += 1.0
            return 300e3

        head = decide.Pair("h", "x", "headline", "ha", "hb", "p50_ns", "p50_ns")
        ans = decide.Pair("a", "x", "answer", "aa", "ab", "p50_ns", "p50_ns")
        decide.extend([head, ans], measure, 1.5, clock=lambda: t[0])
        self.assertEqual((len(ans.samples_a), len(head.samples_a)), (1, 0))

    def test_targets_after_headline_rows(self):
        # Three undecided pairs, budget for two rounds: the answer's, then the headline's;
        # the target (the project's own, targets.md) waits.
        t = [0.0]

        def measure(name, field):
            t[0] += 1.0
            return 300e3

        tgt = decide.Pair("t", "x", "target", "ta", "tb", "p50_ns", "p50_ns", 1.3)
        head = decide.Pair("h", "x", "headline", "ha", "hb", "p50_ns", "p50_ns")
        ans = decide.Pair("a", "x", "answer", "aa", "ab", "p50_ns", "p50_ns")
        decide.extend([tgt, head, ans], measure, 3.5, clock=lambda: t[0])
        self.assertEqual([len(p.samples_a) for p in (ans, head, tgt)], [1, 1, 0])
        # With budget to spare, a target still undecided (ratios 1.1, 1.3, 1.5: the interval
        # straddles 1.3, wider than +-5 % of it) stops at MAX_TARGET_ROUNDS.
        spread = iter([110.0, 130.0, 150.0] * 100)
        tgt2 = decide.Pair("t2", "x", "target", "ta", "tb", "p50_ns", "p50_ns", 1.3)
        decide.extend([tgt2], lambda n, f: next(spread) if n == "ta" else 100.0, 1e9,
                      clock=lambda: 0.0)
        self.assertEqual(tgt2.status(), "undecided")
        self.assertEqual(len(tgt2.samples_a), decide.MAX_TARGET_ROUNDS)

    def test_targets_wait_for_undecided_answers(self):
        # An answer that stays undecided (ratios 0.8, 1, 1.2 straddle 1) takes every round
        # until MAX_ROUNDS; only then does the undecided target get its rounds.
        seq = []
        spread = {"aa": iter([80.0, 100.0, 120.0] * 100),
                  "ta": iter([110.0, 130.0, 150.0] * 100)}

        def measure(name, field):
            seq.append(name)
            return next(spread[name]) if name in spread else 100.0

        tgt = decide.Pair("t", "x", "target", "ta", "tb", "p50_ns", "p50_ns", 1.3)
        ans = decide.Pair("a", "x", "answer", "aa", "ab", "p50_ns", "p50_ns")
        decide.extend([tgt, ans], measure, 1e9, clock=lambda: 0.0)
        self.assertEqual(ans.status(), "undecided")
        self.assertEqual((len(ans.samples_a), len(tgt.samples_a)),
                         (decide.MAX_ROUNDS, decide.MAX_TARGET_ROUNDS))
        self.assertEqual(seq.index("ta"), 2 * decide.MAX_ROUNDS)   # every answer round first

    def test_decide_json(self):
        path = self.run_dir()
        doc = decide.decide(path, "nobuild", "quick", PY, 5.0,
                            measure=lambda n, f: 100.0 if "fork/" in n else 300.0)
        self.assertEqual(doc["schema"], "mproc-decide/1")
        on_disk = decide.load(path)
        self.assertEqual(on_disk["pairs"], json.loads(json.dumps(doc["pairs"])))
        by = {p["id"]: p for p in on_disk["pairs"]}
        self.assertTrue(by["start/fork_vs_forkserver"]["extended"])
        self.assertFalse(by["start/forkserver_vs_spawn"]["extended"])
        for p in on_disk["pairs"]:
            self.assertIn(p["status"], ("decided", "wide", "equivalent", "undecided"))
            self.assertEqual(len(p["samples"]["a"]), p["rounds"])
        # gbjson does not read decide.json as a harness file.
        self.assertEqual(gbjson.load_run(path).load_errors, {})
        self.assertIsNone(decide.load(self.tmp))

    def test_cli_bad_input(self):
        r = subprocess.run([PY, "-m", "mproc_results.decide", self.tmp],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("not a run directory", r.stderr)
        path = self.run_dir()
        r = subprocess.run([PY, "-m", "mproc_results.decide", path, "--budget",
                            "-1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad budget", r.stderr)


class Filters(unittest.TestCase):
    def test_gb_filter(self):
        import re
        rx = re.compile(decide.gb_filter("spawn/fork/rss_mib:0"))
        self.assertTrue(rx.match("spawn/fork/rss_mib:0"))
        self.assertTrue(rx.match("spawn/fork/rss_mib:0/manual_time"))
        self.assertTrue(rx.match("spawn/fork/rss_mib:0/min_time:0.025/manual_time"))
        self.assertFalse(rx.match("spawn/fork/rss_mib:0/parent_threads:1"))
        self.assertFalse(rx.match("spawn/fork/rss_mib:01"))
        self.assertEqual(decide.gb_filter("a.b"), r"^a\.b" + decide._GB_SUFFIXES + "$")

    def test_python_group(self):
        self.assertEqual(decide.python_group("python/spawn/fork/rss_mib:0"), "spawn")
        self.assertEqual(decide.python_group("python/pool/failure/pool_sigkill"),
                         "pool_failure")
        self.assertEqual(decide.python_group("python/pool/cpu/workers:2/task_ms:20"), "pool")
        self.assertIsNone(decide.python_group("spawn/fork"))


class Verify(Base):
    def verify(self, a, b):
        return subprocess.run([PY, "-m", "mproc_results.verify", a, b],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)

    def answers(self, *pairs):
        return {"answers.json": {"answers": [{"question": q, "answer": a, "why": "",
                                              "figures": []} for q, a in pairs]}}

    def test_agree_and_undecided(self):
        a = self.run_dir("a", extra=self.answers(("start method", "forkserver"),
                                                 ("pool size", "2")))
        b = self.run_dir("b", extra=self.answers(("start method", "forkserver"),
                                                 ("pool size", "undecided")))
        r = self.verify(a, b)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("agree     start method: forkserver | forkserver", r.stdout)
        self.assertIn("undecided pool size: 2 | undecided", r.stdout)
        self.assertIn("0 disagree", r.stdout)

    def test_disagree_exits_1(self):
        a = self.run_dir("a", extra=self.answers(("start method", "forkserver")))
        b = self.run_dir("b", extra=self.answers(("start method", "spawn")))
        r = self.verify(a, b)
        self.assertEqual(r.returncode, 1)
        self.assertIn("disagree  start method: forkserver | spawn", r.stdout)

    def test_opposite_verdicts(self):
        a = self.run_dir("a")
        swapped = {"spawn": [("spawn/forkserver/rss_mib:0", "p50_ns",
                              [500e3 * d for d in DRIFT]),
                             ("spawn/spawn/rss_mib:0", "p50_ns", [400e3 * d for d in DRIFT])]}
        b = self.run_dir("b", harnesses=swapped)
        r = self.verify(a, b)
        self.assertEqual(r.returncode, 1)
        self.assertIn("disagree  libmproc start method: forkserver against spawn: better | worse",
                      r.stdout)
        self.assertIn("no answers.json", r.stdout)         # older runs: said, not an error
        self.assertIn("only in one run", r.stdout)

    def test_usage(self):
        r = self.verify(self.tmp, self.tmp)
        self.assertEqual(r.returncode, 2)
        self.assertIn("not a run directory", r.stderr)


def main():
    return taprun.main(sys.modules[__name__], "decide", sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
