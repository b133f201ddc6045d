#!/usr/bin/env python3
"""compare - put two or more runs side by side (two machines, or before/after a change).

    /usr/bin/python3 plots/compare.py RUN_A RUN_B [RUN_C ...] [--out DIR] [--force]
    make compare A=RUN_A B=RUN_B [C=RUN_C] [OUT=DIR]

Writes into OUT (default: a new results/compare/<UTC stamp>-<hostA>-vs-<hostB>/):
  compare.md          the runs, a table of ratios per benchmark name (each run against the
                      first, A), per-harness geometric means, the names only some runs have,
                      the benchmarks a run skipped, and the U-test outputs;
  compare.tsv         the same table, one row per name, for other tools;
  plots/<id>.{gnuplot,mpl}.{png,svg}
                      every plot of plots/registry.py with data in some run, one panel per
                      run, same y range, same colours per method as the single-run plots;
  gbcompare/<harness>.A-vs-B.txt
                      Google Benchmark's tools/compare.py (Debian: libbenchmark-tools, which
                      needs python3-scipy) on each harness file that both runs have, for its
                      Mann-Whitney U-test; one line saying so when it is not installed;
  index.html          compare.md and every plot, static (open it in a browser).

The figure compared per name is real_time, the time of one operation (what Google
Benchmark's compare.py compares, so the two tools read a change the same way), else the first
of p50_ns, a rate counter (msgs/bytes/tasks/updates/ops per second, speedup), ns_per_task
that every run having the name has. The statistic is the median over repetitions (p50, as
compare.py's `_median` row; not the mean). Every name of A that another run also has gets a
row; a ratio is X/A of that figure with a 95 % interval (stats.py: percentile bootstrap
of the ratio of medians, unpaired: two runs are not interleaved) and a verdict: faster,
slower (the interval lies wholly on one side of 1, read in the figure's direction) or
undecided. A figure with fewer than 6 repetitions has no interval ("too few repetitions"),
never a verdict. No difference is called when either run's noise.json says the machine was
busy (the reason is printed); a run without noise.json is "machine state unknown". A figure
whose CV over its repetitions exceeds 5 % is marked unstable.

Exit: 0 written; 2 bad input (not a run, corrupt JSON, non-empty OUT without --force), one
line; 1 a drawing or a write failed (the rest is still written). Stdlib + matplotlib
(optional). Python >= 3.8.
"""

import math
import os
import re
import shutil
import subprocess
import sys
import time

import plot          # plots/plot.py: the drawing of one plot (beside this package)
import registry      # plots/registry.py: which plots exist

from . import cli
from . import doc as _doc
from . import fields
from . import files
from . import gbjson
from . import paths
from . import stats
from . import report as _report
from . import tsv
from .doc import bullets, table

ROOT = paths.ROOT
PROG = "compare"

GBCOMPARE = "/usr/share/benchmark/compare.py"
GBCOMPARE_TIMEOUT_S = 120
# The fields tried, in this order, for the compared figure (direction and unit: fields.py).
FIELDS = ["real_time", "p50_ns", "msgs_per_second", "bytes_per_second", "tasks_per_second",
          "updates_per_second", "ops_per_second", "speedup", "ns_per_task"]
STATISTIC = "median over repetitions (p50)"
LEVEL = 0.95


class BadInput(Exception):
    """One line for the user; exit 2."""


# ------------------------------------------------------------------------------------------
# formatting

def fmt_ratio(r, higher_better):
    """'1.52x (slower)' for a ratio X/A of a figure; '—' when unknown."""
    if r is None or not math.isfinite(r) or r <= 0:
        return "—"
    better = (r > 1) == higher_better
    if abs(r - 1) < 0.02:
        word = "same"
    else:
        word = "faster" if better else "slower"
    return "%.3gx (%s)" % (r, word)


def fmt_ratio_ci(r, ci, verdict):
    """'0.5x [0.48, 0.52] faster'; '1.01x undecided'; '2x (too few repetitions)'."""
    if r is None or not math.isfinite(r) or r <= 0:
        return "—"
    txt = "%.3gx" % r
    if ci is not None:
        txt += " [%.3g, %.3g]" % ci
    if verdict in ("faster", "slower", "undecided"):
        return txt + " " + verdict
    return txt + " (%s)" % (verdict or "no verdict")


# ------------------------------------------------------------------------------------------
# runs

