#!/usr/bin/env python3
"""The report's answers first (plots/report.py, issue 17): on fixed synthetic runs with known
answers (tests/data/make_report_runs.py writes them) it opens with the machine line, then
"What to use on this machine", each answer decided only where the 95 % intervals support it;
answers.json says the same; targets.md holds the project's targets; index.html opens with the
same section. TAP output for meson."""
import contextlib
import copy
import io
import json
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
from mproc_results import report  # noqa: E402  (PYTHONPATH: plots/, tests/meson.build)


class RunCase(unittest.TestCase):
    def write(self, fixture):
        """Copy a fixture, write its report; -> (run dir, report.md, answers by question)."""
        tmp = tempfile.mkdtemp(prefix="mproc-report-test.")
        self.addCleanup(shutil.rmtree, tmp, True)
        run = os.path.join(tmp, fixture)
        shutil.copytree(os.path.join(DATA, fixture), run)
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(report.main([run]), 0)
        with open(os.path.join(run, "report.md"), encoding="utf-8") as f:
            text = f.read()
        with open(os.path.join(run, "answers.json"), encoding="utf-8") as f:
            doc = json.load(f, parse_constant=lambda c: self.fail("non-finite " + c))
        return run, text, doc, {a["question"]: a for a in doc["answers"]}


