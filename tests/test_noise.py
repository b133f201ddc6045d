#!/usr/bin/env python3
"""mproc_results/noise.py on fixed data: fake /proc and /sys trees under a temporary root, a fake
clock and sleep, fake rusage. The verdict rule (results/README.md, "noise.json") is checked
case by case: a harness's own load is not the machine being busy; other processes' CPU time,
steal and pressure before the run are. TAP output for meson; argv[1] selects cases."""
import json
import os
import shutil
import sys
import tempfile
import types
import unittest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
from mproc_results import noise  # noqa: E402  (PYTHONPATH: plots/, tests/meson.build)

import taprun  # noqa: E402

HZ = noise._ticks_per_s()


def stat_text(rows):
    """rows: {cpu: (user, system, idle, steal)} -> /proc/stat text."""
    tot = [0] * 10
    lines = []
    for n, (u, s, i, st) in sorted(rows.items()):
        v = [u, 0, s, i, 0, 0, 0, st, 0, 0]
        tot = [a + b for a, b in zip(tot, v)]
        lines.append("cpu%d %s" % (n, " ".join(map(str, v))))
    return "\n".join(["cpu  " + " ".join(map(str, tot))] + lines + ["intr 1 2 3", "ctxt 99"]) + "\n"


def ru(utime=0.0, stime=0.0, nivcsw=0, nvcsw=0):
    return types.SimpleNamespace(ru_utime=utime, ru_stime=stime, ru_nivcsw=nivcsw,
                                 ru_nvcsw=nvcsw)


class Fake:
    """A fake machine: 2 CPUs whose /proc/stat counters advance as we say."""

    def __init__(self, root):
        self.root = root
        self.t = 1000.0
        self.rows = {0: [0, 0, 0, 0], 1: [0, 0, 0, 0]}
        self.psi_total = 0
        self.write("proc/loadavg", "0.10 0.20 0.30 1/100 42\n")
        self.psi(1.0)
        self.flush()

    def write(self, rel, text):
        p = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)

    def psi(self, avg10):
        self.psi_avg10 = avg10
        self.write("proc/pressure/cpu", "some avg10=%.2f avg60=0.00 avg300=0.00 total=%d\n"
                   "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n" % (avg10, self.psi_total))

    def flush(self):
        self.write("proc/stat", stat_text({n: tuple(v) for n, v in self.rows.items()}))

    def advance(self, secs, busy_cpus=0.0, steal_frac=0.0, psi_frac=0.0):
        """secs of wall time in which busy_cpus CPUs' worth of work ran (spread over both
        CPUs) and steal_frac of each CPU's time was stolen."""
        ticks = int(round(secs * HZ))
        for n in self.rows:
            busy = int(round(ticks * busy_cpus / len(self.rows)))
            steal = int(round(ticks * steal_frac))
            self.rows[n][0] += busy
            self.rows[n][3] += steal
            self.rows[n][2] += max(ticks - busy - steal, 0)
        self.psi_total += int(secs * 1e6 * psi_frac)
        self.psi(self.psi_avg10)
        self.t += secs
        self.flush()


class NoiseCase(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="mproc-noise-test.")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.m = Fake(self.root)

    def recorder(self, usable=2, **start):
        """A Recorder over the fake root whose start window advances the fake machine."""
        rec = noise.Recorder(root=self.root, usable_cpus=usable, cpus={0, 1},
                             clock=lambda: self.m.t,
                             sleep=lambda s: self.m.advance(s, **start),
                             probe=lambda: 1_000_000)      # a steady CPU unless a case says
        return rec


class Static(NoiseCase):
    def test_unreadable_is_null(self):
        self.assertEqual(noise.read_static(self.root, {0, 1}),
                         {"governor": None, "boost": None, "thp": None})

    def test_governor_boost_thp(self):
        for n in (0, 1):
            self.m.write("sys/devices/system/cpu/cpu%d/cpufreq/scaling_governor" % n,
                         "performance\n" if n == 0 else "powersave\n")
        self.m.write("sys/devices/system/cpu/cpufreq/boost", "1\n")
        self.m.write("sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never\n")
        self.assertEqual(noise.read_static(self.root, {0, 1}),
                         {"governor": "performance,powersave", "boost": "on", "thp": "madvise"})

    def test_intel_no_turbo(self):
        self.m.write("sys/devices/system/cpu/intel_pstate/no_turbo", "1\n")
        self.assertEqual(noise.read_static(self.root, {0})["boost"], "off")

    def test_stat_only_watched_cpus(self):
        self.m.rows[2] = [500, 0, 0, 0]
        self.m.flush()
        self.assertEqual(noise.read_stat(self.root, {0, 1})["ncpu"], 2)
        self.assertEqual(noise.read_stat(self.root, {0, 1})["busy"], 0)
        self.assertEqual(noise.read_stat(self.root, None)["busy"], 500)


