#!/usr/bin/env python3
"""Plots that tell the truth at a glance (issue 20): integer ticks for counts, sizes in
B/KiB/MiB in both tools, no axis below zero, the ideal-speedup line and the usable budget on
speedup plots with points above ideal explained, overlapping lines named, legends outside the
data, one spelling of µs. On a run made here from fixed figures (no harness runs); gnuplot's
SVG is read back for its text, matplotlib's drawing is inspected on its Axes. TAP output for
meson; a name pattern as argv[1] selects cases."""
import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
PLOT = os.path.join(ROOT, "plots", "plot.py")
import plot  # noqa: E402  plots/ is on PYTHONPATH (meson's results_env)
import registry  # noqa: E402
from mproc_results import gbjson, tsv  # noqa: E402

import taprun  # tests/taprun.py: unittest cases as TAP

# Figures of the run written below: CPython's 2-worker speedup is above ideal on 2 CPUs, vfork
# lies on posix_spawn, the pool overhead chunksizes come in shuffled order.
SPEEDUP = {"cpu": {1: 1.0, 2: 1.9, 3: 1.95, 4: 1.9}, "python:cpu": {1: 1.0, 2: 2.42, 4: 2.0}}
SPAWN = {"fork": {0: 500e3, 64: 4000e3}, "vfork": {0: 700e3, 64: 702e3},
         "posix_spawn": {0: 705e3, 64: 700e3}}
PIPE = (64, 4096, 65536, 1 << 20)
CHUNKS = (100, 1, 1000, 10)


def entry(name, **counters):
    e = {"name": name, "run_name": name, "run_type": "iteration", "repetitions": 1,
         "repetition_index": 0, "iterations": 10, "real_time": 1000.0, "cpu_time": 1000.0,
         "time_unit": "ns"}
    e.update(counters)
    return e


def write_run(path, usable=2):
    os.makedirs(path)
    with open(os.path.join(path, "context.json"), "w") as f:
        json.dump({"complete": True, "host": "test", "profile": "quick",
                   "budget": {"usable": usable, "bound_by": "hardware"}}, f)
    files = {"pool": [], "spawn": [], "pipe": [], "python": []}
    for series, pts in SPEEDUP.items():
        for w, sp in pts.items():
            base = "pool/cpu/workers:%d/task_ms:20" % w
            if series.startswith("python:"):
                files["python"].append(entry("python/" + base, speedup=sp))
            else:
                files["pool"].append(entry(base, speedup=sp))
    for cs in CHUNKS:
        files["pool"].append(entry("pool_overhead/map/chunksize:%d" % cs,
                                   ns_per_task=1000.0 / cs))
    for method, pts in SPAWN.items():
        for mib, ns in pts.items():
            files["spawn"].append(entry("spawn/%s/rss_mib:%d" % (method, mib), p50_ns=ns))
    for b in PIPE:
        files["pipe"].append(entry("pipe/conn_pipe/bytes:%d/placement:cross_core" % b,
                                   bytes_per_second=b * 1000.0))
    for h, rows in files.items():
        with open(os.path.join(path, h + ".json"), "w") as f:
            json.dump({"context": {}, "benchmarks": rows}, f)
    return path


def spec(pid):
    return next(p for p in registry.PLOTS if p["id"] == pid)


def svg_texts(path):
    """Every text of a gnuplot SVG, one string per <text> element."""
    out = []
    for el in ET.parse(path).iter():
        if el.tag.endswith("}text") or el.tag == "text":
            out.append("".join(el.itertext()).strip())
    return out