def noise_verdict(run_dir):
    """The "verdict" object of <run>/noise.json (noise_schema: {"busy", "reasons", "line"}),
    or None when the file is absent (older runs) or unreadable: machine state unknown."""
    doc = gbjson.read_side(run_dir, "noise")
    v = doc.get("verdict") if doc else None
    return v if isinstance(v, dict) and isinstance(v.get("busy"), bool) else None


class RunInfo:
    def __init__(self, label, run):
        self.label = label
        self.run = run
        self.figures = run.figures
        c = run.context
        self.host = c.get("host") or "?"
        self.stamp = os.path.basename(os.path.normpath(os.path.realpath(run.path)))
        self.noise = noise_verdict(run.path)

    @property
    def busy(self):
        return bool(self.noise and self.noise.get("busy"))

    @property
    def noise_line(self):
        if self.noise is None:
            return "machine state unknown (no noise.json)"
        return str(self.noise.get("line") or ("busy" if self.busy else "quiet"))

    @property
    def title(self):
        return "%s: %s %s" % (self.label, self.host, self.stamp)


def load_runs(dirs):
    """[RunInfo] labelled A, B, C...; BadInput for anything that is not a readable run."""
    runs = []
    for i, p in enumerate(dirs):
        try:
            run = gbjson.load_run(p)
        except gbjson.GBJsonError as e:
            raise BadInput(str(e)) from None
        # A file that is not JSON is an error; valid JSON of another kind (a later version's
        # own file, say) is left out and listed.
        for fn, msg in sorted(run.load_errors.items()):
            if "not Google Benchmark JSON" not in msg:
                raise BadInput(msg)
        runs.append(RunInfo(chr(ord("A") + i), run))
    return runs


def pick_field(figs):
    """The compared field: the first of FIELDS with a finite median in every figure."""
    for f in FIELDS:
        if all(fig.value(f) is not None and fig.value(f).n > 0 and math.isfinite(fig.median(f))
               for fig in figs):
            return f
    return None


def unstable(fig, field):
    s = fig.value(field)
    return s is not None and s.cv is not None and s.cv > fields.UNSTABLE_CV


class Row:
    def __init__(self, name, harness):
        self.name = name
        self.harness = harness
        self.field = None
        self.values = {}      # label -> median
        self.unstable = {}    # label -> bool
        self.ratios = {}      # label -> X/A
        self.ci = {}          # label -> (lo, hi) of its median, or None (too few repetitions)
        self.ratio_ci = {}    # label -> (lo, hi) of X/A, or None
        self.verdicts = {}    # label -> "faster" | "slower" | "undecided" | why not called


def build_rows(runs):
    """(rows, partial). rows: one per name that A and at least one other run have (the runs
    without it get no value and no ratio); partial: {name: [labels having it]} for the names
    that are not in every run."""
    order, where, harness = [], {}, {}
    for ri in runs:
        for name, fig in ri.figures.items():
            if name not in where:
                order.append(name)
                where[name] = []
                harness[name] = fig.harness
            where[name].append(ri.label)
    rows, partial = [], {}
    labels = [ri.label for ri in runs]
    a = runs[0].label
    for name in order:
        if where[name] != labels:
            partial[name] = where[name]
        if a not in where[name] or len(where[name]) < 2:
            continue
        have = [ri for ri in runs if ri.label in where[name]]
        row = Row(name, harness[name])
        row.field = pick_field([ri.figures[name] for ri in have])
        if row.field is not None:
            for ri in have:
                fig = ri.figures[name]
                row.values[ri.label] = fig.median(row.field)
                row.unstable[ri.label] = unstable(fig, row.field)
                row.ci[ri.label] = fig.value(row.field).ci(LEVEL)
            va = row.values[a]
            fa = runs[0].figures[name].value(row.field)
            for ri in have[1:]:
                v = row.values[ri.label]
                row.ratios[ri.label] = v / va if va and math.isfinite(va) and va > 0 \
                    else math.nan
                fx = ri.figures[name].value(row.field)
                row.ratio_ci[ri.label] = None
                if row.ci[a] is None or row.ci[ri.label] is None:
                    row.verdicts[ri.label] = "too few repetitions"
                    continue
                _, lo, hi = stats.ratio_ci(fx.values, fa.values, paired=False, level=LEVEL)
                if lo is not None:
                    row.ratio_ci[ri.label] = (lo, hi)
                busy = [r.label for r in (runs[0], ri) if r.busy]
                if busy:
                    row.verdicts[ri.label] = "not called (%s busy)" % " and ".join(busy)
                    continue
                v = stats.verdict(lo, hi, 1.0, fields.higher_is_better(row.field))
                row.verdicts[ri.label] = {"better": "faster", "worse": "slower"}.get(v, v)
        rows.append(row)
    return rows, partial


