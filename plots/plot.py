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


def _gp_str(s):
    """A gnuplot single-quoted string literal."""
    return "'" + str(s).replace("'", "''") + "'"


def draw_gnuplot(spec, table, tsv_path, outbase, cap):
    script = os.path.join(HERE, spec["kind"] + ".gp")
    # Series titles go through word(): spaces inside a title would split it.
    titles = " ".join(registry.label(s).replace(" ", "_") for s in table.series)
    colors = " ".join(registry.color(s) for s in table.series)
    expr = "; ".join([
        "datafile=%s" % _gp_str(tsv_path),
        "outbase=%s" % _gp_str(outbase),
        "nseries=%d" % len(table.series),
        "colors=%s" % _gp_str(colors),
        "pyser=%s" % _gp_str(" ".join("1" if s.startswith("python:") else "0"
                                      for s in table.series)),
        "titles=%s" % _gp_str(titles),
        "ptitle=%s" % _gp_str(spec.get("title", spec["id"])),
        "ytitle=%s" % _gp_str(spec.get("ylabel", "")),
        "caption=%s" % _gp_str(cap),
        "logy=%d" % (1 if spec.get("logy") else 0),
        "logx=%d" % (1 if spec.get("logx") else 0),
        "xtitle=%s" % _gp_str(spec.get("xlabel", "")),
    ])
    r = subprocess.run(["gnuplot", "-e", expr, script], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    if r.returncode != 0:
        last = (r.stdout.strip().splitlines() or ["exit %d" % r.returncode])[-1]
        raise RuntimeError("gnuplot: %s" % last)
    for ext in ("png", "svg"):
        if not os.path.isfile(outbase + "." + ext):
            raise RuntimeError("gnuplot wrote no %s" % ext)
    return [outbase + ".png", outbase + ".svg"]


def _finish_matplotlib(plt, fig, ax, spec, outbase, cap):
    if spec.get("logy"):
        ax.set_yscale("log")
    ax.set_ylabel(spec.get("ylabel", ""))
    ax.set_title(spec.get("title", spec["id"]))
    fig.text(0.01, 0.01, cap, fontsize=7, ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    out = []
    for ext in ("png", "svg"):
        fig.savefig(outbase + "." + ext)
        out.append(outbase + "." + ext)
    plt.close(fig)
    return out


def _binary(x):
    """64 -> '64', 4096 -> '4Ki', 1048576 -> '1Mi' (gnuplot's %b%B)."""
    for div, suf in ((1 << 30, "Gi"), (1 << 20, "Mi"), (1 << 10, "Ki")):
        if x >= div:
            return "%g%s" % (x / div, suf)
    return "%g" % x


def lines_on_ax(ax, spec, table):
    """One line per series of a "lines" table on a matplotlib Axes (CPython's dashed)."""
    xs = [float(g) for g in table.groups]
    for s in table.series:
        pts = [(x, table.cell(g, s)[0]) for x, g in zip(xs, table.groups)]
        pts = [(x, v) for x, v in pts if math.isfinite(v) and v > 0]
        if not pts:
            continue
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=4,
                linewidth=2, color=registry.color(s),
                linestyle="--" if s.startswith("python:") else "-", label=registry.label(s))
    if spec.get("logx"):
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xticklabels([_binary(x) for x in xs])
        ax.minorticks_off()
    elif 0 < len(xs) <= 16:
        ax.set_xticks(xs)
        ax.set_xticklabels(["%g" % x for x in xs])
    ax.set_xlabel(spec.get("xlabel", ""))
    ax.grid(which="major", alpha=0.4)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)


def bars_on_ax(ax, spec, table):
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
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8)


def draw_on_ax(ax, spec, table):
    if spec["kind"] == "lines":
        lines_on_ax(ax, spec, table)
    else:
        bars_on_ax(ax, spec, table)
    if spec.get("logy"):
        ax.set_yscale("log")


def draw_matplotlib(plt, spec, table, outbase, cap):
    fig, ax = plt.subplots(figsize=(9.6, 5.6), dpi=100)
    draw_on_ax(ax, spec, table)
    return _finish_matplotlib(plt, fig, ax, spec, outbase, cap)


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
                    files = draw_gnuplot(spec, table, tsv_path, base + ".gnuplot", cap)
                else:
                    files = draw_matplotlib(plt, spec, table, base + ".mpl", cap)
            except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
                failed += 1
                print("plots: %s (%s) failed: %s" % (spec["id"], tool, e), file=sys.stderr)
                continue
            print("plots: %s" % " ".join(os.path.relpath(f, run.path) for f in files))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