class Decided(RunCase):
    def test_machine_line_then_answers(self):
        _, text, doc, _ = self.write("report_quiet")
        lines = text.splitlines()
        self.assertEqual(lines[2], "Machine: **quiet**.")
        self.assertEqual(lines[4], "## What to use on this machine")
        self.assertIs(doc["busy"], False)
        self.assertLess(text.index("## What to use"), text.index("## Headline"))
        self.assertIn("[targets.md](targets.md)", text)
        self.assertNotIn("(provisional)", text)

    def test_known_answers(self):
        _, text, _, a = self.write("report_quiet")
        want = {
            "Start method (libmproc)": "forkserver",
            "Start method (Python multiprocessing)": "fork",
            "Pipe or Queue for one-to-one messages (libmproc)": "Pipe",
            "Pipe or Queue for one-to-one messages (Python)": "Pipe",
            "Queue back end for many-to-many (libmproc)": "ring",
            "Shared state: Value/Array or a manager (libmproc)": "Value/Array (shared memory)",
            "Shared state: Value/Array or a manager (Python)": "Value/Array (shared memory)",
            "What a manager over TCP costs (libmproc)": "costlier than a Unix socket",
            "CPU-bound pool size (libmproc)": "2 workers",
            "CPU-bound pool size (Python Pool/ProcessPoolExecutor)": "2 workers",
            "Is 'physical cores - 1' right here? (libmproc)": "no",
            "I/O-bound pool size (libmproc)": "50 % blocked: 4, 90 % blocked: 16, "
                                              "99 % blocked: 16",
            "I/O-bound pool size (Python Pool/ProcessPoolExecutor)":
                "50 % blocked: 4, 90 % blocked: 8, 99 % blocked: 8",
        }
        for q, ans in want.items():
            self.assertEqual(a[q]["answer"], ans, q)
            self.assertIs(a[q]["provisional"], False)
            self.assertIn("- **%s**: **%s**." % (q, ans), text)
        # Every deciding figure carries its interval.
        for f in a["Start method (libmproc)"]["figures"]:
            self.assertIsNotNone(f["lo"], f)
            self.assertLessEqual(f["lo"], f["value"])
            self.assertLessEqual(f["value"], f["hi"])
        # The caveats that matter are said beside the answer.
        self.assertIn("only the calling thread", text)
        self.assertIn("-EBADMSG on every later get/put", text)
        self.assertIn("the ring back end survives it", text)

    def test_chunksize_from_each_sides_own_cost(self):
        """libmproc's ~300 ns per task needs no chunking for 1 ms tasks; CPython's 52 us per
        task does (>= 10): each answer from its own pool_overhead figures."""
        _, _, _, a = self.write("report_quiet")
        self.assertEqual(a["Chunksize (libmproc)"]["answer"],
                         "map: chunksize >= 1 for 1 ms tasks, >= 1 for 20 ms")
        py = a["Chunksize (Python Pool/ProcessPoolExecutor)"]
        self.assertEqual(py["answer"], "map: chunksize >= 10 for 1 ms tasks, >= 1 for 20 ms")
        self.assertIn("apply_async 50 µs per task", py["why"])
        self.assertTrue(all(f["name"].startswith("python/") for f in py["figures"]))

    def test_targets_move_to_targets_md(self):
        run, text, _, _ = self.write("report_quiet")
        self.assertNotIn("(target <=", text)
        self.assertNotIn("(target >=", text)
        self.assertNotIn("**missed**", text)
        with open(os.path.join(run, "targets.md"), encoding="utf-8") as f:
            targets = f.read()
        # dict_get 18 us / raw_rtt 21 us: well under 1.5, decided with 9 repetitions each.
        self.assertRegex(targets, r"`manager/raw_rtt/transport:unix`\) \| <= 1.5 \| 0.857x "
                                  r"\[[0-9.]+, [0-9.]+\] \| \*\*met\*\* \| bootstrap \|")
        # CPython's Manager (unpinned) against ours (pinned): not compared.
        self.assertIn("not compared: placements differ", targets)

    def test_target_dict_get_over_socket_uses_shm_off_twin(self):
        run = report.gbjson.load_run(os.path.join(DATA, "report_quiet"))

        def row():
            return next(r for r in report.target_rows(run)
                        if r["b"] == "manager/raw_rtt/transport:unix")
        self.assertEqual(row()["a"], "manager/dict_get/transport:unix")
        # With a shared-memory channel the plain figure makes no socket round trip: the
        # target (the manager's overhead over its socket) takes the shm:off twin.
        h = run.harnesses["manager"]
        h.figures["manager/dict_get/transport:unix/shm:off"] = \
            h.figures["manager/dict_get/transport:unix"]
        self.assertEqual(row()["a"], "manager/dict_get/transport:unix/shm:off")
        self.assertEqual(row()["outcome"], "met")

    def test_target_ring_round_trip_against_cache_line(self):
        run = report.gbjson.load_run(os.path.join(DATA, "report_quiet"))

        def rows():
            return [r for r in report.target_rows(run)
                    if r["a"] == "latency/ring_spin/placement:cross_core"]
        self.assertEqual(rows(), [])            # neither figure in this run: no row
        # Both, from one figure with a p50 (ratio 1, decided with its repetitions): a row.
        h = run.harnesses["latency"]
        fig = next(f for f in h.figures.values() if f.value("p50_ns") is not None)
        h.figures["latency/ring_spin/placement:cross_core"] = fig
        h.figures["baseline/cacheline_rtt/placement:cross_core"] = fig
        (row,) = rows()
        self.assertEqual(row["b"], "baseline/cacheline_rtt/placement:cross_core")
        self.assertEqual(row["target"], "<= 1.3")
        self.assertAlmostEqual(row["ratio"], 1.0)
        self.assertEqual(row["outcome"], "met")

    def test_target_across_harnesses_takes_the_deciders_interval(self):
        """The ring round trip and the cache line come from two harnesses; where the decider
        measured them again in pairs, the target row takes its interval, not a bootstrap."""
        tmp = tempfile.mkdtemp(prefix="mproc-report-test.")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "r")
        shutil.copytree(os.path.join(DATA, "report_quiet"), path)
        a = "latency/ring_spin/placement:cross_core"
        b = "baseline/cacheline_rtt/placement:cross_core"
        with open(os.path.join(path, "decide.json"), "w") as f:
            json.dump({"schema": "mproc-decide/1", "budget_s": 60, "spent_s": 20, "pairs": [
                {"id": "target/ring_vs_cacheline", "source": "target", "a": a, "b": b,
                 "threshold": 1.3, "extended": True, "status": "decided",
                 "final": {"ratio": 1.22, "lo": 1.18, "hi": 1.26, "verdict": "better"}}]}, f)
        run = report.gbjson.load_run(path)
        h = run.harnesses["latency"]
        fig = next(f for f in h.figures.values() if f.value("p50_ns") is not None)
        for name in (a, b):                     # a bootstrap alone would say 1.0
            h.figures[name] = copy.copy(fig)
            h.figures[name].name = name
        (row,) = [r for r in report.target_rows(run) if r["a"] == a]
        self.assertEqual((row["ratio"], row["lo"], row["hi"]), (1.22, 1.18, 1.26))
        self.assertEqual((row["how"], row["outcome"]), ("decide.json", "met"))

    def test_headline_like_with_like(self):
        run = report.gbjson.load_run(os.path.join(DATA, "report_quiet"))
        rows = {r[0].split(" (`")[1].rstrip("`)"): r for r in report.headline_rows(run)}
        mgr = rows["manager/dict_get/transport:unix"]
        self.assertIn("placements differ", mgr[3])
        self.assertEqual(mgr[4], "not compared")
        # With an unpinned mproc figure, that one is joined with CPython's.
        h = run.harnesses["manager"]
        fig = h.figures["manager/dict_get/transport:unix"]
        h.figures["manager/dict_get/transport:unix/placement:unpinned"] = fig
        rows = {r[0].split(" (`")[1].rstrip("`)"): r for r in report.headline_rows(run)}
        mgr = rows["manager/dict_get/transport:unix/placement:unpinned"]
        self.assertRegex(mgr[3], r"^[0-9.]+x faster \[[0-9.]+, [0-9.]+\]$")
        self.assertEqual(mgr[4], "faster")
        fork = rows["spawn/fork/rss_mib:0"]
        self.assertRegex(fork[1], r"^200 µs \[[0-9.]+ µs, [0-9.]+ µs\]$")

    def test_index_html_opens_with_answers(self):
        run, _, _, _ = self.write("report_quiet")
        with open(os.path.join(run, "index.html"), encoding="utf-8") as f:
            page = f.read()
        body = page[page.index("<body>"):]
        self.assertLess(body.index("<p>Machine: <strong>quiet</strong>.</p>"),
                        body.index("<h2"))
        self.assertTrue(body[body.index("<h2"):].startswith(
            '<h2>What to use on this machine</h2>'))
        self.assertIn('<section id="what-to-use-on-this-machine">', body)