class Speed(NoiseCase):
    def test_probe_measures_a_loop(self):
        ns = noise.speed_probe(trials=2, loops=1000)
        self.assertIsInstance(ns, int)
        self.assertGreater(ns, 0)

    def test_speed_that_varies_is_busy(self):
        # The same loop at 1 ms, then 1.8 ms: the host ran this CPU at two speeds (no steal,
        # no load): busy, and the reason says how much.
        rec = self.recorder(busy_cpus=0.1)
        speeds = iter([1_000_000, 1_050_000, 1_800_000, 1_000_000])
        rec.probe = lambda: next(speeds)
        self.assertFalse(rec.start()["busy"])
        rec.before("spawn")
        rec.after("spawn", 1.0)
        rec.end()
        v = rec.doc["verdict"]
        self.assertTrue(v["busy"])
        self.assertIn("CPU speed varied 1.8x", v["line"])
        self.assertEqual([x["probe_ns"] for x in rec.doc["samples"]],
                         [1_000_000, 1_050_000, 1_800_000, 1_000_000])

    def test_steady_speed_or_no_probe_is_quiet(self):
        for probe in (lambda: 1_000_000, None):
            rec = self.recorder(busy_cpus=0.1)
            rec.probe = probe
            rec.start()
            rec.before("spawn")
            rec.after("spawn", 1.0)
            rec.end()
            self.assertEqual(rec.doc["verdict"]["line"], "quiet")


class Start(NoiseCase):
    def test_quiet(self):
        rec = self.recorder(busy_cpus=0.1)
        v = rec.start()
        self.assertEqual(v, {"busy": False, "reasons": [], "line": "quiet"})
        s = rec.doc["samples"][0]
        self.assertEqual(s["when"], "start")
        self.assertEqual(s["loadavg"], [0.1, 0.2, 0.3])
        self.assertEqual(s["psi_cpu_some_avg10"], 1.0)
        self.assertEqual(s["steal_pct"], 0.0)
        self.assertAlmostEqual(rec.doc["start"]["others_cpus"], 0.1, delta=0.02)

    def test_busy_from_other_processes(self):
        self.m.write("proc/loadavg", "3.50 2.00 1.00 5/100 42\n")
        v = self.recorder(busy_cpus=1.8).start()
        self.assertTrue(v["busy"])
        self.assertIn("load 3.5 on 2 usable CPUs", v["line"])
        self.assertTrue(v["line"].startswith("busy: "))
        self.assertTrue(v["line"].endswith(" — figures below are provisional"))

    def test_high_load_average_alone_is_not_busy(self):
        # A build just before the run leaves the 1-minute load average high while the CPUs
        # are idle now: the window decides.
        self.m.write("proc/loadavg", "4.00 2.00 1.00 1/100 42\n")
        self.assertFalse(self.recorder(busy_cpus=0.05).start()["busy"])

    def test_steal(self):
        v = self.recorder(steal_frac=0.12).start()
        self.assertTrue(v["busy"])
        self.assertIn("12 % steal", v["line"])

    def test_pressure_over_the_window(self):
        v = self.recorder(busy_cpus=0.5, psi_frac=0.4).start()
        self.assertTrue(v["busy"])
        self.assertIn("CPU pressure 40 %", v["line"])

    def test_unreadable(self):
        rec = noise.Recorder(root=os.path.join(self.root, "nothing"), usable_cpus=2,
                             cpus={0, 1}, sleep=lambda s: None)
        v = rec.start()
        self.assertFalse(v["busy"])
        self.assertNotEqual(v["line"], "quiet")       # never "quiet" on no evidence
        s = rec.doc["samples"][0]
        self.assertEqual((s["loadavg"], s["psi_cpu_some_avg10"], s["steal_pct"]),
                         (None, None, None))


