#!/usr/bin/env python3
"""plot - draw one run: every plot of plots/registry.py whose harness is in the run, with
gnuplot (plots/<kind>.gp over the TSV from tsv.py) and with matplotlib, into RUN/plots/ as
<id>.gnuplot.png, <id>.gnuplot.svg, <id>.mpl.png, <id>.mpl.svg.

    /usr/bin/python3 plots/plot.py RUN_DIR [--no-gnuplot] [--no-matplotlib]

A missing tool is one line ("plots: gnuplot not installed — skipped"), never an error: exit 0.
Not a run directory, or a corrupt context.json: one line, exit 2. A drawing that fails: one
line naming it, exit 1 (the other drawings are still made).
Stdlib + matplotlib (optional). Python >= 3.8.
"""

import math
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
import registry  # noqa: E402  (beside this script, as mproc_results is)
from mproc_results import cli, gbjson, tsv  # noqa: E402


def caption(run):
    """Machine and budget, for the bottom of every plot."""
    c = run.context
    b = c.get("budget") or {}
    parts = [c.get("host") or "?", c.get("cpu_model") or ""]
    if b.get("usable") is not None:
        parts.append("budget %s CPUs (%s)" % (b.get("usable"), b.get("bound_by", "?")))
    parts.append("profile %s" % c.get("profile", "?"))
    if c.get("started_utc"):
        parts.append(c["started_utc"])
    if not c.get("complete", False):
        parts.append("INCOMPLETE RUN")
    return " | ".join(p for p in parts if p)


def run_budget(run):
    """The run's usable CPUs (mproc-topo's budget), or None when unknown."""
    b = (run.context.get("budget") or {}).get("usable")
    return b if isinstance(b, int) and not isinstance(b, bool) and b > 0 else None


def _gp_str(s):
    """A gnuplot single-quoted string literal."""
    return "'" + str(s).replace("'", "''") + "'"


def draw_gnuplot(spec, table, tsv_path, outbase, cap, budget=None):
    script = os.path.join(HERE, spec["kind"] + ".gp")
    expr = "; ".join([
        "datafile=%s" % _gp_str(tsv_path),
        "outbase=%s" % _gp_str(outbase),
        "ptitle=%s" % _gp_str(spec.get("title", spec["id"])),
        "ytitle=%s" % _gp_str(spec.get("ylabel", "")),
        "caption=%s" % _gp_str(cap),
        "logy=%d" % (1 if spec.get("logy") else 0),
        "logx=%d" % (1 if spec.get("logx") else 0),
        "xtitle=%s" % _gp_str(spec.get("xlabel", "")),
    ] + gnuplot_vars(spec, table, budget))
    return run_gnuplot(expr, script, outbase)