def geomean(xs):
    xs = [x for x in xs if x is not None and math.isfinite(x) and x > 0]
    if not xs:
        return None
    return math.exp(sum(math.log(x) for x in xs) / len(xs)), len(xs)


# ------------------------------------------------------------------------------------------
# outputs

def write_tsv(path, runs, rows):
    labels = [ri.label for ri in runs]
    head = ["name", "harness", "field", "better"] + labels + \
        ["%s/%s" % (l, labels[0]) for l in labels[1:]] + ["unstable_" + l for l in labels] + \
        [k % l for l in labels[1:] for k in ("lo_%s", "hi_%s", "verdict_%s")]
    lines = ["\t".join(head)]
    for r in rows:
        if r.field is None:
            continue

        def num(v):
            return "NaN" if v is None or not math.isfinite(v) else "%.6g" % v
        cells = [r.name, r.harness, r.field,
                 "higher" if fields.higher_is_better(r.field) else "lower"]
        cells += [num(r.values.get(l)) for l in labels]
        cells += [num(r.ratios.get(l)) for l in labels[1:]]
        cells += ["1" if r.unstable.get(l) else "0" for l in labels]
        for l in labels[1:]:
            ci = r.ratio_ci.get(l)
            cells += [num(ci[0]) if ci else "NaN", num(ci[1]) if ci else "NaN",
                      r.verdicts.get(l, "—")]
        lines.append("\t".join(cells))
    files.write_text(path, "\n".join(lines) + "\n")


def section_runs(runs):
    rows = []
    for ri in runs:
        c = ri.run.context
        b = c.get("budget") or {}
        status = c.get("status") or ("complete" if ri.run.complete else "incomplete")
        if not ri.run.complete:
            status = "**INCOMPLETE** (%s)" % status
        rows.append((ri.label, "`%s`" % ri.run.path, ri.host, c.get("cpu_model", "?"),
                     str(b.get("usable", "?")), c.get("profile", "?"),
                     c.get("started_utc", "?"), status, ri.noise_line,
                     ", ".join(ri.run.harnesses) or "none"))
    out = table(["run", "directory", "host", "CPU", "usable CPUs", "profile", "started (UTC)",
                    "status", "machine", "harness files"], rows)
    for ri in runs:
        if not ri.run.complete:
            out += ["", "Run %s is incomplete: names missing from it may simply not have run; "
                    "compare it as a whole with care." % ri.label]
    profiles = {ri.run.context.get("profile") for ri in runs}
    if len(profiles) > 1:
        out += ["", "The runs used different profiles (%s): repetitions and sizes differ."
                % ", ".join(sorted(str(p) for p in profiles))]
    return out


def section_summary(runs, rows):
    labels = [ri.label for ri in runs]
    if len(runs) < 2:
        return []
    per = {}
    for r in rows:
        if r.field is None:
            continue
        for l in labels[1:]:
            x = r.ratios.get(l)
            if x is None or not math.isfinite(x) or x <= 0:
                continue
            # Speed of X relative to A: > 1 means X is faster, whatever the field's direction.
            sp = x if fields.higher_is_better(r.field) else 1.0 / x
            per.setdefault(r.harness, {}).setdefault(l, []).append(sp)
    if not per:
        return ["No benchmark name of A has a figure in another run."]
    out = ["Geometric mean, per harness file, of each run's speed relative to A over the names "
           "both have (> 1: faster than A). A summary only: read the table for each figure.", ""]
    trs = []
    for h in sorted(per):
        cells = [h]
        for l in labels[1:]:
            g = geomean(per[h].get(l, []))
            cells.append("%.3gx (%d names)" % g if g else "—")
        trs.append(cells)
    return out + table(["harness"] + ["%s vs A" % l for l in labels[1:]], trs)


