#!/usr/bin/env python3
"""Comparison across runs (plots/compare.py), the report's headline table and index.html
(plots/report.py, mproc_results/doc.py), and the CPython twins in single-run plots, on the
fixtures in tests/data/ (issue 8). TAP output for meson; a name pattern as argv[1] selects.

Fixtures: run_baseline (devbox, 2 CPUs), run_bigbox (another machine: a different baseline
set, spawn + latency + python, times halved), run_python (CPython comparators only),
run_incomplete (interrupted), run_nan (NaN p50 in one name, NaN/Infinity p99 in another).
Everything is written under a temporary directory."""
import contextlib
import io
import json
import math
import html.parser
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
DATA = os.path.join(TESTS, "data")
COMPARE = os.path.join(ROOT, "plots", "compare.py")
REPORT = os.path.join(ROOT, "plots", "report.py")
PY = sys.executable
# Plotting runs with Debian's python (matplotlib), as `make` does.
PLOT_PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else PY
import registry  # noqa: E402  plots/registry.py (PYTHONPATH: plots/, tests/meson.build)
from mproc_results import compare, doc, gbjson, report, tsv  # noqa: E402

import taprun  # tests/taprun.py: unittest cases as TAP

VOID = {"meta", "img", "br", "hr", "link", "input"}


class WellFormed(html.parser.HTMLParser):
    """Every non-void tag closed in order; collects img src and a href."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.srcs, self.hrefs = [], [], [], []
        self.doctype = False

    def handle_decl(self, decl):
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.srcs.append(a.get("src"))
        if tag == "a":
            self.hrefs.append(a.get("href"))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("</%s> closes <%s>" % (tag, self.stack[-1] if self.stack else ""))
        else:
            self.stack.pop()


def check_html(tc, path):
    """Well-formed, and every image and plot link points at a file. Returns the parser."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    p = WellFormed()
    p.feed(text)
    p.close()
    tc.assertTrue(p.doctype, "no <!DOCTYPE html>")
    tc.assertEqual(p.errors, [])
    tc.assertEqual(p.stack, [], "unclosed tags")
    root = os.path.dirname(path)
    for ref in p.srcs + [h for h in p.hrefs if h and h.startswith(("plots/", "gbcompare/"))]:
        if ref and "://" not in ref and not ref.startswith("#"):
            tc.assertTrue(os.path.exists(os.path.join(root, ref)), ref)
    return p


class TmpCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="mproc-compare-test.")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.env = dict(os.environ, MPROC_GBCOMPARE="/nonexistent/compare.py")

    def compare(self, *args, env=None, py=None, tools=False):
        argv = [py or PLOT_PY, COMPARE] + list(args)
        if not tools:
            argv += ["--no-gnuplot", "--no-matplotlib"]
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, env=env or self.env,
                              timeout=taprun.scaled(300))

    def out(self, name="out"):
        return os.path.join(self.tmp, name)

    def read(self, *parts):
        with open(os.path.join(*parts), encoding="utf-8") as f:
            return f.read()

    def tsv_rows(self, out):
        lines = self.read(out, "compare.tsv").splitlines()
        head = lines[0].split("\t")
        return {r[0]: dict(zip(head, r)) for r in (l.split("\t") for l in lines[1:])}

    def copy_fixture(self, name):
        dst = os.path.join(self.tmp, name)
        shutil.copytree(os.path.join(DATA, name), dst)
        return dst

    def one_line_exit_2(self, r, words):
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("compare: "), lines[0])
        self.assertIn(words, lines[0])