def run_gnuplot(expr, script, outbase):
    """gnuplot -e EXPR SCRIPT, which writes OUTBASE.png and OUTBASE.svg; returns their paths.
    Raises RuntimeError with gnuplot's last line, or when a file is missing (the single-run
    plots here and compare.py's side-by-side ones both draw through it)."""
    r = subprocess.run(["gnuplot", "-e", expr, script], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    if r.returncode != 0:
        last = (r.stdout.strip().splitlines() or ["exit %d" % r.returncode])[-1]
        raise RuntimeError("gnuplot: %s" % last)
    for ext in ("png", "svg"):
        if not os.path.isfile(outbase + "." + ext):
            raise RuntimeError("gnuplot wrote no %s" % ext)
    return [outbase + ".png", outbase + ".svg"]


# ------------------------------------------------------------------------------------------
# What both tools draw alike: computed here once, handed to gnuplot as variables and to
# matplotlib as calls, so the two renderings of a figure say the same thing.

# One marker per series (by position), so lines that lie on each other stay distinguishable:
# gnuplot point types (pngcairo/svg) and their matplotlib twins, filled first, then open.
GP_POINTS = [7, 5, 9, 11, 13, 15, 6, 4, 8, 10, 12, 14]
MPL_MARKERS = [("o", "full"), ("s", "full"), ("^", "full"), ("v", "full"), ("D", "full"),
               ("p", "full"), ("o", "none"), ("s", "none"), ("^", "none"), ("v", "none"),
               ("D", "none"), ("p", "none")]
# Two lines closer than this (relative) at every shared x are called overlapping in the note.
OVERLAP_REL = 0.03
# A speedup this much above ideal is called out in the note (below it: rounding, noise).
ABOVE_IDEAL_REL = 0.02
NOTE_WIDTH = 150


def size_label(x):
    """A size in bytes as the axis shows it: 64 -> '64 B', 4096 -> '4 KiB', 1048576 ->
    '1 MiB' (one spelling in every plot and in both tools)."""
    for div, suf in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if x >= div:
            return "%g %s" % (x / div, suf)
    return "%g B" % x


def x_values(table):
    return [float(g) for g in table.groups]


def x_ticks(spec, xs):
    """[(x, label)] for a lines plot: the measured x values (sizes as B/KiB/MiB on a log
    axis, counts as integers), or None to let the tool choose (many values on a linear axis;
    the tools are then told to use integers)."""
    if not xs:
        return None
    if spec.get("logx"):
        ticks = sorted(set(xs))
        step = (len(ticks) + 11) // 12        # at most 12 labels
        return [(x, size_label(x)) for x in ticks[::step]]
    if len(xs) <= 16:
        return [(x, "%d" % x) for x in sorted(set(xs))]
    return None


def x_range(spec, xs):
    """(lo, hi) of a lines plot's x axis: a little room around the points, never below zero
    (x values are sizes and counts)."""
    lo, hi = min(xs), max(xs)
    if spec.get("logx"):
        return lo / 1.3, hi * 1.3
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    return max(0.0, lo - pad), hi + pad


def ideal_speedup(x, budget):
    """Ideal speedup of x workers: one CPU each, up to the usable budget, flat beyond it."""
    return min(x, budget) if budget else x


def overlaps(table):
    """[(under, over)]: pairs of series whose points all lie within OVERLAP_REL of each other
    (at least one shared x), the later-drawn one (over) hiding the earlier."""
    out = []
    ser = table.series
    for i, a in enumerate(ser):
        for b in ser[i + 1:]:
            shared = 0
            close = True
            for g in table.groups:
                va, vb = table.cell(g, a)[0], table.cell(g, b)[0]
                if not (math.isfinite(va) and math.isfinite(vb)):
                    continue
                shared += 1
                if abs(va - vb) > OVERLAP_REL * max(abs(va), abs(vb)):
                    close = False
                    break
            if shared and close:
                out.append((a, b))
    return out


def above_ideal(table, budget):
    """[(series, x, value, ideal)] of speedups more than ABOVE_IDEAL_REL above ideal."""
    out = []
    for s in table.series:
        for g in table.groups:
            v = table.cell(g, s)[0]
            ideal = ideal_speedup(float(g), budget)
            if math.isfinite(v) and v > ideal * (1 + ABOVE_IDEAL_REL):
                out.append((s, float(g), v, ideal))
    return out


def _wrap(text, width=NOTE_WIDTH):
    lines, cur = [], ""
    for w in text.split(" "):
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = (cur + " " + w) if cur else w
    if cur:
        lines.append(cur)
    return lines


def notes(spec, table, budget):
    """Lines of text under the plot that say what the picture alone would not: the ideal line
    and the budget on speedup plots, why points lie above ideal, which lines hide others."""
    out = []
    if spec.get("ideal"):
        where = ("the %d usable CPUs" % budget) if budget else "any number of CPUs"
        out.append("Grey dashed: ideal speedup, one CPU per worker up to %s%s." % (
            where, "; grey dotted: the usable CPU budget" if budget else ""))
        high = above_ideal(table, budget)
        if high:
            shown = ", ".join("%s %.2f at %d worker%s (ideal %g)" % (
                registry.label(s), v, x, "" if x == 1 else "s", ideal)
                for s, x, v, ideal in high[:4])
            more = " and %d more" % (len(high) - 4) if len(high) > 4 else ""
            out.append("Above ideal: %s%s. Not real scaling: a speedup divides by the "
                       "1-worker figure, which comes out too low when a CPU was busy elsewhere "
                       "while it was measured (a loaded machine, few or short repetitions); "
                       "and with more workers than CPUs (oversubscription) a pool also takes "
                       "CPU time from other processes." % (shown, more))
    if spec["kind"] == "lines":
        ov = overlaps(table)
        if ov:
            out.append("Overlapping lines (within %d %% at every x; told apart by their "
                       "markers): %s." % (round(OVERLAP_REL * 100), "; ".join(
                           "%s under %s" % (registry.label(a), registry.label(b))
                           for a, b in ov[:6])) + (" …" if len(ov) > 6 else ""))
    return [line for text in out for line in _wrap(text)]


def _gp_ticks(ticks):
    return "set xtics (%s)" % ", ".join('"%s" %.10g' % (lab, x) for x, lab in ticks)


def gnuplot_vars(spec, table, budget=None):
    """The gnuplot variables for a plot's series and for what notes()/x_ticks() computed
    (lines.gp, grouped_bars.gp and compare.gp read them)."""
    v = [
        "nseries=%d" % len(table.series),
        # Series titles go through word(): quoted, so a title may hold spaces.
        "titles=%s" % _gp_str(" ".join('"%s"' % registry.label(s) for s in table.series)),
        "colors=%s" % _gp_str(" ".join(registry.color(s) for s in table.series)),
        "pyser=%s" % _gp_str(" ".join("1" if s.startswith("python:") else "0"
                                      for s in table.series)),
        "points=%s" % _gp_str(" ".join(str(GP_POINTS[i % len(GP_POINTS)])
                                       for i in range(len(table.series)))),
    ]
    if spec["kind"] == "lines" and table.groups:
        xs = x_values(table)
        ticks = x_ticks(spec, xs)
        if ticks:
            v.append("xticscmd=%s" % _gp_str(_gp_ticks(ticks)))
        lo, hi = x_range(spec, xs)
        v += ["xlo=%.10g" % lo, "xhi=%.10g" % hi]
        if spec.get("ideal"):
            v += ["ideal=1", "budget=%d" % (budget or 0)]
    ns = notes(spec, table, budget)
    v.append("nnotes=%d" % len(ns))
    v += ["note%d=%s" % (i, _gp_str(n)) for i, n in enumerate(ns, 1)]
    return v


def compare_gnuplot_vars(spec, tables, budgets, run_titles):
    """compare.gp's variables for one registry plot over several runs (plots/compare.py):
    tables share their series and groups; budgets and run_titles go per run, in order."""
    t = tables[0]
    v = ["titles=%s" % _gp_str(" ".join('"%s"' % registry.label(s) for s in t.series)),
         "points=%s" % _gp_str(" ".join(str(GP_POINTS[i % len(GP_POINTS)])
                                        for i in range(len(t.series))))]
    if spec["kind"] == "lines" and t.groups:
        ticks = x_ticks(spec, x_values(t))
        if ticks:
            v.append("xticscmd=%s" % _gp_str(_gp_ticks(ticks)))
        if spec.get("ideal"):
            v += ["ideal=1", "budgets=%s" % _gp_str(" ".join(str(b or 0) for b in budgets))]
    ns = compare_notes(spec, tables, budgets, run_titles)
    v.append("nnotes=%d" % len(ns))
    v += ["note%d=%s" % (i, _gp_str(n)) for i, n in enumerate(ns, 1)]
    return v


def compare_notes(spec, tables, budgets, run_titles):
    """notes() for several runs: the ideal line once, points above ideal named by run."""
    if not spec.get("ideal"):
        return []
    out = ["Grey dashed: ideal speedup, one CPU per worker up to each run's usable CPUs (grey "
           "dotted)."]
    high = ["%s: %s" % (title, ", ".join("%s %.2f at %d (ideal %g)" % (
        registry.label(s), v, x, ideal) for s, x, v, ideal in above_ideal(t, b)[:3]))
        for t, b, title in zip(tables, budgets, run_titles) if above_ideal(t, b)]
    if high:
        out.append("Above ideal — %s. Not real scaling: the 1-worker figure each speedup "
                   "divides by comes out too low when a CPU was busy elsewhere while it was "
                   "measured; with more workers than CPUs (oversubscription) a pool also "
                   "takes CPU time from other processes." % "; ".join(high))
    return [line for text in out for line in _wrap(text, 180)]


def fig_footer(fig, cap, note_lines=()):
    """The caption and the notes at the bottom of a figure; returns the height they take (the
    bottom of the rectangle left for the axes, for tight_layout)."""
    fig.text(0.01, 0.01, cap, fontsize=7, ha="left", va="bottom")
    line_h = 0.028
    for i, n in enumerate(reversed(note_lines)):
        fig.text(0.01, 0.01 + line_h * (i + 1), n, fontsize=7.5, ha="left", va="bottom")
    return 0.04 + line_h * len(note_lines)


def _finish_matplotlib(plt, fig, ax, spec, outbase, cap, note_lines=()):
    if spec.get("logy"):
        ax.set_yscale("log")
    ax.set_ylabel(spec.get("ylabel", ""))
    ax.set_title(spec.get("title", spec["id"]))
    fig.tight_layout(rect=(0, fig_footer(fig, cap, note_lines), 1, 1))
    return save_figure(plt, fig, outbase)


def save_figure(plt, fig, outbase):
    """OUTBASE.png and OUTBASE.svg of a matplotlib figure, which is then closed; their paths
    (the single-run plots here and compare.py's side-by-side ones both save through it)."""
    out = []
    for ext in ("png", "svg"):
        fig.savefig(outbase + "." + ext)
        out.append(outbase + "." + ext)
    plt.close(fig)
    return out


def _legend(ax, where):
    """The legend outside the data, right of the axes; where=False: none."""
    if where and ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                  fontsize=8, frameon=False)


