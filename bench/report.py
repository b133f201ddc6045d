#!/usr/bin/env python3
"""report - write RUN_DIR/report.md for one run: status (incomplete/failed harnesses), the
machine, the usable CPU budget with provenance, capabilities, one section per harness, links
to every plot, and the skipped benchmarks with their reasons.

    python3 bench/report.py RUN_DIR [--stdout]

Per-harness sections come from SECTIONS (harness name -> function(run, harness) -> lines);
a harness without an entry gets the generic table (median time, counters, CV). The headline of
every figure is the median over repetitions; a figure whose repetitions' CV exceeds 5 % is
flagged "unstable". Stdlib only; reads JSON through plots/gbjson.py.

Exit: 0 written; 2 not a run directory / corrupt context.json (one line); 1 cannot write.
"""

import argparse
import math
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "plots"))
import gbjson  # noqa: E402

UNSTABLE_CV = 0.05


# ------------------------------------------------------------------------------------------
# formatting

def fmt_ns(v):
    """A duration in ns, in the unit that reads best."""
    if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "—"
    a = abs(v)
    if a >= 1e9:
        return "%.3g s" % (v / 1e9)
    if a >= 1e6:
        return "%.3g ms" % (v / 1e6)
    if a >= 1e3:
        return "%.3g µs" % (v / 1e3)
    return "%.3g ns" % v


def fmt_num(v, unit=""):
    if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "—"
    for div, suf in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return "%.3g %s%s" % (v / div, suf, unit)
    return "%.3g %s" % (v, unit) if unit else "%.3g" % v


def fmt_bytes(v):
    if not isinstance(v, (int, float)) or v < 0:
        return "—"
    for div, suf in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if v >= div:
            return "%.3g %s" % (v / div, suf)
    return "%d B" % v


def fmt_cv(stats):
    """CV as a percentage plus the unstable flag; n/a below two repetitions."""
    if stats is None or stats.cv is None:
        return "n/a", False
    flag = stats.cv > UNSTABLE_CV
    return ("%.1f %%" % (stats.cv * 100)) + (" **unstable**" if flag else ""), flag


def md_escape(s):
    return str(s).replace("|", "\\|")


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(md_escape(c) for c in r) + " |" for r in rows]
    return out


# ------------------------------------------------------------------------------------------
# sections

def section_status(run):
    c = run.context
    h = c.get("harnesses") or {}
    lines = []
    status = c.get("status") or ("complete" if c.get("complete") else "incomplete")
    if c.get("complete"):
        lines.append("Run **complete** (%s)." % status)
    else:
        lines.append("**INCOMPLETE RUN** (%s): the figures below are what finished; do not "
                     "compare it as a whole with a complete run." % status)
    failed = h.get("failed") or []
    skipped = h.get("skipped") or []
    if failed:
        lines.append("")
        lines.append("Failed harnesses:")
        for f in failed:
            lines.append("- `%s`: %s (log: [logs/%s.log](logs/%s.log))"
                         % (f.get("name"), f.get("reason", "failed"), f.get("name"), f.get("name")))
    if skipped:
        lines.append("")
        lines.append("Harnesses not run:")
        for s in skipped:
            lines.append("- `%s`: %s" % (s.get("name"), s.get("reason", "skipped")))
    for fn, msg in sorted(run.load_errors.items()):
        lines.append("- unreadable file `%s`: %s" % (fn, msg))
    return lines


def _get(d, *keys, default=None):
    for k in keys:
        if isinstance(d, dict) and k in d:
            return d[k]
    return default