def section_table(runs, rows):
    labels = [ri.label for ri in runs]
    out = ["Every name of A that another run also has. Statistic: the %s of the compared "
           "figure (real_time, the time of one operation, where every run has it: the figure "
           "Google Benchmark's compare.py compares). Each ratio X/A has a %d %% interval: a "
           "percentile bootstrap of the ratio of medians, **unpaired** (the two runs were not "
           "interleaved in time, so slow drifts between them are not cancelled), and a "
           "verdict: faster or slower when the interval lies wholly on one side of 1, else "
           "undecided; a figure with fewer than %d repetitions gets none (too few "
           "repetitions), whatever its CV. ⚠ marks a figure whose CV exceeds %d %% (unstable)."
           % (STATISTIC, LEVEL * 100, stats.min_repetitions(LEVEL), fields.UNSTABLE_CV * 100), ""]
    busy = [ri for ri in runs if ri.busy]
    if busy:
        out += ["**No difference is called**: the machine was busy during %s (%s)." % (
            " and ".join("run %s" % ri.label for ri in busy),
            "; ".join("%s: %s" % (ri.label, ri.noise_line) for ri in busy)), ""]
    by_h = {}
    for r in rows:
        by_h.setdefault(r.harness, []).append(r)
    subs = []
    for h, hrows in by_h.items():
        trs = []
        for r in hrows:
            if r.field is None:
                trs.append(["`%s`" % r.name, "no common figure"] + ["—"] * (2 * len(labels) - 1))
                continue
            cells = ["`%s`" % r.name, r.field]
            for l in labels:
                cells.append(fields.fmt_value(r.field, r.values.get(l)) +
                             (" ⚠" if r.unstable.get(l) else ""))
            for l in labels[1:]:
                cells.append(fmt_ratio_ci(r.ratios.get(l), r.ratio_ci.get(l),
                                          r.verdicts.get(l)))
            trs.append(cells)
        subs.append((h, table(["benchmark", "figure"] + labels +
                              ["%s/%s" % (l, labels[0]) for l in labels[1:]], trs) + [""]))
    return out, subs


def section_partial(runs, partial):
    if not partial:
        return ["Every benchmark name is in every run."]
    labels = [ri.label for ri in runs]
    out = ["%d names are in some runs only (a harness not run, a benchmark added or removed, "
           "or one skipped on that machine):" % len(partial), ""]
    trs = [["`%s`" % n] + ["yes" if l in have else "—" for l in labels]
           for n, have in partial.items()]
    return out + table(["benchmark"] + labels, trs)


def section_skipped(runs):
    out = []
    for ri in runs:
        for fn, msg in sorted(ri.run.load_errors.items()):
            out.append("%s `%s` left out: %s" % (ri.label, fn, msg))
    for ri in runs:
        for n, why in ri.run.skipped.items():
            out.append("%s `%s`: %s" % (ri.label, n, why))
    return bullets(out)


# ------------------------------------------------------------------------------------------
# Google Benchmark's compare.py