class Index(RunCase):
    """index.html is rendered from report.md's document: every plot in its harness's section
    (registry.py), its PNG a link to its SVG; the Machine table has a real header row."""

    def test_plots_beside_their_sections(self):
        tmp = tempfile.mkdtemp(prefix="mproc-report-test.")
        self.addCleanup(shutil.rmtree, tmp, True)
        run = os.path.join(tmp, "run")
        shutil.copytree(os.path.join(DATA, "report_quiet"), run)
        os.mkdir(os.path.join(run, "plots"))
        for f in ("pool_cpu_speedup.mpl.png", "pool_cpu_speedup.mpl.svg",
                  "spawn_rss.gnuplot.png", "spawn_rss.gnuplot.svg", "stray.mpl.svg"):
            open(os.path.join(run, "plots", f), "w").close()
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(report.main([run]), 0)
        with open(os.path.join(run, "index.html"), encoding="utf-8") as f:
            page = f.read()

        def section(anchor):
            i = page.index('<section id="%s">' % anchor)
            return page[i:page.index("</section>", i)]
        self.assertIn('<a href="plots/pool_cpu_speedup.mpl.svg"><img '
                      'src="plots/pool_cpu_speedup.mpl.png"', section("pool"))
        self.assertIn('<a href="plots/spawn_rss.gnuplot.svg"><img '
                      'src="plots/spawn_rss.gnuplot.png"', section("spawn"))
        self.assertNotIn("spawn_rss", section("pool"))
        self.assertIn("plots/stray.mpl.svg", section("other-plots"))
        self.assertIn("<thead><tr><th>what</th><th>value</th></tr></thead>", section("machine"))
        with open(os.path.join(run, "report.md"), encoding="utf-8") as f:
            md = f.read()
        pool = md[md.index("\n## pool\n"):]
        self.assertIn("![pool_cpu_speedup.mpl.png](plots/pool_cpu_speedup.mpl.png)",
                      pool[:pool.index("\n## ", 5)])
        self.assertIn("| what | value |", md)