def section_machine(run):
    c, t = run.context, run.topology
    counts = dict(_get(t, "counts", default={}) or {})
    counts.update(_get(t, "caches", default={}) or {})
    comp = c.get("compiler") or {}
    cc = comp.get("c") if isinstance(comp, dict) else None
    git = c.get("git") or {}
    py = c.get("python") or {}
    rows = [
        ("host", c.get("host", "?")),
        ("CPU", c.get("cpu_model", "?")),
        ("kernel", c.get("kernel", "?")),
        ("packages / cores / PUs / NUMA nodes", "%s / %s / %s / %s" % (
            _get(counts, "packages", default="?"), _get(counts, "cores", default="?"),
            _get(counts, "pus", default="?"), _get(counts, "numa_nodes", default="?"))),
        ("caches (L1d / L2 / L3)", "%s / %s / %s" % (
            fmt_bytes(_get(counts, "l1d_bytes", default=-1)),
            fmt_bytes(_get(counts, "l2_bytes", default=-1)),
            fmt_bytes(_get(counts, "l3_bytes", default=-1)))),
        ("compiler", "%s %s" % (cc.get("id", "?"), cc.get("version", "?")) if isinstance(cc, dict)
         else "?"),
        ("libc", c.get("libc", "?")),
        ("Google Benchmark", c.get("gbench_version", "?")),
        ("hwloc", c.get("hwloc_version", "?")),
        ("Python", py.get("version", "?") if isinstance(py, dict) else py),
        ("git", "%s%s" % ((git.get("revision") or "?")[:12], " (dirty)" if git.get("dirty") else "")),
        ("profile", c.get("profile", "?")),
        ("started / finished (UTC)", "%s / %s" % (c.get("started_utc", "?"),
                                                   c.get("finished_utc") or "—")),
    ]
    return table(["", ""], rows)


def _limits(budget):
    """[(name, value, source, detail)] from the budget, whichever shape mproc-topo used."""
    lim = budget.get("limits")
    items = []
    if isinstance(lim, dict):
        items = list(lim.items())
    elif isinstance(lim, list):
        items = [(x.get("name", "?"), x) for x in lim if isinstance(x, dict)]
    else:
        items = [(k, v) for k, v in budget.items() if isinstance(v, dict) and "source" in v]
    out = []
    for name, v in items:
        val = v.get("value")
        none = val is None or (isinstance(val, int) and val < 0)
        out.append((name, "no limit" if none else str(val),
                    v.get("source", ""), v.get("detail", "")))
    return out


def section_budget(run):
    b = run.context.get("budget") or _get(run.topology, "budget", default={}) or {}
    if not b:
        return ["Not known: `mproc-topo --json` did not run (see context.json `topology`)."]
    lines = ["**%s usable CPUs** (%s physical cores), bound by **%s**%s." % (
        b.get("usable", "?"), b.get("usable_cores", "?"), b.get("bound_by", "?"),
        "; PUs %s" % b["allowed_pus"] if b.get("allowed_pus") else ""), ""]
    lim = _limits(b)
    if lim:
        lines += table(["limit", "CPUs", "from", "detail"], lim)
    return lines


def section_caps(run):
    caps = run.context.get("capabilities") or _get(run.topology, "capabilities", "caps",
                                                    default={}) or {}
    if not caps:
        return ["Not known."]
    rows = []
    for k, v in caps.items():
        if isinstance(v, bool):
            v = "yes" if v else "no"
        elif isinstance(v, (int, float)) and k.endswith("bytes"):
            v = fmt_bytes(v)
        elif isinstance(v, (int, float)) and v < 0:
            v = "unlimited/unknown"
        rows.append((k, str(v)))
    return table(["capability", "value"], rows)


def _time_cell(fig):
    s = fig.value("real_time")
    return fmt_ns(s.median if s else None)