class Helpers(unittest.TestCase):
    def test_size_labels_one_spelling(self):
        self.assertEqual([plot.size_label(x) for x in (64, 4096, 65536, 1 << 20, 3 << 30)],
                         ["64 B", "4 KiB", "64 KiB", "1 MiB", "3 GiB"])

    def test_ticks_are_the_measured_values(self):
        self.assertEqual(plot.x_ticks(spec("pipe_throughput"), [64.0, 4096.0]),
                         [(64.0, "64 B"), (4096.0, "4 KiB")])
        self.assertEqual(plot.x_ticks(spec("pool_cpu_speedup"), [1.0, 2.0, 4.0]),
                         [(1.0, "1"), (2.0, "2"), (4.0, "4")])
        many = [float(1 << k) for k in range(6, 26)]
        self.assertLessEqual(len(plot.x_ticks(spec("pipe_throughput"), many)), 12)

    def test_x_range_never_below_zero(self):
        s = spec("spawn_rss")
        self.assertEqual(plot.x_range(s, [0.0, 64.0])[0], 0.0)
        self.assertEqual(plot.x_range(s, [0.0])[0], 0.0)
        lo, hi = plot.x_range(spec("pool_cpu_speedup"), [1.0, 2.0])
        self.assertTrue(0 <= lo < 1 and hi > 2, (lo, hi))
        lo, hi = plot.x_range(spec("pipe_throughput"), [64.0, 1024.0])
        self.assertTrue(0 < lo < 64 and hi > 1024, (lo, hi))

    def test_ideal_and_above_ideal(self):
        self.assertEqual([plot.ideal_speedup(x, 2) for x in (1, 2, 4)], [1, 2, 2])
        self.assertEqual(plot.ideal_speedup(4, None), 4)
        t = tsv.Table(spec("pool_cpu_speedup"))
        t.groups = ["1", "2", "4"]
        t.series = ["cpu"]
        t.cells = {("1", "cpu"): (1.0, 1.0), ("2", "cpu"): (2.02, 2.02),
                   ("4", "cpu"): (2.5, 2.5)}
        # 2.02 is within 2 % of ideal; 2.5 at 4 workers is over a budget of 2 (not of 4).
        self.assertEqual(plot.above_ideal(t, 2), [("cpu", 4.0, 2.5, 2)])
        self.assertEqual(plot.above_ideal(t, None), [])

    def test_overlaps(self):
        t = tsv.Table(spec("spawn_rss"))
        t.groups = ["0", "64"]
        t.series = ["vfork", "posix_spawn", "fork"]
        for s, vals in (("vfork", (700, 702)), ("posix_spawn", (705, 700)), ("fork", (500, 4000))):
            for g, v in zip(t.groups, vals):
                t.cells[(g, s)] = (v, v)
        self.assertEqual(plot.overlaps(t), [("vfork", "posix_spawn")])
        self.assertIn("vfork under posix spawn", " ".join(plot.notes(t.spec, t, 2)))

    def test_units_spelled_once(self):
        for p in registry.PLOTS:
            for k in ("ylabel", "xlabel", "title"):
                text = p.get(k, "")
                self.assertNotRegex(text, r"\bus\b", "%s %s: write µs" % (p["id"], k))
                self.assertNotRegex(text, r"\d(ki|Ki|Mi)\b", "%s %s" % (p["id"], k))
        self.assertTrue(spec("pool_cpu_speedup").get("ideal"))

    def test_counted_groups_in_numeric_order(self):
        with tempfile.TemporaryDirectory(prefix="mproc-plot-test.") as tmp:
            run = gbjson.load_run(write_run(os.path.join(tmp, "r")))
            t = tsv.build_table(run, spec("pool_overhead"))
        self.assertEqual(t.groups, ["chunksize:1", "chunksize:10", "chunksize:100",
                                    "chunksize:1000"])