class Undecided(RunCase):
    def test_overlap_and_too_few_repetitions(self):
        _, text, doc, a = self.write("report_undecided")
        self.assertIn("Machine: **machine state not recorded**", text.splitlines()[2])
        self.assertIsNone(doc["busy"])
        s = a["Start method (libmproc)"]
        self.assertEqual(s["answer"], "undecided")
        self.assertIn("cannot be told apart", s["why"])
        self.assertIn("straddles 1", s["why"])
        for q in ("CPU-bound pool size (libmproc)",
                  "CPU-bound pool size (Python Pool/ProcessPoolExecutor)",
                  "I/O-bound pool size (libmproc)", "Chunksize (libmproc)",
                  "Is 'physical cores - 1' right here? (libmproc)"):
            self.assertEqual(a[q]["answer"], "undecided", q)
            self.assertIn("too few repetitions", a[q]["why"], q)
        self.assertIn("- **Start method (libmproc)**: **undecided**.", text)
        # No noise.json: machine state unknown, so nothing is stated as more than provisional.
        self.assertTrue(all(x["provisional"] for x in doc["answers"]))
        # Figures without an interval say so.
        self.assertIn("(no interval)", text)


class HarnessTables(RunCase):
    def test_every_figure_has_its_interval_or_says_why_not(self):
        # The harness tables state each figure's median with its 95 % interval; a figure with
        # too few repetitions says so instead of looking stable.
        _, text, _, _ = self.write("report_quiet")
        rows = [ln for ln in text.splitlines() if ln.startswith("| `")]
        heads = [ln for ln in text.splitlines() if ln.startswith("| benchmark | time")]
        self.assertTrue(heads)
        for h in heads:
            self.assertIn("time (median [95 % interval])", h)
        timed = [ln for ln in rows if " | " in ln and ("µs [" in ln or "ms [" in ln
                                                      or "ns [" in ln)]
        self.assertTrue(timed, "no row with an interval")
        _, few, _, _ = self.write("report_undecided")
        self.assertRegex(few, r"\| `[^`]+` \| [^|]+ \(\d reps?: no interval\) \|")


class Busy(RunCase):
    def test_everything_provisional(self):
        run, text, doc, a = self.write("report_busy")
        self.assertEqual(text.splitlines()[2], "Machine: **busy: load 3.5 on 2 usable CPUs, "
                                               "12 % steal — figures below are provisional**.")
        self.assertIs(doc["busy"], True)
        self.assertTrue(doc["answers"])
        for x in doc["answers"]:
            self.assertTrue(x["provisional"], x["question"])
            if x["answer"] != "undecided":
                self.assertTrue(x["why"].startswith("provisional"), x["question"])
                self.assertIn("- **%s**: **%s** (provisional)." % (x["question"], x["answer"]),
                              text)
        self.assertEqual(a["CPU-bound pool size (libmproc)"]["answer"], "2 workers")
        # The recommendation says so too.
        self.assertIn("CPU-bound pool: 2 workers (provisional: busy machine)", text)
        with open(os.path.join(run, "targets.md"), encoding="utf-8") as f:
            self.assertIn("**Provisional**: the machine was busy", f.read())