def baseline_section(run, h):
    """Baseline: one row per figure; latency probes show p50/p99/p999 from the samples."""
    rows, unstable = [], []
    for fig in h.figures.values():
        head = fig.value("p50_ns") or fig.value("real_time")
        cv, flag = fmt_cv(head)
        if flag:
            unstable.append(fig.name)
        extra = "—"
        bps = fig.value("bytes_per_second")
        if bps is not None:
            extra = fmt_num(bps.median, "B/s")
        rows.append(("`%s`" % fig.name, _time_cell(fig),
                     fmt_ns(fig.median("p50_ns", None)), fmt_ns(fig.median("p99_ns", None)),
                     fmt_ns(fig.median("p999_ns", None)), extra, cv, str(fig.repetitions)))
    lines = ["The machine's own limits, measured in this run: every other figure can be read "
             "as a multiple of these. Median over repetitions; p50/p99/p999 are medians of "
             "the per-repetition percentiles of individual round trips.", ""]
    lines += table(["benchmark", "time (median)", "p50", "p99", "p999", "throughput",
                    "CV", "reps"], rows)
    # The same-core vs cross-core ratio, where both exist.
    ratios = []
    for fig in h.figures.values():
        m = re.fullmatch(r"baseline/([^/]+)/placement:same_core", fig.name)
        if not m:
            continue
        other = h.figures.get("baseline/%s/placement:cross_core" % m.group(1))
        a = fig.median("p50_ns", None) or fig.median("real_time", None)
        b = other and (other.median("p50_ns", None) or other.median("real_time", None))
        if a and b and math.isfinite(a) and math.isfinite(b):
            ratios.append("`%s` cross/same core: %.3gx" % (m.group(1), b / a))
    if ratios:
        lines += [""] + ["- " + r for r in ratios]
    return lines, unstable


def generic_section(run, h):
    rows, unstable = [], []
    for fig in h.figures.values():
        head = fig.value("real_time")
        cv, flag = fmt_cv(head)
        if flag:
            unstable.append(fig.name)
        cnt = ", ".join("%s=%s" % (k, fmt_ns(fig.median(k)) if k.endswith("_ns")
                                   else fmt_num(fig.median(k))) for k in fig.counters()[:4])
        rows.append(("`%s`" % fig.name, _time_cell(fig), cnt or "—", cv, str(fig.repetitions)))
    return table(["benchmark", "time (median)", "counters (median)", "CV", "reps"], rows), unstable


# [spawn] what each start method gives the child, in one line (the table users choose from).
SPAWN_SEMANTICS = [
    ("fork", "copy of the caller: all memory (copy-on-write), every fd, only the calling thread, "
             "locks as other threads left them (libmproc's are made safe by atfork); cost grows "
             "with parent RSS"),
    ("vfork", "fresh image of the program (clone CLONE_VM|CLONE_VFORK + exec): no memory, one "
              "thread, no locks; inherits fds not marked close-on-exec; named entry, argument as "
              "bytes; cost independent of RSS"),
    ("posix_spawn", "as vfork, through posix_spawn(3)"),
    ("spawn", "as vfork, and only stdin/stdout/stderr are inherited (Python's spawn)"),
    ("forkserver", "fork of a small single-threaded server image started early: only stdio and "
                   "the image's registered entries; argument as bytes; status back over a Unix "
                   "socket"),
    ("thread", "a pthread: shares everything (baseline)"),
    ("fork_raw", "not a method: a bare fork + _exit + waitpid in the same harness process, the "
                 "floor under `fork`"),
    ("vfork_self", "`vfork` exec'ing the harness's own C++ image, not the lean C child image "
                   "(mproc_set_executable) the rows above exec"),
    ("posix_spawn_self", "`posix_spawn`, the harness's own image"),
    ("spawn_self", "`spawn`, the harness's own image"),
    ("forkserver_self", "`forkserver` whose server is the harness's own image"),
]