def lines_on_ax(ax, spec, table, budget=None, legend=True):
    """One line per series of a "lines" table on a matplotlib Axes (CPython's dashed), each
    with its own marker; on a speedup plot (spec "ideal") the ideal line and the budget."""
    xs = x_values(table)
    for i, s in enumerate(table.series):
        pts = [(x, table.cell(g, s)[0]) for x, g in zip(xs, table.groups)]
        pts = [(x, v) for x, v in pts if math.isfinite(v) and v > 0]
        if not pts:
            continue
        marker, fill = MPL_MARKERS[i % len(MPL_MARKERS)]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, fillstyle=fill,
                markersize=6, linewidth=2, color=registry.color(s), clip_on=False,
                linestyle="--" if s.startswith("python:") else "-", label=registry.label(s))
    if not xs:
        return
    lo, hi = x_range(spec, xs)
    if spec.get("ideal"):
        grid = sorted(set([lo, hi] + ([budget] if budget and lo < budget < hi else [])))
        ax.plot(grid, [ideal_speedup(x, budget) for x in grid], linestyle="--", linewidth=1.2,
                color="#555555", zorder=1,
                label="ideal (up to %d CPUs)" % budget if budget else "ideal (1 CPU per worker)")
        if budget:
            ax.axvline(budget, linestyle=":", linewidth=1.2, color="#555555", zorder=1)
            right = budget > (lo + hi) / 2          # the label on the side with room
            ax.annotate("usable CPUs: %d" % budget, xy=(budget, 1.0),
                        xycoords=("data", "axes fraction"), xytext=(-4 if right else 4, -12),
                        textcoords="offset points", ha="right" if right else "left",
                        fontsize=8, color="#333333")
    if spec.get("logx"):
        ax.set_xscale("log", base=2)
    ax.set_xlim(lo, hi)
    ticks = x_ticks(spec, xs)
    if ticks:
        ax.set_xticks([t[0] for t in ticks])
        ax.set_xticklabels([t[1] for t in ticks])
        ax.minorticks_off()
    else:
        from matplotlib.ticker import MaxNLocator
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(spec.get("xlabel", ""))
    ax.grid(which="major", alpha=0.4)
    _legend(ax, legend)


