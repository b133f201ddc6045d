#!/usr/bin/env python3
"""tsv - turn a run's JSON into the TSV files gnuplot reads: RUN/plots/data/<plot id>.tsv,
one per registry entry (plots/registry.py) whose harness is in the run.

    PYTHONPATH=plots python3 -m mproc_results.tsv RUN_DIR   # writes, one line per file

TSV layout (grouped_bars and lines): a '#' comment block (title, ylabel, series, and last the column
header "#<TAB>group<TAB><s1><TAB><s1>_hi<TAB><s2>..."), then one row per group (lines: per x,
in numeric order); missing cells are
NaN. Values are already divided by the entry's scale. Stdlib only.
"""

import math
import os
import re
import sys

from . import files
from . import gbjson
import registry  # noqa: E402


_COUNTED = re.compile(r"([A-Za-z_]+):(\d+)")


class Table:
    """Data of one grouped-bars plot: groups x series -> (value, whisker_hi)."""

    def __init__(self, spec):
        self.spec = spec
        self.groups = []
        self.series = []
        self.cells = {}
        self.value_field = {}   # series -> field actually used

    def cell(self, group, series):
        return self.cells.get((group, series), (math.nan, math.nan))

    @property
    def empty(self):
        return not self.cells


def _field(fig, names):
    for n in names:
        s = fig.value(n)
        if s is not None and s.n > 0 and math.isfinite(s.median):
            return n, s.median
    return None, math.nan


def build_table(run, spec):
    """Table for one registry entry from a loaded gbjson.Run."""
    t = Table(spec)
    rx = re.compile(spec["pattern"])
    gi = rx.groupindex
    scale = float(spec.get("scale", 1.0)) or 1.0
    matches = []
    for fig in run.figures.values():
        name, prefix = fig.name, ""
        if name.startswith("python/"):
            name, prefix = name[len("python/"):], "python:"
        m = rx.fullmatch(name)
        if m:
            matches.append((fig, m, prefix + m.group("series")))
    # A named group `pick` (a size such as task_ms): each series keeps only its figures with the
    # largest value of it, so one line never mixes sizes and every profile gets the plot.
    best = {}
    if "pick" in gi:
        for _, m, series in matches:
            best[series] = max(best.get(series, -math.inf), float(m.group("pick")))
    for fig, m, series in matches:
        if "pick" in gi and float(m.group("pick")) != best[series]:
            continue
        group = m.group("group") if "group" in gi else m.group("x")
        field, v = _field(fig, spec["value"])
        if field is None:
            continue
        hi = v
        w = spec.get("whisker")
        if w and field != "real_time" and fig.value(w) is not None:
            hv = fig.median(w)
            if math.isfinite(hv):
                hi = max(hv, v)
        if group not in t.groups:
            t.groups.append(group)
        if series not in t.series:
            t.series.append(series)
        t.cells[(group, series)] = (v / scale, hi / scale)
        t.value_field[series] = field
    if spec["kind"] == "lines":
        t.groups.sort(key=float)
    elif t.groups and all(_COUNTED.fullmatch(g) for g in t.groups) \
            and len({_COUNTED.fullmatch(g).group(1) for g in t.groups}) == 1:
        # "chunksize:10", "chunksize:1", ...: in numeric order, not in the order the
        # (interleaved) repetitions happened to list them.
        t.groups.sort(key=lambda g: int(_COUNTED.fullmatch(g).group(2)))
    # mproc's series first, then the CPython twins (python.json sorts before most harnesses).
    t.series.sort(key=lambda s: s.startswith("python:"))
    return t


def _fmt(v):
    return "NaN" if not math.isfinite(v) else ("%.6g" % v)


def write_tsv(table, path):
    spec = table.spec
    lines = ["# %s: %s" % (spec["id"], spec.get("title", "")),
             "# ylabel: %s" % spec.get("ylabel", ""),
             "# series: %s" % " ".join(table.series),
             "# value fields: %s" % " ".join("%s=%s" % kv for kv in table.value_field.items()),
             "#\t" + "\t".join(["group"] + [c for s in table.series for c in (s, s + "_hi")])]
    for g in table.groups:
        row = [g]
        for s in table.series:
            v, hi = table.cell(g, s)
            row += [_fmt(v), _fmt(hi)]
        lines.append("\t".join(row))
    files.write_text(path, "\n".join(lines) + "\n")


def write_run(run, out_dir=None):
    """Write every applicable TSV; return [(spec, table, path or None if no data)]."""
    out_dir = out_dir or os.path.join(run.path, "plots", "data")
    done = []
    for spec in registry.plots_for(run.harnesses):
        table = build_table(run, spec)
        if table.empty:
            done.append((spec, table, None))
            continue
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, spec["id"] + ".tsv")
        write_tsv(table, path)
        done.append((spec, table, path))
    return done


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print("usage: tsv.py RUN_DIR", file=sys.stderr)
        return 2
    try:
        run = gbjson.load_run(argv[1])
    except gbjson.GBJsonError as e:
        print("tsv: %s" % e, file=sys.stderr)
        return 2
    for spec, _, path in write_run(run):
        print("tsv: %s" % (path or "%s: no data — skipped" % spec["id"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