# ------------------------------------------------------------------------------------------
class Compare(TmpCase):
    def test_sets_differ(self):
        """Two machines whose benchmark sets differ: common names get ratios, the others are
        listed with the runs that have them, nothing crashes."""
        out = self.out()
        r = self.compare(os.path.join(DATA, "run_baseline"), os.path.join(DATA, "run_bigbox"),
                         "--out", out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("compare: 8 names compared with A, 16 not in every run", r.stdout)
        md = self.read(out, "compare.md")
        some_only = md.split("## Names in some runs only", 1)[1].split("\n## ", 1)[0]
        self.assertIn("| `baseline/eventfd_rtt/placement:same_core` | yes | — |", some_only)
        self.assertIn("| `baseline/new_probe/placement:same_core` | — | yes |", some_only)
        self.assertIn("| `python/spawn/fork/rss_mib:0` | — | yes |", some_only)
        # 3 repetitions a run: a ratio, never a verdict.
        self.assertIn("| `baseline/pipe_rtt/placement:same_core` | real_time | 1.95 µs | 975 ns | "
                      "0.5x (too few repetitions) |", md)
        rows = self.tsv_rows(out)
        self.assertEqual(len(rows), 8)
        self.assertNotIn("baseline/eventfd_rtt/placement:same_core", rows)
        row = rows["baseline/pipe_rtt/placement:same_core"]
        self.assertEqual((row["field"], row["better"], row["B/A"]), ("real_time", "lower", "0.5"))
        self.assertEqual(row["verdict_B"], "too few repetitions")
        self.assertEqual(row["unstable_A"], "0")
        self.assertEqual(rows["baseline/futex_rtt/placement:cross_core"]["unstable_A"], "1")
        self.assertIn("| baseline | 2x (8 names) |", md)      # B twice as fast
        self.assertIn("not installed", md.split("## Google Benchmark U-test", 1)[1])
        check_html(self, os.path.join(out, "index.html"))

    def test_python_run(self):
        """A CPython-only run against a run that has the same python/ names."""
        out = self.out()
        r = self.compare(os.path.join(DATA, "run_python"), os.path.join(DATA, "run_bigbox"),
                         "--out", out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rows = self.tsv_rows(out)
        self.assertEqual(rows["python/spawn/fork/rss_mib:0"]["B/A"], "1")
        self.assertEqual(rows["python/queue/pipe/bytes:64/producers:1/consumers:1"]["field"],
                         "real_time")
        md = self.read(out, "compare.md")
        self.assertIn("| `spawn/fork/rss_mib:0` | — | yes |", md)

    def test_incomplete_run(self):
        out = self.out()
        r = self.compare(os.path.join(DATA, "run_baseline"),
                         os.path.join(DATA, "run_incomplete"), "--out", out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        md = self.read(out, "compare.md")
        self.assertIn("**INCOMPLETE** (interrupted)", md)
        self.assertIn("Run B is incomplete", md)

    def test_nan_counters(self):
        """NaN p50 in every repetition: that name is compared on real_time; NaN/Infinity p99
        change nothing; no NaN reaches a ratio."""
        out = self.out()
        r = self.compare(os.path.join(DATA, "run_baseline"), os.path.join(DATA, "run_nan"),
                         "--out", out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rows = self.tsv_rows(out)
        self.assertEqual(rows["baseline/pipe_rtt/placement:cross_core"]["field"], "real_time")
        self.assertEqual(rows["baseline/pipe_rtt/placement:cross_core"]["B/A"], "1")
        self.assertEqual(rows["baseline/pipe_rtt/placement:same_core"]["field"], "real_time")
        for row in rows.values():
            self.assertNotIn(row["B/A"].lower(), ("nan", "inf"), row)

    def test_three_runs_and_plots(self):
        """Three runs, side-by-side plots with whatever tools are installed."""
        out = self.out()
        r = self.compare(os.path.join(DATA, "run_baseline"), os.path.join(DATA, "run_bigbox"),
                         os.path.join(DATA, "run_python"), "--out", out, tools=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        md = self.read(out, "compare.md")
        self.assertIn("| harness | B vs A | C vs A |", md)
        self.assertIn("| baseline | 2x (8 names) | — |", md)     # C has no baseline
        rows = self.tsv_rows(out)
        self.assertEqual((rows["baseline/syscall"]["B/A"], rows["baseline/syscall"]["C"]),
                         ("0.5", "NaN"))
        self.assertNotIn("python/spawn/fork/rss_mib:0", rows)      # not in A
        have_gp = shutil.which("gnuplot") is not None
        have_mpl = "matplotlib not installed" not in r.stdout
        if not have_gp:
            self.assertIn("gnuplot not installed — skipped", r.stdout)
        for tool, have in (("gnuplot", have_gp), ("mpl", have_mpl)):
            for ext in ("png", "svg"):
                p = os.path.join(out, "plots", "baseline_latency.%s.%s" % (tool, ext))
                self.assertEqual(os.path.isfile(p), have, p)
        # The python-only run has no baseline: its panel is there, empty; its data file too.
        self.assertTrue(os.path.isfile(os.path.join(out, "plots", "data",
                                                    "baseline_latency.C.tsv")))
        p = check_html(self, os.path.join(out, "index.html"))
        if have_gp or have_mpl:
            self.assertIn("plots/baseline_latency.%s.png" % ("gnuplot" if have_gp else "mpl"),
                          p.srcs)

    def test_without_plot_tools(self):
        out = self.out()
        env = dict(self.env, PATH=os.path.join(self.tmp, "nothing"), PYTHONPATH="/nonexistent")
        argv = [PY, "-S", COMPARE, os.path.join(DATA, "run_baseline"),
                os.path.join(DATA, "run_bigbox"), "--out", out]
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, env=env, timeout=taprun.scaled(120))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("compare: plots: gnuplot not installed — skipped.", r.stdout)
        self.assertIn("compare: plots: matplotlib not installed — skipped.", r.stdout)
        self.assertTrue(os.path.isfile(os.path.join(out, "index.html")))

    def test_gbcompare(self):
        """Google Benchmark's compare.py on each harness file both runs have, when installed."""
        tool = compare.GBCOMPARE
        if not os.path.isfile(tool):
            self.skipTest("%s not installed (Debian libbenchmark-tools)" % tool)
        if not compare.scipy_ok(PLOT_PY):
            self.skipTest("python3-scipy not installed")
        out = self.out()
        env = dict(self.env)
        del env["MPROC_GBCOMPARE"]
        r = self.compare(os.path.join(DATA, "run_baseline"), os.path.join(DATA, "run_bigbox"),
                         "--out", out, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(os.listdir(os.path.join(out, "gbcompare")), ["baseline.A-vs-B.txt"])
        text = self.read(out, "gbcompare", "baseline.A-vs-B.txt")
        self.assertIn("baseline/pipe_rtt/placement:same_core", text)
        self.assertIn("pvalue", text)        # the U-test ran
        self.assertIn("[baseline.A-vs-B.txt](gbcompare/baseline.A-vs-B.txt) — ok",
                      self.read(out, "compare.md"))

    def test_out_rules(self):
        a, b = os.path.join(DATA, "run_baseline"), os.path.join(DATA, "run_bigbox")
        out = self.out()
        os.mkdir(out)
        with open(os.path.join(out, "keep"), "w") as f:
            f.write("x")
        self.one_line_exit_2(self.compare(a, b, "--out", out), "not empty")
        self.assertEqual(os.listdir(out), ["keep"])
        r = self.compare(a, b, "--out", out, "--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.isfile(os.path.join(out, "keep")))
        run = self.copy_fixture("run_nan")
        self.one_line_exit_2(self.compare(a, run, "--out", run, "--force"), "one of the runs")
        # The default OUT is new, under results/compare/.
        old = compare.ROOT
        try:
            compare.ROOT = self.tmp
            runs = compare.load_runs([a, b])
            d = compare.default_out(runs)
        finally:
            compare.ROOT = old
        self.assertTrue(d.startswith(os.path.join(self.tmp, "results", "compare", "")), d)
        self.assertTrue(d.endswith("-devbox-vs-bigbox"), d)
        self.assertFalse(os.path.exists(d))


class BadInput(TmpCase):
    def test_not_a_run(self):
        r = self.compare(os.path.join(DATA, "run_baseline"), os.path.join(DATA, "topo"),
                         "--out", self.out())
        self.one_line_exit_2(r, "not a run directory")
        self.assertFalse(os.path.exists(self.out()))
        self.one_line_exit_2(self.compare(os.path.join(DATA, "run_baseline"),
                                          os.path.join(self.tmp, "missing")), "not a directory")

    def test_corrupt_json(self):
        run = self.copy_fixture("run_nan")
        with open(os.path.join(run, "baseline.json"), "w") as f:
            f.write('{"benchmarks": [')
        r = self.compare(os.path.join(DATA, "run_baseline"), run, "--out", self.out())
        self.one_line_exit_2(r, "baseline.json: not valid JSON")
        # Valid JSON that is not Google Benchmark's is left out and listed, not an error.
        with open(os.path.join(run, "baseline.json"), "w") as f:
            f.write('{"tools": []}')
        r = self.compare(os.path.join(DATA, "run_baseline"), run, "--out", self.out("o2"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("B `baseline.json` left out: ", self.read(self.out("o2"), "compare.md"))
        with open(os.path.join(run, "context.json"), "w") as f:
            f.write("[1, 2")
        self.one_line_exit_2(self.compare(os.path.join(DATA, "run_baseline"), run),
                             "context.json: not valid JSON")

    def test_usage(self):
        self.one_line_exit_2(self.compare(os.path.join(DATA, "run_baseline")),
                             "at least two run directories")
        r = self.compare("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--out", r.stdout)
        self.one_line_exit_2(self.compare("--bogus", "a", "b"), "unrecognized arguments")


# ------------------------------------------------------------------------------------------
class Report(TmpCase):
    def test_headline_table(self):
        run = gbjson.load_run(os.path.join(DATA, "run_bigbox"))
        rows = {r[0].split(" (`")[1].rstrip("`)"): r for r in report.headline_rows(run)}
        fork = rows["spawn/fork/rss_mib:0"]
        self.assertNotEqual(fork[1], "—")
        self.assertNotEqual(fork[2], "—")
        self.assertRegex(fork[3], r"^[0-9.]+x (faster|slower)( \[[0-9.]+, [0-9.]+\]"
                                  r"| \(no interval\))$")
        self.assertIn(fork[4], ("faster", "slower", "undecided"))
        if "no interval" in fork[3]:                    # too few repetitions: no verdict
            self.assertEqual(fork[4], "undecided")
        self.assertRegex(fork[5], r"^[0-9.]+x$")          # x baseline/fork_exit
        self.assertEqual(fork[7], "`baseline/fork_exit`")
        # CPython's Pool hangs after a SIGKILL: reported as a bounded hang, not a time.
        fail = rows["pool/failure/running"]
        self.assertEqual(fail[1], "—")
        self.assertRegex(fail[2], r"^hang \(> [0-9.]+ s\)$")
        # Worker count: only CPython has pool/cpu here: its largest count.
        self.assertIn("pool/cpu/workers:2/task_ms:20", rows)
        text = "\n".join(doc.render_md_items(report.section_headline(run)))
        self.assertIn("| primitive | mproc | CPython | ratio | verdict |", text)

    def test_headline_without_python(self):
        run = gbjson.load_run(os.path.join(DATA, "run_baseline"))
        text = "\n".join(doc.render_md_items(report.section_headline(run)))
        self.assertIn("No headline figures", text)
        run = gbjson.load_run(os.path.join(DATA, "run_bigbox"))
        del run.harnesses["python"]
        text = "\n".join(doc.render_md_items(report.section_headline(run)))
        self.assertIn("The CPython comparators did not run", text)

    def test_too_few_repetitions_said(self):
        """A figure with too few repetitions for a 95 % interval says so in the headline;
        with enough, it carries its interval."""
        run = gbjson.load_run(os.path.join(DATA, "run_python"))
        cells = [c for r in report.headline_rows(run) for c in r[1:3]]
        n = run.figures["python/spawn/fork/rss_mib:0"].value("p50_ns").n
        if n < 6:
            self.assertRegex(cells[1], r"\(%d reps?: no interval\)$" % n)
        else:
            self.assertRegex(cells[1], r"\[.*, .*\]$")

    def test_index_html(self):
        run_dir = self.copy_fixture("run_bigbox")
        # One drawing tool is enough here (test_three_runs_and_plots draws with both).
        only = ["--no-matplotlib"] if shutil.which("gnuplot") else []
        r = subprocess.run([PLOT_PY, os.path.join(ROOT, "plots", "plot.py"), run_dir] + only,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=taprun.scaled(300))
        self.assertEqual(r.returncode, 0, r.stdout)
        r = subprocess.run([PY, REPORT, run_dir], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True,
                           timeout=taprun.scaled(120))
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("index.html", r.stdout)
        p = check_html(self, os.path.join(run_dir, "index.html"))
        pngs = sorted(f for f in os.listdir(os.path.join(run_dir, "plots")) if f.endswith(".png"))
        for f in pngs:                      # every plot shown, and linked to its SVG
            self.assertIn("plots/" + f, p.srcs)
            self.assertIn("plots/" + f[:-4] + ".svg", p.hrefs)
        text = self.read(run_dir, "index.html")
        self.assertIn("Headline: mproc vs CPython</h2>", text)

    def test_index_html_incomplete_no_plots(self):
        run_dir = self.copy_fixture("run_incomplete")
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(report.main([run_dir]), 0)
        p = check_html(self, os.path.join(run_dir, "index.html"))
        self.assertEqual(p.srcs, [])
        self.assertIn("INCOMPLETE RUN", self.read(run_dir, "index.html"))

    def test_index_html_in_browser(self):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if not exe:
            self.skipTest("chromium not installed: the HTML is checked by html.parser only")
        run_dir = self.copy_fixture("run_baseline")
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(report.main([run_dir]), 0)
        r = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                            "file://" + os.path.join(run_dir, "index.html")],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           universal_newlines=True, timeout=taprun.scaled(120))
        self.assertEqual(r.returncode, 0)
        self.assertIn("<table>", r.stdout)


class Html(unittest.TestCase):
    """index.html and the Markdown are rendered from one document (mproc_results/doc.py)."""

    def sample(self):
        d = doc.Doc("T <x>")
        d.intro += ["para **b** `c<d>` [l](a/b.md)", "",
                    "[bad](javascript:alert(1))", "<script>x</script>"]
        s = d.section("One")
        s.body += doc.table(["a", "b|c"], [["1", "`x|y`"]])
        s.body += doc.bullets(["i1", ("i2", ["sub"])]) + doc.code(["<pre>&"])
        s.body += doc.details("s", ["inside"])
        s.plots.append(doc.Plot("p.mpl", "plots/p.mpl.png", "plots/p.mpl.svg"))
        s.section("Two", ["deeper"])
        return d

    def test_html_blocks(self):
        h = doc.render_html(self.sample())
        self.assertIn("<h1>T &lt;x&gt;</h1>", h)
        self.assertIn("<strong>b</strong> <code>c&lt;d&gt;</code> <a href=\"a/b.md\">l</a>", h)
        self.assertIn("<thead><tr><th>a</th><th>b|c</th></tr></thead>", h)
        self.assertIn("<td><code>x|y</code></td>", h)
        self.assertIn("<ul>\n<li>i1</li>\n<li>i2<ul><li>sub</li></ul></li>\n</ul>", h)
        self.assertIn("<pre><code>&lt;pre&gt;&amp;</code></pre>", h)
        self.assertIn("<details><summary>s</summary>\n<p>inside</p>\n</details>", h)
        self.assertIn('<a href="#">bad</a>', h)
        self.assertIn("&lt;script&gt;", h)
        self.assertNotIn("<script>", h)
        self.assertIn('<section id="two">\n<h3>Two</h3>', h)

    def test_plot_beside_its_section_links_to_svg(self):
        h = doc.render_html(self.sample())
        one = h[h.index('<section id="one">'):h.index('<section id="two">')]
        self.assertIn('<a href="plots/p.mpl.svg"><img src="plots/p.mpl.png" alt="p.mpl"></a>',
                      one)

    def test_markdown_from_the_same_document(self):
        m = doc.render_md(self.sample())
        self.assertTrue(m.startswith("# T <x>\n"), m)
        self.assertIn("| a | b|c |\n|---|---|\n| 1 | `x\\|y` |", m)
        self.assertIn("- i1\n- i2\n  - sub", m)
        self.assertIn("```\n<pre>&\n```", m)
        self.assertIn("## One", m)
        self.assertIn("### Two", m)
        self.assertLess(m.index("![p.mpl.png](plots/p.mpl.png)"), m.index("### Two"))

    def test_plots_attached_by_harness(self):
        tmp = tempfile.mkdtemp(prefix="mproc-compare-test.")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.mkdir(os.path.join(tmp, "plots"))
        for f in ("a.mpl.png", "a.mpl.svg", "b.gnuplot.svg"):
            open(os.path.join(tmp, "plots", f), "w").close()
        d = doc.Doc("t")
        d.section("h")
        self.assertEqual(report.attach_plots(d, tmp, {"a": "h"}), 2)
        self.assertEqual([p.stem for p in d.sections[0].plots], ["a.mpl"])
        self.assertEqual(d.sections[-1].title, "Other plots")
        path = os.path.join(tmp, "index.html")
        with open(path, "w", encoding="utf-8") as f:
            f.write(doc.render_html(d))
        p = check_html(self, path)
        self.assertEqual(p.srcs, ["plots/a.mpl.png"])
        self.assertIn("plots/a.mpl.svg", p.hrefs)
        self.assertIn("plots/b.gnuplot.svg", p.hrefs)


class Plots(unittest.TestCase):
    def test_python_only_run_has_plots(self):
        """A run of the CPython comparators alone still gets its plots (python: series)."""
        run = gbjson.load_run(os.path.join(DATA, "run_python"))
        tmp = tempfile.mkdtemp(prefix="mproc-compare-test.")
        self.addCleanup(shutil.rmtree, tmp, True)
        done = {spec["id"]: (t, p) for spec, t, p in tsv.write_run(run, tmp)}
        t, p = done["spawn_rss"]
        self.assertIsNotNone(p)
        self.assertEqual(t.series, ["python:fork"])
        self.assertIsNone(done["baseline_latency"][1])
        self.assertEqual(done["pool_cpu_speedup"][0].series, ["python:cpu"])

    def test_pick_largest_task_size(self):
        """pool_cpu_speedup keeps, per series, only the longest tasks the run has."""
        def e(name, sp):
            return {"name": name, "run_name": name, "run_type": "iteration", "real_time": 1.0,
                    "time_unit": "ns", "speedup": sp}
        doc = {"benchmarks": [e("pool/cpu/workers:1/task_ms:1", 1.0),
                              e("pool/cpu/workers:2/task_ms:1", 1.5),
                              e("pool/cpu/workers:4/task_ms:1", 1.7),
                              e("pool/cpu/workers:1/task_ms:20", 1.0),
                              e("pool/cpu/workers:2/task_ms:20", 1.9),
                              e("python/pool/cpu/workers:1/task_ms:1", 1.0),
                              e("python/pool/cpu/workers:4/task_ms:1", 1.2)]}
        run = gbjson.Run(self.id())
        run.harnesses["pool"] = gbjson.summarize(doc, "pool")
        t = tsv.build_table(run, [s for s in registry.PLOTS if s["id"] == "pool_cpu_speedup"][0])
        self.assertEqual(t.groups, ["1", "2", "4"])
        self.assertEqual(t.cell("2", "cpu")[0], 1.9)
        self.assertTrue(math.isnan(t.cell("4", "cpu")[0]))       # only at 1 ms: left out
        self.assertEqual(t.cell("4", "python:cpu")[0], 1.2)

    def test_c_and_python_on_the_same_axes(self):
        """mproc's series first, CPython's twins after them, in the twin's colour."""
        run = gbjson.load_run(os.path.join(DATA, "run_bigbox"))
        t = tsv.build_table(run, [s for s in registry.PLOTS if s["id"] == "spawn_rss"][0])
        self.assertEqual(t.series, ["fork", "spawn", "python:fork"])
        self.assertEqual(registry.color("python:fork"), registry.color("fork"))
        self.assertEqual(t.groups, ["0"])


# ------------------------------------------------------------------------------------------
def write_synthetic(path, real_a, p50, noise=None):
    """A run with one harness (latency.json), 9 interleaved repetitions of one name whose
    real_time and p50_ns are given (lists), and noise.json when `noise` is a verdict."""
    os.makedirs(path)
    with open(os.path.join(path, "context.json"), "w") as f:
        json.dump({"schema": "mproc-run/1", "host": os.path.basename(path), "profile": "full",
                   "complete": True, "status": "ok"}, f)
    name = "latency/x/placement:same_core/manual_time"
    bm = [{"name": name, "run_name": name, "run_type": "iteration", "repetitions": 9,
           "repetition_index": i, "threads": 1, "iterations": 1000, "real_time": rt,
           "cpu_time": rt / 2, "time_unit": "ns", "p50_ns": p}
          for i, (rt, p) in enumerate(zip(real_a, p50))]
    for agg, fn in (("mean", lambda v: sum(v) / len(v)), ("median", lambda v: sorted(v)[4])):
        bm.append({"name": name + "_" + agg, "run_name": name, "run_type": "aggregate",
                   "repetitions": 9, "threads": 1, "aggregate_name": agg,
                   "aggregate_unit": "time", "iterations": 9, "real_time": fn(real_a),
                   "cpu_time": fn(real_a) / 2, "time_unit": "ns", "p50_ns": fn(p50)})
    with open(os.path.join(path, "latency.json"), "w") as f:
        json.dump({"context": {"mproc_random_interleaving": "true"}, "benchmarks": bm}, f)
    if noise is not None:
        with open(os.path.join(path, "noise.json"), "w") as f:
            json.dump({"schema": "mproc-noise/1", "usable_cpus": 2, "verdict": noise}, f)


WIGGLE = [1.00, 1.02, 0.98, 1.01, 0.99, 1.03, 0.97, 1.00, 1.02]


class Verdicts(TmpCase):
    """compare.md's intervals and verdicts, the busy-machine refusal, and agreement in
    direction with Google Benchmark's compare.py (issue 17)."""

    def pair(self, b_scale, noise_b=None, p50_b_scale=None):
        a, b = os.path.join(self.tmp, "a"), os.path.join(self.tmp, "b")
        write_synthetic(a, [1000 * w for w in WIGGLE], [900 * w for w in WIGGLE])
        # p50_ns moves the other way on purpose: the tools must both read real_time.
        write_synthetic(b, [1000 * b_scale * w for w in WIGGLE],
                        [900 * (p50_b_scale or b_scale) * w for w in reversed(WIGGLE)],
                        noise=noise_b)
        out = self.out()
        r = self.compare(a, b, "--out", out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return a, b, self.tsv_rows(out)["latency/x/placement:same_core"], \
            self.read(out, "compare.md")

    def test_known_difference_has_interval_and_verdict(self):
        _, _, row, md = self.pair(2.0, p50_b_scale=0.5)
        self.assertEqual(row["field"], "real_time")
        self.assertEqual(row["verdict_B"], "slower")
        self.assertLess(float(row["lo_B"]), 2.0)
        self.assertGreater(float(row["hi_B"]), 2.0)
        self.assertLess(float(row["hi_B"]), 2.2)
        self.assertIn("median over repetitions (p50)", md)
        self.assertIn("**unpaired**", md)
        self.assertRegex(md, r"\| 2x \[[0-9.]+, [0-9.]+\] slower \|")

    def test_same_is_undecided(self):
        _, _, row, _ = self.pair(1.0)
        self.assertEqual(row["verdict_B"], "undecided")

    def test_busy_run_not_called(self):
        busy = {"busy": True, "reasons": ["load"], "line": "busy: load 3.5 on 2 usable CPUs, "
                "12 % steal — figures below are provisional"}
        _, _, row, md = self.pair(2.0, noise_b=busy)
        self.assertEqual(row["verdict_B"], "not called (B busy)")
        self.assertIn("**No difference is called**", md)
        self.assertIn("busy: load 3.5 on 2 usable CPUs", md)
        self.assertIn("machine state unknown (no noise.json)", md)     # run A: no file

    def test_agrees_with_gbench_compare(self):
        if not os.path.isfile(compare.GBCOMPARE):
            self.skipTest("%s not installed (Debian libbenchmark-tools)" % compare.GBCOMPARE)
        if not compare.scipy_ok(PLOT_PY):
            self.skipTest("python3-scipy not installed")
        for scale, want in ((2.0, "slower"), (0.5, "faster")):
            shutil.rmtree(self.tmp)
            os.makedirs(self.tmp)
            a, b, row, _ = self.pair(scale, p50_b_scale=1 / scale)
            r = subprocess.run([PLOT_PY, compare.GBCOMPARE, "-a", "--no-color", "benchmarks",
                                os.path.join(a, "latency.json"), os.path.join(b, "latency.json")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout)
            diffs = {}
            for line in r.stdout.splitlines():
                t = line.split()
                if len(t) >= 2 and t[0].startswith("latency/x/") and \
                        t[0].endswith(("_mean", "_median")):
                    diffs[t[0].rsplit("_", 1)[1]] = float(t[1])
            self.assertEqual(set(diffs), {"mean", "median"}, r.stdout)
            gb = "slower" if diffs["median"] > 0 else "faster"
            self.assertEqual(gb, "slower" if diffs["mean"] > 0 else "faster")
            self.assertEqual((row["verdict_B"], gb), (want, want), r.stdout)


def main():
    return taprun.main(sys.modules[__name__], "compare", sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