def bars_on_ax(ax, spec, table, legend=True):
    """Grouped bars of a "grouped_bars" table on a matplotlib Axes (CPython's hatched), with
    the whisker up to the `whisker` field."""
    n = len(table.series)
    bw = 0.8 / max(n, 1)
    xs = list(range(len(table.groups)))
    for i, s in enumerate(table.series):
        pos = [x - 0.4 + (i + 0.5) * bw for x in xs]
        vals = [table.cell(g, s)[0] for g in table.groups]
        his = [table.cell(g, s)[1] for g in table.groups]
        keep = [k for k, v in enumerate(vals) if math.isfinite(v) and v > 0]
        if not keep:
            continue
        p = [pos[k] for k in keep]
        v = [vals[k] for k in keep]
        up = [max(his[k] - vals[k], 0.0) if math.isfinite(his[k]) else 0.0 for k in keep]
        ax.bar(p, v, width=bw, color=registry.color(s), edgecolor="black", linewidth=0.5,
               hatch="//" if s.startswith("python:") else None, label=registry.label(s))
        ax.errorbar(p, v, yerr=[[0.0] * len(v), up], fmt="none", ecolor="#222222",
                    capsize=3, linewidth=1)
    ax.set_xticks(xs)
    ax.set_xticklabels(table.groups, rotation=15, ha="right")
    ax.grid(axis="y", which="major", alpha=0.4)
    _legend(ax, legend)