class Drawn(unittest.TestCase):
    """The whole plot step on the run above: what each tool drew."""

    state = None

    def setUp(self):
        # Drawn once for every case (taprun runs each case on its own: no setUpClass).
        cls = type(self)
        if cls.state is None:
            tmp = tempfile.mkdtemp(prefix="mproc-plot-test.")
            atexit.register(shutil.rmtree, tmp, True)
            run_dir = write_run(os.path.join(tmp, "run"))
            py = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
            r = subprocess.run([py, PLOT, run_dir], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, universal_newlines=True,
                               timeout=taprun.scaled(300))
            cls.state = (run_dir, r, plot.load_matplotlib())
        self.run_dir, r, self.plt = cls.state
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def gp_texts(self, pid):
        if not shutil.which("gnuplot"):
            self.skipTest("gnuplot not installed")
        return svg_texts(os.path.join(self.run_dir, "plots", pid + ".gnuplot.svg"))

    def axes(self, pid):
        if self.plt is None:
            self.skipTest("matplotlib not installed")
        run = gbjson.load_run(self.run_dir)
        t = tsv.build_table(run, spec(pid))
        fig, ax = self.plt.subplots(figsize=(9.6, 5.6), dpi=100)
        self.addCleanup(self.plt.close, fig)
        plot.draw_on_ax(ax, spec(pid), t, plot.run_budget(run))
        fig.tight_layout()
        fig.canvas.draw()
        return fig, ax

    def test_gnuplot_speedup(self):
        texts = self.gp_texts("pool_cpu_speedup")
        joined = "\n".join(texts)
        self.assertIn("usable CPUs: 2", texts)
        self.assertIn("ideal (up to 2 CPUs)", texts)
        self.assertIn("Above ideal: CPython cpu 2.42 at 2 workers (ideal 2).", joined)
        self.assertIn("oversubscription", joined)
        ticks = [t for t in texts if re.fullmatch(r"-?[0-9.]+", t)]
        for want in ("1", "2", "3", "4"):
            self.assertIn(want, ticks)
        self.assertFalse([t for t in ticks if t in ("0.5", "1.5", "2.5", "3.5")], ticks)

    def test_gnuplot_sizes_and_units(self):
        texts = self.gp_texts("pipe_throughput")
        for want in ("64 B", "4 KiB", "64 KiB", "1 MiB"):
            self.assertIn(want, texts)
        self.assertFalse([t for t in texts if re.search(r"\dki\b", t)], texts)
        texts = self.gp_texts("spawn_rss")
        self.assertIn("start → reaped, p50 (µs, log scale)", texts)
        nums = [float(t) for t in texts if re.fullmatch(r"-?[0-9.]+", t)]
        self.assertTrue(nums and min(nums) >= 0, nums)
        self.assertIn("vfork under posix spawn", "\n".join(texts))

    def test_matplotlib_speedup(self):
        fig, ax = self.axes("pool_cpu_speedup")
        labels = [t.get_text() for t in ax.get_xticklabels()]
        self.assertEqual(labels, ["1", "2", "3", "4"])
        self.assertGreaterEqual(ax.get_xlim()[0], 0)
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        self.assertIn("ideal (up to 2 CPUs)", legend)
        ideal = next(l for l in ax.get_lines() if l.get_label() == "ideal (up to 2 CPUs)")
        self.assertEqual(max(ideal.get_ydata()), 2)
        self.assertIn("usable CPUs: 2", [t.get_text() for t in ax.texts])

    def test_matplotlib_legends_outside_the_data(self):
        for pid in ("pool_overhead", "pool_cpu_speedup", "spawn_rss"):
            fig, ax = self.axes(pid)
            r = fig.canvas.get_renderer()
            box, leg = ax.get_window_extent(r), ax.get_legend().get_window_extent(r)
            self.assertGreaterEqual(leg.x0, box.x1, pid)

    def test_matplotlib_sizes(self):
        fig, ax = self.axes("pipe_throughput")
        self.assertEqual([t.get_text() for t in ax.get_xticklabels()],
                         ["64 B", "4 KiB", "64 KiB", "1 MiB"])
        fig, ax = self.axes("spawn_rss")
        self.assertEqual(ax.get_xlim()[0], 0.0)
        markers = {l.get_marker() + l.get_fillstyle() for l in ax.get_lines()}
        self.assertEqual(len(markers), len(SPAWN))


def main():
    return taprun.main(sys.modules[__name__], "plot", sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