def spawn_section(run, h):
    """Start cost per method vs parent RSS (p50 of start->reap), start-only beside it, the
    semantics table, and the target ratios that can be computed from this run."""
    lines, unstable = [], []
    rss, cost = set(), {}
    for fig in h.figures.values():
        m = re.fullmatch(r"(spawn|spawn_start)/([a-z_]+)/rss_mib:(\d+)", fig.name)
        if not m:
            continue
        cv, flag = fmt_cv(fig.value("real_time"))
        if flag:
            unstable.append(fig.name)
        rss.add(int(m.group(3)))
        cost[(m.group(1), m.group(2), int(m.group(3)))] = fig.median("p50_ns", None)
    cols = sorted(rss)
    rows = []
    for method, sem in SPAWN_SEMANTICS:
        cells = []
        for n in cols:
            a, b = cost.get(("spawn", method, n)), cost.get(("spawn_start", method, n))
            cells.append("%s (start %s)" % (fmt_ns(a), fmt_ns(b)))
        rows.append(["`%s`" % method] + cells + [sem])
    lines += ["Start -> reaped (p50), and start -> first user instruction in brackets, per "
              "parent RSS (touched MiB).", ""]
    lines += table(["method"] + ["rss %d MiB" % n for n in cols] + ["the child inherits"], rows)
    ratios = []
    base = run.figures.get("baseline/fork_exit") if hasattr(run, "figures") else None
    fork0 = cost.get(("spawn", "fork", 0))
    b0 = base and (base.median("p50_ns", None) or base.median("real_time", None))
    if fork0 and b0:
        ratios.append("`fork` start->reap / `baseline/fork_exit`: %.2fx (target <= 1.1)"
                      % (fork0 / b0))
    raw0 = cost.get(("spawn", "fork_raw", 0))
    if fork0 and raw0:
        ratios.append("`fork` start->reap / `fork_raw` (a bare fork in the same process): %.2fx"
                      % (fork0 / raw0))
    for method in ("vfork", "posix_spawn", "spawn", "forkserver"):
        a, b = cost.get(("spawn", method, 0)), cost.get(("spawn", method + "_self", 0))
        if a and b:
            ratios.append("`%s`, harness image / lean image, 0 MiB: %.2fx" % (method, b / a))
    big = max(cols) if cols else 0
    for method in ("vfork", "posix_spawn", "spawn", "forkserver"):
        a, b = cost.get(("spawn", method, 0)), cost.get(("spawn", method, big))
        if a and b and big:
            ratios.append("`%s` %d MiB / 0 MiB: %.2fx (%s)" % (
                method, big, b / a, "target <= 1.2" if big == 512 else
                "the target, <= 1.2x, is for 512 MiB: run PROFILE=full"))
    if ratios:
        lines += [""] + ["- " + r for r in ratios]
    others = [fig for fig in h.figures.values()
              if not re.fullmatch(r"(spawn|spawn_start)/[a-z_]+/rss_mib:\d+", fig.name)]
    if others:
        lines += ["", "Threads in the parent (fork) and copy-on-write cost of the child's first "
                  "write:", ""]
        lines += table(["benchmark", "p50", "p99"],
                       [("`%s`" % f.name, fmt_ns(f.median("p50_ns", None)),
                         fmt_ns(f.median("p99_ns", None))) for f in others])
    return lines, unstable


# harness name -> function(run, HarnessResult) -> (markdown lines, [unstable names])
SECTIONS = {
    "baseline": baseline_section,
    # [spawn] [pipe] [queue] [latency] [shm] [manager] [pool] [python]: add entries here.
    "spawn": spawn_section,
}


def section_plots(run):
    pdir = os.path.join(run.path, "plots")
    files = sorted(f for f in os.listdir(pdir) if f.endswith((".png", ".svg"))) \
        if os.path.isdir(pdir) else []
    if not files:
        return ["No plots (see logs/plots.log: the plot step was skipped or found no data)."]
    lines = []
    stems = []
    for f in files:
        stem = f.rsplit(".", 2)[0]
        if stem not in stems:
            stems.append(stem)
    for stem in stems:
        mine = [f for f in files if f.startswith(stem + ".")]
        lines.append("- **%s**: %s" % (stem, ", ".join("[%s](plots/%s)" % (f, f) for f in mine)))
    png = [f for f in files if f.endswith(".png")]
    if png:
        lines.append("")
        lines += ["![%s](plots/%s)" % (f, f) for f in png]
    return lines