class DecideJson(RunCase):
    def decide(self, fixture, pairs):
        tmp = tempfile.mkdtemp(prefix="mproc-report-test.")
        self.addCleanup(shutil.rmtree, tmp, True)
        run = os.path.join(tmp, "r")
        shutil.copytree(os.path.join(DATA, fixture), run)
        with open(os.path.join(run, "decide.json"), "w") as f:
            json.dump({"schema": "mproc-decide/1", "budget_s": 60, "spent_s": 42,
                       "pairs": pairs}, f)
        return run

    def test_decider_interval_decides_an_answer(self):
        """The start methods overlap in the main pass; the decider measured fork against
        forkserver again, interleaved, and its final interval decides."""
        run = self.decide("report_undecided", [
            {"id": "start/fork_vs_forkserver", "what": "libmproc start method: fork against "
             "forkserver", "a": "spawn/fork/rss_mib:0", "b": "spawn/forkserver/rss_mib:0",
             "extended": True, "status": "decided",
             "final": {"ratio": 1.10, "lo": 1.06, "hi": 1.14, "verdict": "worse"}},
            {"id": "pool/cpu_w_vs_w-1", "what": "libmproc CPU-bound pool: 2 workers against 1",
             "a": "pool/cpu/workers:2/task_ms:20", "b": "pool/cpu/workers:1/task_ms:20",
             "extended": False, "status": "undecided", "final": {}}])
        r = report.gbjson.load_run(run)
        machine, rec, answers = report.report_inputs(r)
        a = {x["question"]: x for x in answers}["Start method (libmproc)"]
        self.assertEqual(a["answer"], "forkserver")
        self.assertIn("1.1x [1.06, 1.14]", a["why"])
        self.assertIn("decide.json", a["why"])
        text = report.build_report(r)
        self.assertIn("Adaptive repetitions (`decide.json`, 42 s of 60 s spent): 1 deciding pair "
                      "measured again, interleaved (libmproc start method: fork against "
                      "forkserver); 1 still undecided or wider than +-5 % (libmproc CPU-bound "
                      "pool: 2 workers against 1).", text)

    def test_absent_or_empty(self):
        run = self.decide("report_quiet", [])
        self.assertNotIn("Adaptive repetitions", report.build_report(
            report.gbjson.load_run(run)))


class PairedRatio(unittest.TestCase):
    """ratio_of on two figures of one interleaved harness: Google Benchmark shuffled their
    repetitions together, so repetition i of A and of B were not measured together: the
    interval is the unpaired bootstrap of the ratio of medians (never the per-index pairs,
    which would claim a drift cancelled that was not), and a lost repetition is just left
    out."""

    def test_interleaved_is_not_paired(self):
        from mproc_results import gbjson
        drift = [1.0, 3.0, 1.5, 2.5, 1.2, 2.0, 1.8, 2.2]
        a = [100.0 * d for d in drift]
        b = [200.0 * d for d in drift]
        a[0] = float("nan")                 # repetition 0 of A lost
        doc = {"context": {"mproc_random_interleaving": "true"}, "benchmarks": []}
        for name, vals in (("h/a", a), ("h/b", b)):
            for i, v in enumerate(vals):
                doc["benchmarks"].append({
                    "name": name + "/manual_time", "run_name": name + "/manual_time",
                    "run_type": "iteration", "repetitions": len(vals), "repetition_index": i,
                    "iterations": 10, "real_time": 1.0, "cpu_time": 1.0, "time_unit": "ns",
                    "p50_ns": v})
        tmp = tempfile.mkdtemp(prefix="mproc-report-test.")
        self.addCleanup(shutil.rmtree, tmp, True)
        with open(os.path.join(tmp, "context.json"), "w") as f:
            json.dump({"schema": "mproc-run/1", "complete": True}, f)
        with open(os.path.join(tmp, "h.json"), "w") as f:
            json.dump(doc, f, allow_nan=True)
        run = gbjson.load_run(tmp)
        fa, fb = run.figures["h/a"], run.figures["h/b"]
        r, lo, hi, how = report.ratio_of(run, fa, "p50_ns", fb, "p50_ns")
        self.assertEqual(how, "bootstrap, interleaved")
        # The ratio of the medians (A's 7 values against B's 8), inside a real interval that
        # is wider than the point: the drift is not assumed away.
        from mproc_results import stats
        self.assertAlmostEqual(r, stats.median(a) / stats.median(b))
        self.assertLess(lo, r)
        self.assertGreater(hi, r)
        r2, lo2, hi2, _ = report.ratio_of(run, fa, "p50_ns", fb, "p50_ns", lambda v: 1e9 / v,
                                          lambda v: 1e9 / v)
        self.assertAlmostEqual(r2, 1.9, delta=0.01)    # as rates: A does ~1.9x as many


if __name__ == "__main__":
    import taprun  # tests/taprun.py: unittest cases as TAP
    sys.exit(taprun.main(sys.modules[__name__], "report", sys.argv[1:]))