def scipy_ok(python):
    try:
        r = subprocess.run([python, "-c", "import scipy.stats"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def run_gbcompare(runs, out_dir):
    """(body, number of outputs); writes gbcompare/<harness>.A-vs-X.txt for each shared
    harness file."""
    tool = os.environ.get("MPROC_GBCOMPARE", GBCOMPARE)
    python = sys.executable or "python3"
    if not os.path.isfile(tool):
        return ["Google Benchmark's compare.py not installed (`%s`, Debian package "
                "`libbenchmark-tools`) — U-test skipped." % tool], 0
    if not scipy_ok(python):
        return ["Google Benchmark's compare.py needs scipy (Debian package `python3-scipy`), "
                "not installed for `%s` — U-test skipped." % python], 0
    a = runs[0]
    out = ["Google Benchmark's `compare.py` (`%s`), on each harness file that both runs "
           "have: time and CPU as relative change (new-old)/old, and the Mann-Whitney U-test "
           "p-value (meaningful from 9 repetitions: `PROFILE=full`)." % tool, ""]
    items = []
    gdir = os.path.join(out_dir, "gbcompare")
    os.makedirs(gdir, exist_ok=True)
    for x in runs[1:]:
        for h in a.run.harnesses:
            if h not in x.run.harnesses:
                continue
            fa, fx = a.run.harnesses[h].path, x.run.harnesses[h].path
            name = "%s.%s-vs-%s.txt" % (h, a.label, x.label)
            # -a (aggregates only) where both have repetitions; with one repetition there are
            # no aggregates and -a would print nothing but the overall geomean.
            reps = min(max([f.repetitions for f in ri.run.harnesses[h].figures.values()] or [0])
                       for ri in (a, x))
            argv = [python, tool, "--no-color"] + (["-a"] if reps >= 2 else []) + \
                ["benchmarks", fa, fx]
            try:
                r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   universal_newlines=True, timeout=GBCOMPARE_TIMEOUT_S)
                text, status = r.stdout, ("ok" if r.returncode == 0 else
                                          "failed (exit %d)" % r.returncode)
            except subprocess.TimeoutExpired as e:
                text = (e.stdout or "") if isinstance(e.stdout, str) else ""
                status = "timed out after %d s" % GBCOMPARE_TIMEOUT_S
            except OSError as e:
                text, status = "", "could not run: %s" % e
            files.write_text(os.path.join(gdir, name), "$ %s\n%s" % (" ".join(argv), text))
            last = ""
            if status != "ok":
                lines = [l for l in text.strip().splitlines() if l.strip()]
                last = ": " + lines[-1][:160] if lines else ""
            items.append("`%s` %s vs %s: [%s](gbcompare/%s) — %s%s"
                         % (h, a.label, x.label, name, name, status, last))
    return out + bullets(items or ["no harness file is in both runs."]), len(items)


# ------------------------------------------------------------------------------------------
# plots

def union_tables(runs, spec):
    """[tsv.Table per run] with the same groups and series in each (missing cells NaN)."""
    tables = [tsv.build_table(ri.run, spec) for ri in runs]
    groups, series = [], []
    for t in tables:
        groups += [g for g in t.groups if g not in groups]
        series += [s for s in t.series if s not in series]
    if spec["kind"] == "lines":
        groups.sort(key=float)
    for t in tables:
        t.groups, t.series = list(groups), list(series)
    return tables


def y_range(tables, logy):
    vals = []
    for t in tables:
        for v, hi in t.cells.values():
            vals += [x for x in (v, hi) if math.isfinite(x) and (x > 0 or not logy)]
    if not vals:
        return None
    lo, hi = min(vals), max(vals)
    if logy:
        return lo / 1.6, hi * 1.6
    span = (hi - lo) or abs(hi) or 1.0
    return min(0.0, lo - 0.05 * span), hi + 0.08 * span


def draw_gnuplot(spec, runs, tables, tsv_paths, outbase, cap, yr):
    series = tables[0].series
    groups = tables[0].groups
    if spec["kind"] == "lines":
        xs = [float(g) for g in groups]
        lo, hi = min(xs), max(xs)
        xr = (lo, hi) if hi > lo else ((lo / 2, hi * 2) if spec.get("logx") else (lo - 1, hi + 1))
    else:
        xr = (0, len(groups))
    gp = plot._gp_str
    expr = "; ".join([
        "datafiles=%s" % gp(" ".join(tsv_paths)),
        "kind=%s" % gp(spec["kind"]),
        "outbase=%s" % gp(outbase),
        "nseries=%d" % len(series),
        "colors=%s" % gp(" ".join(registry.color(s) for s in series)),
        "titles=%s" % gp(" ".join(registry.label(s).replace(" ", "_") for s in series)),
        "pyser=%s" % gp(" ".join("1" if s.startswith("python:") else "0" for s in series)),
        "ptitle=%s" % gp(spec.get("title", spec["id"])),
        "ytitle=%s" % gp(spec.get("ylabel", "")),
        "xtitle=%s" % gp(spec.get("xlabel", "")),
        "caption=%s" % gp(cap),
        "logx=%d" % (1 if spec.get("logx") else 0),
        "logy=%d" % (1 if spec.get("logy") else 0),
        "ymin=%.6g" % yr[0], "ymax=%.6g" % yr[1],
        "xmin=%.6g" % xr[0], "xmax=%.6g" % xr[1],
        "nodata=%s" % gp(" ".join("0" if t.cells else "1" for t in tables)),
    ] + ["ptitle%d=%s" % (i, gp(ri.title)) for i, ri in enumerate(runs, 1)]
        + plot.compare_gnuplot_vars(spec, tables, [plot.run_budget(ri.run) for ri in runs],
                                    [ri.title for ri in runs]))
    return plot.run_gnuplot(expr, os.path.join(paths.PLOTS, "compare.gp"), outbase)


def draw_matplotlib(plt, spec, runs, tables, outbase, cap, yr):
    n = len(runs)
    fig, axes = plt.subplots(1, n, figsize=(4.8 * n + 1.2, 6.0), dpi=100, sharey=True,
                             squeeze=False)
    for ax, ri, t in zip(axes[0], runs, tables):
        plot.draw_on_ax(ax, spec, t, plot.run_budget(ri.run), legend=ri is runs[-1])
        ax.set_title(ri.title, fontsize=9)
        ax.set_ylim(*yr)
        if not t.cells:
            ax.text(0.5, 0.5, "no data in this run", transform=ax.transAxes, ha="center")
    axes[0][0].set_ylabel(spec.get("ylabel", ""))
    fig.suptitle(spec.get("title", spec["id"]))
    ns = plot.compare_notes(spec, tables, [plot.run_budget(ri.run) for ri in runs],
                            [ri.title for ri in runs])
    fig.tight_layout(rect=(0, plot.fig_footer(fig, cap, ns), 1, 1))
    return plot.save_figure(plt, fig, outbase)


def draw_plots(runs, out_dir, want_gp, want_mpl, log):
    """Draw every registry plot with data in some run. Returns (markdown lines, failures)."""
    harnesses = set()
    for ri in runs:
        harnesses |= set(ri.run.harnesses)
    have_gp = want_gp and shutil.which("gnuplot") is not None
    plt = plot.load_matplotlib() if want_mpl else None
    lines = []
    if not have_gp:
        lines.append("gnuplot %s — skipped." % ("not wanted" if not want_gp else "not installed"))
    if plt is None:
        lines.append("matplotlib %s — skipped." % ("not wanted" if not want_mpl
                                                  else "not installed"))
    for l in lines:
        log("compare: plots: " + l)
    failed = 0
    cap = " | ".join(ri.title + ("" if ri.run.complete else " (INCOMPLETE)") for ri in runs)
    pdir = os.path.join(out_dir, "plots")
    for spec in registry.plots_for(harnesses):
        tables = union_tables(runs, spec)
        yr = y_range(tables, spec.get("logy"))
        if yr is None:
            continue
        os.makedirs(os.path.join(pdir, "data"), exist_ok=True)
        tsv_paths = []
        for ri, t in zip(runs, tables):
            p = os.path.join(pdir, "data", "%s.%s.tsv" % (spec["id"], ri.label))
            tsv.write_tsv(t, p)
            tsv_paths.append(p)
        base = os.path.join(pdir, spec["id"])
        for tool, ok in (("gnuplot", have_gp), ("mpl", plt is not None)):
            if not ok:
                continue
            try:
                if tool == "gnuplot":
                    drawn = draw_gnuplot(spec, runs, tables, tsv_paths, base + ".gnuplot", cap, yr)
                else:
                    drawn = draw_matplotlib(plt, spec, runs, tables, base + ".mpl", cap, yr)
            except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
                for ext in ("png", "svg"):      # no half-drawn plot left behind
                    try:
                        os.unlink("%s.%s.%s" % (base, tool, ext))
                    except OSError:
                        pass
                failed += 1
                msg = "%s (%s) failed: %s" % (spec["id"], tool, e)
                lines.append(msg)
                print("compare: plots: " + msg, file=sys.stderr)
                continue
            log("compare: plots: %s" % " ".join(os.path.relpath(f, out_dir) for f in drawn))
    return lines, failed


# ------------------------------------------------------------------------------------------

def default_out(runs):
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    hosts = "-vs-".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", ri.host) for ri in runs)
    base = os.path.join(ROOT, "results", "compare", "%s-%s" % (stamp, hosts[:80]))
    out, i = base, 1
    while os.path.exists(out):
        i += 1
        out = "%s.%d" % (base, i)
    return out


def prepare_out(out, runs, force):
    real = os.path.realpath(out)
    for ri in runs:
        if os.path.realpath(ri.run.path) == real:
            raise BadInput("%s: OUT is one of the runs compared" % out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise BadInput("%s: OUT exists and is not a directory" % out)
    if os.path.isdir(out) and os.listdir(out) and not force:
        raise BadInput("%s: OUT is not empty (use --force to write into it)" % out)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise BadInput("%s: cannot create OUT: %s" % (out, e.strerror)) from None


def build_doc(runs, rows, partial, plot_lines, gb_lines, out_dir):
    """The comparison's document: compare.md and index.html are both rendered from it; each
    plot sits in the section of its harness (under "Ratios per benchmark")."""
    labels = ", ".join(ri.label for ri in runs)
    d = _doc.Doc("mproc comparison: %s" % " vs ".join("%s (%s)" % (ri.label, ri.host)
                                                      for ri in runs))
    d.intro += ["Runs %s; every ratio is the run's figure over A's." % labels, ""]
    d.section("Runs", section_runs(runs) + [""])
    d.section("Summary", section_summary(runs, rows) + [""])
    intro, subs = section_table(runs, rows)
    ratios = d.section("Ratios per benchmark", intro)
    for h, body in subs:
        ratios.section(h, body)
    d.section("Names in some runs only", section_partial(runs, partial) + [""])
    sk = section_skipped(runs)
    if sk:
        d.section("Skipped benchmarks and files left out", sk + [""])
    d.section("Google Benchmark U-test", gb_lines + [""])
    harnesses = set(h for ri in runs for h in ri.run.harnesses)
    owners = {}
    for spec in registry.PLOTS:
        hs = [spec["harness"]] if isinstance(spec["harness"], str) else list(spec["harness"])
        owners[spec["id"]] = next((h for h in hs if h in harnesses), None)
    n = _report.attach_plots(d, out_dir, owners)
    if plot_lines or not n:
        d.section("Plots", bullets(plot_lines) + ([""] if n else
                                                   ["", "No plot has data in these runs.", ""]))
    return d


def main(argv=None):
    ap = cli.Parser(PROG, "plots/compare.py",
        description="Compare two or more mproc runs: ratios per benchmark name, side-by-side "
                    "plots, Google Benchmark's U-test where installed, index.html.")
    ap.add_argument("runs", nargs="+", metavar="RUN", help="run directories; the first is A, "
                    "the reference of every ratio")
    ap.add_argument("--out", help="output directory (default: a new results/compare/<stamp>-…)")
    ap.add_argument("--force", action="store_true", help="write into a non-empty --out")
    ap.add_argument("--no-gnuplot", action="store_true", help="do not draw with gnuplot")
    ap.add_argument("--no-matplotlib", action="store_true", help="do not draw with matplotlib")
    ap.add_argument("--no-gbcompare", action="store_true",
                    help="do not run Google Benchmark's compare.py")
    a = ap.parse_args(argv)
    if len(a.runs) < 2:
        return cli.fail(PROG, "need at least two run directories (got %d): plots/compare.py "
                        "RUN_A RUN_B" % len(a.runs))
    if len(a.runs) > 26:
        return cli.fail(PROG, "at most 26 runs (got %d): compare fewer at a time"
                        % len(a.runs))
    try:
        runs = load_runs(a.runs)
        out = a.out or default_out(runs)
        prepare_out(out, runs, a.force)
    except BadInput as e:
        print("compare: %s" % e, file=sys.stderr)
        return 2
    rc = 0
    rows, partial = build_rows(runs)
    try:
        write_tsv(os.path.join(out, "compare.tsv"), runs, rows)
        if a.no_gbcompare:
            gb_lines, n_gb = ["Not wanted (--no-gbcompare)."], 0
        else:
            gb_lines, n_gb = run_gbcompare(runs, out)
        print("compare: U-test: %s" % ("%d outputs in gbcompare/" % n_gb if n_gb else
                                        gb_lines[0]))
        plot_lines, failed = draw_plots(runs, out, not a.no_gnuplot, not a.no_matplotlib, print)
        if failed:
            rc = 1
        d = build_doc(runs, rows, partial, plot_lines, gb_lines, out)
        path = files.write_text(os.path.join(out, "compare.md"), _doc.render_md(d) + "\n")
        idx = files.write_text(os.path.join(out, "index.html"), _doc.render_html(
            d, note="The same as [compare.md](compare.md); each plot links to its SVG."))
    except OSError as e:
        print("compare: cannot write %s: %s" % (out, e), file=sys.stderr)
        return 1
    print("compare: %d names compared with A, %d not in every run"
          % (len([r for r in rows if r.field]), len(partial)))
    print("compare: %s" % path)
    print("compare: %s" % idx)
    return rc


if __name__ == "__main__":
    sys.exit(main())