def section_recommendation(run):
    """The pool sizes for this machine (bench/recommend.py via mproc-recommend --write)."""
    import json as _json
    path = os.path.join(run.path, "recommendation.json")
    try:
        with open(path, encoding="utf-8") as f:
            rec = _json.load(f)
    except (OSError, ValueError):
        return []
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import recommend
    out = ["## Recommendation: how many workers here", "",
           "From this run's pool curves (`mproc-recommend %s` prints it again; "
           "`recommendation.json` holds the evidence):" % md_escape(run.path), "", "```"]
    out += recommend.render_text(rec).splitlines()
    out += ["```", ""]
    cpu = rec.get("cpu")
    if cpu and cpu.get("curve"):
        out += ["CPU-bound curve (%s ms tasks):" % cpu.get("task_ms"), ""]
        rows = []
        for w, tps, sp, eff in cpu["curve"]:
            rows.append(["%d" % w, fmt_num(tps), "%.2f" % sp if sp is not None else "—",
                         "%.2f" % eff if eff is not None else "—"])
        out += table(["workers", "tasks/s", "speedup", "efficiency"], rows) + [""]
    return out


def build_report(run):
    c = run.context
    title = "# mproc run: %s, %s" % (c.get("host", "?"), c.get("started_utc", "?"))
    out = [title, ""]
    out += section_status(run) + [""]
    out += ["## Machine", ""] + section_machine(run) + [""]
    out += ["## Usable CPU budget", ""] + section_budget(run) + [""]
    out += ["## Capabilities", ""] + section_caps(run) + [""]
    out += section_recommendation(run)
    all_unstable = []
    per_harness = []          # (harness, unstable, figures)
    order = [n for n in (c.get("harnesses") or {}).get("selected") or [] if n in run.harnesses]
    order += [n for n in run.harnesses if n not in order]
    for name in order:
        h = run.harnesses[name]
        fn = SECTIONS.get(name, generic_section)
        out += ["## %s" % name, ""]
        if h.figures:
            lines, unstable = fn(run, h)
            out += lines
            all_unstable += unstable
            per_harness.append((name, len(unstable), len(h.figures)))
        else:
            out.append("No figures.")
        if h.skipped:
            out += ["", "Skipped benchmarks:"]
            out += ["- `%s`: %s" % (n, r) for n, r in h.skipped.items()]
        out.append("")
    if all_unstable:
        out += ["## Unstable figures", "",
                "%d figures vary by more than %d %% (CV) over their repetitions (%s): re-run "
                "with `PROFILE=full` on a quiet machine before trusting them." % (
                    len(all_unstable), UNSTABLE_CV * 100,
                    ", ".join("%s %d/%d" % t for t in per_harness if t[1])), "",
                "<details><summary>the list</summary>", ""]
        out += ["- `%s`" % n for n in all_unstable] + ["", "</details>", ""]
    out += ["## Plots", ""] + section_plots(run) + [""]
    out += ["## Files", "",
            "`context.json` (the run), `topology.json` / `topology.xml` (the machine), "
            "`<harness>.json` (Google Benchmark JSON), `logs/`, `plots/` — see "
            "results/README.md for the schema.", ""]
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write report.md for one mproc run.")
    ap.add_argument("run", help="run directory")
    ap.add_argument("--stdout", action="store_true", help="print instead of writing report.md")
    a = ap.parse_args(argv)
    try:
        run = gbjson.load_run(a.run)
    except gbjson.GBJsonError as e:
        print("report: %s" % e, file=sys.stderr)
        return 2
    text = build_report(run)
    if a.stdout:
        sys.stdout.write(text)
        return 0
    path = os.path.join(run.path, "report.md")
    try:
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    except OSError as e:
        print("report: cannot write %s: %s" % (path, e), file=sys.stderr)
        return 1
    print("report: %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