class Harness(NoiseCase):
    def run_harness(self, rec, name, secs, self_cpus, others_cpus, steal=0.0, load=None,
                    psi=None, ivcsw=7):
        ru0 = ru(1.0, 0.5, 10, 20)
        rec.before(name, ru0)
        if load is not None:
            self.m.write("proc/loadavg", "%.2f 1.00 1.00 1/100 42\n" % load)
        if psi is not None:
            self.m.psi(psi)
        self.m.advance(secs, busy_cpus=self_cpus + others_cpus, steal_frac=steal)
        cpu = self_cpus * secs
        return rec.after(name, secs, ru(1.0 + cpu * 0.75, 0.5 + cpu * 0.25, 10 + ivcsw, 25))

    def test_own_load_is_not_busy(self):
        rec = self.recorder()
        rec.start()
        # The harness keeps both CPUs busy; load average and pressure soar because of it.
        h = self.run_harness(rec, "pool", 10.0, self_cpus=1.9, others_cpus=0.05, load=4.0,
                             psi=90.0)
        self.assertFalse(h["busy"])
        self.assertEqual(h["nivcsw"], 7)
        self.assertEqual(h["nvcsw"], 5)
        self.assertEqual(h["load_max"], 4.0)
        self.assertEqual(h["psi_some_avg10_max"], 90.0)
        self.assertAlmostEqual(h["self_cpus"], 1.9, places=3)
        self.assertLess(h["others_cpus"], 0.2)
        self.assertEqual(rec.doc["verdict"]["line"], "quiet")

    def test_others_during_a_harness(self):
        rec = self.recorder()
        rec.start()
        self.run_harness(rec, "baseline", 5.0, self_cpus=1.0, others_cpus=0.1)
        h = self.run_harness(rec, "queue", 5.0, self_cpus=0.8, others_cpus=1.2)
        self.assertTrue(h["busy"])
        v = rec.doc["verdict"]
        self.assertTrue(v["busy"])
        self.assertIn("during queue", v["line"])
        self.assertNotIn("baseline", v["line"])
        self.assertFalse(rec.doc["harnesses"]["baseline"]["busy"])

    def test_steal_during_a_harness(self):
        rec = self.recorder()
        rec.start()
        h = self.run_harness(rec, "spawn", 5.0, self_cpus=1.0, others_cpus=0.0, steal=0.2)
        self.assertTrue(h["busy"])
        self.assertAlmostEqual(h["steal_pct"], 20.0, delta=0.5)
        self.assertIn("20 % steal during spawn", rec.doc["verdict"]["line"])

    def test_samples_and_steal_since_previous(self):
        rec = self.recorder()
        rec.start()
        self.run_harness(rec, "sync", 2.0, self_cpus=1.0, others_cpus=0.0, steal=0.1)
        self.m.advance(1.0)
        rec.end()
        whens = [s["when"] for s in rec.doc["samples"]]
        self.assertEqual(whens, ["start", "before:sync", "after:sync", "end"])
        steals = [s["steal_pct"] for s in rec.doc["samples"]]
        self.assertAlmostEqual(steals[2], 10.0, delta=0.5)   # over the harness
        self.assertEqual(steals[3], 0.0)                     # since the harness

    def test_without_rusage(self):
        rec = self.recorder()
        rec.start()
        rec.before("x", None)
        self.m.advance(1.0, busy_cpus=2.0)
        h = rec.after("x", 1.0, None)
        self.assertIsNone(h["nivcsw"])
        self.assertIsNone(h["others_cpus"])    # cannot tell ours from theirs: not judged
        self.assertFalse(h["busy"])


class Files(NoiseCase):
    def test_write_load_verdict(self):
        run = os.path.join(self.root, "run")
        os.mkdir(run)
        self.assertIsNone(noise.load(run))        # old run: unknown, not quiet
        self.assertIsNone(noise.verdict(run))
        rec = self.recorder(busy_cpus=1.5)
        rec.start()
        rec.write(run)
        self.assertEqual(os.listdir(run), ["noise.json"])   # no temporary left
        doc = noise.load(run)
        self.assertEqual(doc["schema"], "mproc-noise/1")
        self.assertEqual(doc["usable_cpus"], 2)
        self.assertEqual(set(doc), {"schema", "usable_cpus", "static", "samples", "harnesses",
                                    "verdict", "start"})
        self.assertEqual(noise.verdict(run), doc["verdict"])
        self.assertTrue(noise.verdict(run)["busy"])

    def test_corrupt_file_is_unknown(self):
        run = os.path.join(self.root, "run")
        os.mkdir(run)
        with open(os.path.join(run, "noise.json"), "w") as f:
            f.write("{not json")
        self.assertIsNone(noise.load(run))
        with open(os.path.join(run, "noise.json"), "w") as f:
            json.dump([1, 2], f)
        self.assertIsNone(noise.verdict(run))


def main():
    return taprun.main(sys.modules[__name__], "noise", sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