def draw_on_ax(ax, spec, table, budget=None, legend=True):
    """One plot on a matplotlib Axes (plot.py: one per figure; compare.py: one per run).
    budget: the run's usable CPUs (speedup plots mark it); legend: drawn outside, or not."""
    if spec["kind"] == "lines":
        lines_on_ax(ax, spec, table, budget, legend)
    else:
        bars_on_ax(ax, spec, table, legend)
    if spec.get("logy"):
        ax.set_yscale("log")


def draw_matplotlib(plt, spec, table, outbase, cap, budget=None):
    fig, ax = plt.subplots(figsize=(9.6, 5.6), dpi=100)
    draw_on_ax(ax, spec, table, budget)
    return _finish_matplotlib(plt, fig, ax, spec, outbase, cap, notes(spec, table, budget))


def load_matplotlib():
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:  # ImportError, or a broken install
        return None
    return plt


def main(argv=None):
    ap = cli.Parser("plots", "plots/plot.py", description="Draw the plots of one mproc run.")
    ap.add_argument("run", help="run directory (results/<host>/<stamp> or results/latest)")
    ap.add_argument("--no-gnuplot", action="store_true", help="do not draw with gnuplot")
    ap.add_argument("--no-matplotlib", action="store_true", help="do not draw with matplotlib")
    a = ap.parse_args(argv)
    try:
        run = gbjson.load_run(a.run)
    except gbjson.GBJsonError as e:
        print("plots: %s" % e, file=sys.stderr)
        return 2
    for fn, msg in sorted(run.load_errors.items()):
        print("plots: %s unreadable — left out (%s)" % (fn, msg))
    out_dir = os.path.join(run.path, "plots")
    try:
        todo = tsv.write_run(run)
    except OSError as e:
        print("plots: cannot write %s: %s" % (out_dir, e), file=sys.stderr)
        return 1
    if not todo:
        print("plots: no harness in this run has plots — nothing to draw")
        return 0
    cap = caption(run)
    budget = run_budget(run)
    have_gp = not a.no_gnuplot and shutil.which("gnuplot") is not None
    plt = None if a.no_matplotlib else load_matplotlib()
    if not have_gp:
        print("plots: gnuplot %s — skipped" % ("not wanted" if a.no_gnuplot else "not installed"))
    if plt is None:
        print("plots: matplotlib %s — skipped"
              % ("not wanted" if a.no_matplotlib else "not installed"))
    failed = 0
    for spec, table, tsv_path in todo:
        if tsv_path is None:
            print("plots: %s: no data in the run — skipped" % spec["id"])
            continue
        base = os.path.join(out_dir, spec["id"])
        for tool, ok in (("gnuplot", have_gp), ("mpl", plt is not None)):
            if not ok:
                continue
            try:
                if tool == "gnuplot":
                    files = draw_gnuplot(spec, table, tsv_path, base + ".gnuplot", cap, budget)
                else:
                    files = draw_matplotlib(plt, spec, table, base + ".mpl", cap, budget)
            except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
                failed += 1
                print("plots: %s (%s) failed: %s" % (spec["id"], tool, e), file=sys.stderr)
                continue
            print("plots: %s" % " ".join(os.path.relpath(f, run.path) for f in files))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
