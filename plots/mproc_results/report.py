#!/usr/bin/env python3
"""report - write RUN_DIR/report.md for one run: the machine line (noise.json's verdict:
"quiet", "busy: ... — figures below are provisional", or "machine state not recorded"), then
"What to use on this machine" (the seed questions answered for libmproc and for Python, each
with its deciding figures, their 95 % intervals (stats.py) and the caveat that matters;
"undecided" and why where the intervals do not support an answer), a one-line link to
targets.md, status (incomplete/failed harnesses), the machine, the usable CPU budget with
provenance, capabilities, the headline table (each primitive: mproc, CPython, their ratio with
its interval and verdict, at the same placement, each as a multiple of the machine's
baseline), the recommendation (recommend.py), one section per harness with its plots, and
the skipped benchmarks with their reasons. Beside it: RUN_DIR/answers.json (the same answers,
for `make verify`), RUN_DIR/targets.md (the project's own targets: met, missed or undecided,
with intervals) and RUN_DIR/index.html. report.md and index.html are two renderings of one
document (build_doc, doc.py): each plot sits in the section of its harness (registry.py's
"harness"), its PNG a link to its SVG.

    plots/report.py RUN_DIR [--stdout]                 (or: python3 -m mproc_results.report)
    plots/report.py --reference-index results/reference [--stdout]
        (writes results/reference/README.md: the reference machines and headline figures)

Per-harness sections come from SECTIONS (harness name -> function(run, harness) -> (body,
unstable names)); a harness without an entry gets the generic table (median time, counters,
CV). A body is a list of Markdown lines and doc.py blocks (tables, bullets, code). The
headline of every figure is the median over repetitions; a figure whose repetitions' CV
exceeds 5 % (fields.UNSTABLE_CV) is flagged "unstable" in the harness tables. Stdlib only;
reads every file through gbjson.py.

Exit: 0 written; 2 bad usage, not a run directory, corrupt context.json (one line); 1 cannot
write.
"""

import json
import math
import os
import re
import sys

from . import gbjson
from . import recommend
from . import stats

import registry      # plots/registry.py: which harness each plot belongs to

from . import cli
from . import doc as _doc
from . import fields as _fields
from . import files
from .doc import bullets, code, details, md_escape, table
from .fields import UNSTABLE_CV, fmt_bytes, fmt_cv, fmt_ns, fmt_num, fmt_value

PROG = "report"


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
        lines += ["", "Failed harnesses:"]
        lines += bullets(["`%s`: %s (log: [logs/%s.log](logs/%s.log))" % (
            f.get("name"), f.get("reason", "failed"), f.get("name"), f.get("name"))
            for f in failed])
    if skipped:
        lines += ["", "Harnesses not run:"]
        lines += bullets(["`%s`: %s" % (s.get("name"), s.get("reason", "skipped"))
                          for s in skipped])
    lines += bullets(["unreadable file `%s`: %s" % (fn, msg)
                      for fn, msg in sorted(run.load_errors.items())])
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
        ("git", "%s%s" % ((git.get("revision") or "?")[:12],
                          " (dirty)" if git.get("dirty") else "")),
        ("profile", c.get("profile", "?")),
        ("started / finished (UTC)", "%s / %s" % (c.get("started_utc", "?"),
                                                   c.get("finished_utc") or "—")),
    ]
    return table(["what", "value"], rows)


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
    """The time of one operation: its median with its 95 % interval ('(n reps: no
    interval)' below 6 repetitions: never shown as if it were stable)."""
    return fmt_ci("real_time", *fig_ci(fig, "real_time"))


def _counter_cell(fig, k):
    """'k=median [lo, hi]' of one counter; the median alone below 6 repetitions (the
    table's reps column and time cell say so)."""
    med, lo, hi, _n = fig_ci(fig, k)
    if med is None:
        return "%s=—" % k
    if k.endswith("_ns"):
        f = fmt_ns
    else:
        def f(v):
            return fmt_num(v)
    return "%s=%s" % (k, f(med)) + (" [%s, %s]" % (f(lo), f(hi)) if lo is not None else "")


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
        p50 = fig_ci(fig, "p50_ns")
        rows.append(("`%s`" % fig.name, _time_cell(fig),
                     fmt_ci("p50_ns", *p50) if p50[0] is not None else "—",
                     fmt_ns(fig.median("p99_ns", None)),
                     fmt_ns(fig.median("p999_ns", None)), extra, cv, str(fig.repetitions)))
    lines = ["The machine's own limits, measured in this run: every other figure can be read "
             "as a multiple of these. Median over repetitions; p50/p99/p999 are medians of "
             "the per-repetition percentiles of individual round trips.", ""]
    lines += table(["benchmark", "time (median [95 % interval])", "p50 [95 % interval]",
                    "p99", "p999", "throughput", "CV", "reps"], rows)
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
        lines += [""] + bullets(ratios)
    return lines, unstable


def generic_section(run, h, figures=None):
    """One row per figure of the harness (or of `figures`, in that order)."""
    rows, unstable = [], []
    for fig in (h.figures.values() if figures is None else figures):
        head = fig.value("real_time")
        cv, flag = fmt_cv(head)
        if flag:
            unstable.append(fig.name)
        cnt = ", ".join(_counter_cell(fig, k) for k in fig.counters()[:4])
        rows.append(("`%s`" % fig.name, _time_cell(fig), cnt or "—", cv, str(fig.repetitions)))
    return table(["benchmark", "time (median [95 % interval])",
                  "counters (median [95 % interval])", "CV", "reps"], rows), unstable


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
    semantics table, and the ratios that can be computed from this run (their targets, with
    intervals, are in targets.md)."""
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
        ratios.append("`fork` start->reap / `baseline/fork_exit`: %.2fx" % (fork0 / b0))
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
            ratios.append("`%s` %d MiB / 0 MiB: %.2fx" % (method, big, b / a))
    if ratios:
        lines += ["", "Ratios of medians (the targets, with intervals: [targets.md](targets.md)):",
                  ""] + bullets(ratios)
    others = [fig for fig in h.figures.values()
              if not re.fullmatch(r"(spawn|spawn_start)/[a-z_]+/rss_mib:\d+", fig.name)]
    if others:
        lines += ["", "Threads in the parent (fork) and copy-on-write cost of the child's first "
                  "write:", ""]
        lines += table(["benchmark", "p50", "p99"],
                       [("`%s`" % f.name, fmt_ns(f.median("p50_ns", None)),
                         fmt_ns(f.median("p99_ns", None))) for f in others])
    return lines, unstable


# ------------------------------------------------------------------------------------------
# intervals (stats.py): every figure the report states, every ratio between two

def fig_values(fig, field, transform=None):
    """The finite repetition values of one field of a figure ([] when absent)."""
    s = fig.value(field) if fig is not None else None
    if s is None:
        return []
    return fig_values_of(s.values, transform)


def fig_values_of(values, transform=None):
    """The finite values of a list, through transform (zeros dropped under one)."""
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if transform is not None:
        vals = [transform(v) for v in vals if v]
    return vals


def fig_ci(fig, field, transform=None):
    """(median, lo, hi, n) of a field over its repetitions; lo/hi None with too few
    (n < 6 at 95 %); median None when the figure has no such field."""
    vals = fig_values(fig, field, transform)
    if not vals:
        return None, None, None, 0
    ci = stats.median_ci(vals)
    return stats.median(vals), (ci[0] if ci else None), (ci[1] if ci else None), len(vals)


def decide_doc(run):
    """RUN/decide.json (decide.py: deciding pairs measured again, interleaved), read
    once per run; {} when absent or unreadable."""
    doc = getattr(run, "_decide_doc", None)
    if doc is None:
        doc = run.side("decide") or {}
        run._decide_doc = doc
    return doc


def _decided_ratio(run, a, b):
    """(ratio, lo, hi) of median(a)/median(b) from decide.json's final interval for the pair
    (a, b) or (b, a) (inverted), where the decider measured it and has an interval; else
    None."""
    for p in decide_doc(run).get("pairs") or []:
        if not isinstance(p, dict) or not p.get("extended"):
            continue
        f = p.get("final") or {}
        r, lo, hi = f.get("ratio"), f.get("lo"), f.get("hi")
        if not all(isinstance(x, (int, float)) and math.isfinite(x) and x > 0
                   for x in (r, lo, hi)):
            continue
        if (p.get("a"), p.get("b")) == (a, b):
            return r, lo, hi
        if (p.get("a"), p.get("b")) == (b, a):
            return 1 / r, 1 / hi, 1 / lo
    return None


def ratio_of(run, fig_a, field_a, fig_b, field_b, transform_a=None, transform_b=None):
    """(ratio, lo, hi, how) of median(a) / median(b). how: "bootstrap, interleaved" (a
    bootstrap of the ratio of medians, both figures from one harness whose repetitions were
    shuffled together: the same period, but not pairs), "bootstrap" (measured at different
    times), or "decide.json" (the decider measured the pair again in back-to-back pairs: its
    final interval)."""
    if fig_a is not None and fig_b is not None and transform_a is None and \
            transform_b is None and field_a == field_b:
        d = _decided_ratio(run, fig_a.name, fig_b.name)
        if d is not None:
            return d[0], d[1], d[2], "decide.json"
    how = "bootstrap, interleaved" if gbjson.interleaved(run, fig_a, fig_b) else "bootstrap"
    a = fig_values(fig_a, field_a, transform_a)
    b = fig_values(fig_b, field_b, transform_b)
    if not a or not b:
        return None, None, None, how
    r, lo, hi = stats.ratio_ci(a, b, paired=False)
    return (r if r is not None and math.isfinite(r) else None), lo, hi, how


def fmt_ci(field, med, lo, hi, n):
    """'283 µs [270 µs, 300 µs]', or '283 µs (3 reps: no interval)'."""
    if med is None:
        return "—"
    if lo is None:
        return "%s (%d rep%s: no interval)" % (fmt_value(field, med), n, "" if n == 1 else "s")
    return "%s [%s, %s]" % (fmt_value(field, med), fmt_value(field, lo), fmt_value(field, hi))


def fmt_ratio_ci(r, lo, hi):
    if r is None:
        return "—"
    if lo is None:
        return "%.3gx (no interval)" % r
    return "%.3gx [%.3g, %.3g]" % (r, lo, hi)


def placement_of(name):
    """Where the processes of a figure ran: 'placement:X' in its name; mproc's manager
    figures without one pin server and client to one PU (bench_manager.c), CPython's
    Manager runs unpinned (bench/python/mp_bench.py); None: not named (alike)."""
    m = re.search(r"(?:^|/)placement:([a-z_]+)", name)
    if m:
        return m.group(1)
    if name.startswith("manager/"):
        return "same_core"
    if name.startswith("python/manager/"):
        return "unpinned"
    return None


def same_placement(a, b):
    pa, pb = placement_of(a), placement_of(b)
    return pa is None or pb is None or pa == pb


# ------------------------------------------------------------------------------------------
# [answers] "What to use on this machine": the seed questions, answered from this run

CAVEAT_START_C = (
    "`fork` copies the caller: all its memory (copy-on-write, so its cost grows with the "
    "parent's RSS), every fd, and only the calling thread: a lock another thread held stays "
    "locked in the child (libmproc resets its own at fork; yours it cannot), so in a program "
    "with threads use `forkserver` or `spawn`. `spawn` runs a named entry point in a fresh "
    "image that inherits only stdin/stdout/stderr; `forkserver` forks a small single-threaded "
    "server started early (the child inherits what the server has, not what your program has "
    "since); `vfork`/`posix_spawn` exec a fresh image and inherit every fd not marked "
    "close-on-exec.")
CAVEAT_START_PY = (
    "`fork` copies the whole interpreter with only the calling thread: with threads running "
    "it can deadlock (Python 3.12 warns, 3.14 made `forkserver` the default on Linux). `spawn` "
    "and `forkserver` import the main module afresh, so the target must be importable and its "
    "arguments picklable; they inherit only the fds they need.")
CAVEAT_QUEUE = (
    "a consumer killed while reading breaks the pipe queue for good (-EBADMSG on every later "
    "get/put); CPython's Queue has the same weakness; the ring back end survives it. A Pipe "
    "has exactly two ends: two processes writing (or reading) the same end at once can "
    "corrupt it; a Queue takes any number of producers and consumers.")
CAVEAT_SHARED = (
    "Value/Array hold fixed-size plain data in shared memory (a lock per access, or none with "
    "atomics); a manager holds dicts, lists and queues and serves processes on other hosts "
    "(TCP, with an HMAC key), but every access is a round trip to its server process. Named "
    "shared memory needs /dev/shm (AWS Lambda has none).")
CAVEAT_POOL = (
    "CPU-bound sizes are for tasks that compute all the time; the I/O-bound sizes assume "
    "tasks that block for the given fraction of their time; a pool larger than the usable "
    "CPUs buys nothing for CPU-bound work.")


def _answer(question, answer, why, figures, caveat=None, decided=True):
    return {"question": question, "answer": answer if decided else "undecided", "why": why,
            "figures": figures, "caveat": caveat}


def _figure(name, field, med, lo, hi):
    return {"name": name, "field": field, "value": med, "lo": lo, "hi": hi}


def _fig_entry(run, name, field, transform=None, shown_field=None):
    med, lo, hi, n = fig_ci(run.figures.get(name), field, transform)
    return _figure(name, shown_field or field, med, lo, hi), n


def pick_best(run, question, cands, field, lower_is_better, caveat, noun, transform=None):
    """Answer "which of these" from candidates [(label, name)]: the best median wins when
    its ratio to the runner-up has an interval wholly past 1."""
    have = []
    figs = []
    for label, name in cands:
        fig = run.figures.get(name)
        med, lo, hi, n = fig_ci(fig, field, transform)
        if med is None:
            continue
        have.append((label, name, fig, med, n))
        figs.append(_figure(name, field, med, lo, hi))
    if len(have) < 2:
        return None
    have.sort(key=lambda t: t[3], reverse=not lower_is_better)
    (bl, bn, bf, _, bnr), (rl, rn, rf, _, rnr) = have[0], have[1]
    # The runner-up over the best, as "how many times the best is better": > 1 decides.
    if lower_is_better:
        r, lo, hi, how = ratio_of(run, rf, field, bf, field, transform, transform)
    else:
        r, lo, hi, how = ratio_of(run, bf, field, rf, field, transform, transform)
    figs.append(_figure("%s vs %s" % (bn, rn), "ratio", r, lo, hi))
    v = stats.verdict(lo, hi, 1.0, higher_is_better=True)
    if v == "better":
        why = ("%s: %s is %s than the next, %s, by %s (95 %% interval, %s)" % (
            noun, bl, "faster" if lower_is_better else "higher", rl,
            fmt_ratio_ci(r, lo, hi), how))
        return _answer(question, bl, why, figs, caveat)
    if lo is None:
        why = ("too few repetitions for a 95 %% interval (%d and %d; 6 needed): %s looks "
               "best by its median, %s next" % (bnr, rnr, bl, rl))
    else:
        why = ("%s and %s cannot be told apart: ratio %s straddles 1 (%s)" % (
            bl, rl, fmt_ratio_ci(r, lo, hi), how))
    return _answer(question, bl, why, figs, caveat, decided=False)


def answer_start_method(run, python):
    pre = "python/" if python else ""
    methods = ["fork", "spawn", "forkserver"] if python else \
        ["fork", "vfork", "posix_spawn", "spawn", "forkserver"]
    rss = sorted({int(m.group(1)) for n in run.figures
                  for m in [re.fullmatch(re.escape(pre) + r"spawn/[a-z_]+/rss_mib:(\d+)", n)]
                  if m})
    if not rss:
        return None
    q = "Start method (Python multiprocessing)" if python else "Start method (libmproc)"
    a = pick_best(run, q, [(m, "%sspawn/%s/rss_mib:%d" % (pre, m, rss[0])) for m in methods],
                  "p50_ns", True, CAVEAT_START_PY if python else CAVEAT_START_C,
                  "start -> reaped p50 with a %d MiB parent" % rss[0])
    if a is not None and len(rss) > 1:
        big = pick_best(run, q, [(m, "%sspawn/%s/rss_mib:%d" % (pre, m, rss[-1]))
                                 for m in methods], "p50_ns", True, None,
                        "with a %d MiB parent" % rss[-1])
        if big is not None and big["answer"] not in ("undecided", a["answer"]):
            a["why"] += "; with a %d MiB parent %s is the fastest (%s)" % (
                rss[-1], big["answer"], big["why"].split(": ", 1)[-1])
            a["figures"] += big["figures"]
    return a


def answer_pipe_or_queue(run, python):
    pre = "python/" if python else ""
    cands = [("Pipe", pre + "latency/conn_pipe/placement:cross_core"),
             ("Queue" if python else "Queue (pipe back end)",
              pre + "latency/pipe_queue/placement:cross_core")]
    if not python:
        cands.append(("Queue (ring back end)", "latency/ring_futex/placement:cross_core"))
    q = "Pipe or Queue for one-to-one messages (%s)" % ("Python" if python else "libmproc")
    return pick_best(run, q, cands, "p50_ns", True, CAVEAT_QUEUE,
                     "round trip p50 between two CPUs")


def answer_queue_backend(run):
    rx = re.compile(r"queue/(ring|pipe|mq|sysv)/bytes:(\d+)/producers:(\d+)/consumers:(\d+)")
    shapes = {}
    for n in run.figures:
        m = rx.fullmatch(n)
        if m and int(m.group(3)) > 1 and int(m.group(4)) > 1:
            key = (int(m.group(3)) * int(m.group(4)), -int(m.group(2)), m.group(3), m.group(4),
                   m.group(2))
            shapes.setdefault(key, []).append(m.group(1))
    shapes = {k: v for k, v in shapes.items() if len(v) >= 2}
    if not shapes:
        return None
    key = max(shapes)
    _, _, p, c, size = key
    cands = [(b, "queue/%s/bytes:%s/producers:%s/consumers:%s" % (b, size, p, c))
             for b in ("ring", "pipe", "mq", "sysv") if b in shapes[key]]
    return pick_best(run, "Queue back end for many-to-many (libmproc)", cands,
                     "msgs_per_second", False, CAVEAT_QUEUE + " POSIX mqueue and SysV queues "
                     "are bounded by kernel limits on message size and count.",
                     "%s B items, %s producers x %s consumers, items/s" % (size, p, c))


def answer_shared_state(run, python):
    pre = "python/" if python else ""
    value = pre + "shm/value/lock/procs:1"
    mgr = next((pre + "manager/%s/transport:unix" % op for op in ("value_get", "dict_get")
                if pre + "manager/%s/transport:unix" % op in run.figures), None)
    if value not in run.figures or mgr is None:
        return None
    q = "Shared state: Value/Array or a manager (%s)" % ("Python" if python else "libmproc")
    per_update = (lambda v: 1e9 / v)
    fv, fm = run.figures[value], run.figures[mgr]
    vm, vlo, vhi, vn = fig_ci(fv, "updates_per_second", per_update)
    figs = [_figure(value, "ns_per_update", vm, vlo, vhi)]
    mm, mlo, mhi, mn = fig_ci(fm, "p50_ns")
    figs.append(_figure(mgr, "p50_ns", mm, mlo, mhi))
    r, lo, hi, _ = ratio_of(run, fm, "p50_ns", fv, "updates_per_second", None, per_update)
    figs.append(_figure("%s / %s" % (mgr, value), "ratio", r, lo, hi))
    v = stats.verdict(lo, hi, 1.0, higher_is_better=True)
    cost = "a manager call costs %s one locked Value update (%s against %s)" % (
        fmt_ratio_ci(r, lo, hi), fmt_ci("p50_ns", mm, mlo, mhi, mn),
        fmt_ci("p50_ns", vm, vlo, vhi, vn))
    if v == "better":
        return _answer(q, "Value/Array (shared memory)", cost, figs, CAVEAT_SHARED)
    if v == "worse":
        return _answer(q, "a manager", cost, figs, CAVEAT_SHARED)
    why = ("too few repetitions for a 95 %% interval: %s" % cost) if lo is None else \
        ("the two cannot be told apart: %s" % cost)
    return _answer(q, "", why, figs, CAVEAT_SHARED, decided=False)


def answer_manager_tcp(run, python):
    pre = "python/" if python else ""
    op = next((o for o in ("value_get", "dict_get")
               if pre + "manager/%s/transport:tcp" % o in run.figures
               and pre + "manager/%s/transport:unix" % o in run.figures), None)
    if op is None:
        return None
    tcp, unix = (pre + "manager/%s/transport:%s" % (op, t) for t in ("tcp", "unix"))
    ft, fu = run.figures[tcp], run.figures[unix]
    q = "What a manager over TCP costs (%s)" % ("Python" if python else "libmproc")
    tm, tlo, thi, tn = fig_ci(ft, "p50_ns")
    um, ulo, uhi, un = fig_ci(fu, "p50_ns")
    r, lo, hi, _ = ratio_of(run, ft, "p50_ns", fu, "p50_ns")
    figs = [_figure(tcp, "p50_ns", tm, tlo, thi), _figure(unix, "p50_ns", um, ulo, uhi),
            _figure("%s / %s" % (tcp, unix), "ratio", r, lo, hi)]
    v = stats.verdict(lo, hi, 1.0, higher_is_better=True)
    cost = "a `%s` call over TCP (loopback) takes %s, %s a Unix-socket call (%s)" % (
        op, fmt_ci("p50_ns", tm, tlo, thi, tn), fmt_ratio_ci(r, lo, hi),
        fmt_ci("p50_ns", um, ulo, uhi, un))
    caveat = ("TCP is what lets a manager serve other hosts; between hosts the network's round "
              "trip adds to this loopback figure.")
    if v == "better":
        return _answer(q, "costlier than a Unix socket", cost, figs, caveat)
    if v == "worse":
        return _answer(q, "cheaper than a Unix socket", cost, figs, caveat)
    why = ("too few repetitions for a 95 %% interval: %s" % cost) if lo is None else \
        ("no difference the intervals can show: %s" % cost)
    return _answer(q, "", why, figs, caveat, decided=False)


def _curve_fig(family_name, p, key):
    return _figure(family_name, key, p.get(key), p.get(key + "_lo"), p.get(key + "_hi"))


def answer_pools(rec, python):
    """CPU pool size, I/O pool sizes, chunksize and 'cores - 1' for one side, from the
    recommendation (recommend.py: its own curves and per-task costs)."""
    side = rec.get("python") if python else rec
    if not side:
        return []
    who = "Python Pool/ProcessPoolExecutor" if python else "libmproc"
    pre = "python/" if python else ""
    out = []
    cpu = side.get("cpu")
    if cpu:
        name = "%spool/cpu/workers:%%d/task_ms:%d" % (pre, cpu["task_ms"])
        pts = {p["workers"]: p for p in cpu["curve"]}
        figs = [_curve_fig(name % w, pts[w], "tasks_per_second")
                for w in sorted({cpu["recommended_workers"], cpu["best_workers"]}) if w in pts]
        why = "%s; %d ms tasks" % (cpu["why"], cpu["task_ms"])
        if cpu.get("capped_by_budget"):
            why += "; capped at the %d usable CPUs" % rec["budget"]["usable"]
            frac = cpu.get("recommended_fraction_of_best")
            if frac is not None and frac < 1 - 0.02:
                why += (", which reach %.0f %% of the best median (more workers than CPUs "
                        "did better here)" % (100 * frac))
        out.append(_answer("CPU-bound pool size (%s)" % who,
                           "%d worker%s" % (cpu["recommended_workers"],
                                            "" if cpu["recommended_workers"] == 1 else "s"),
                           why, figs, CAVEAT_POOL,
                           decided=cpu.get("decided", False)))
        cm = side.get("cores_minus_one")
        if cm and cm.get("fraction_of_best") is not None:
            p = pts.get(cm["workers"])
            figs = [_curve_fig(name % cm["workers"], p, "tasks_per_second")] if p else []
            figs += [_curve_fig(name % cpu["best_workers"], pts[cpu["best_workers"]],
                                "tasks_per_second")]
            why = "%d worker%s (%d usable cores - 1): %s (%.0f %% of the best median)" % (
                cm["workers"], "" if cm["workers"] == 1 else "s",
                rec["budget"]["usable_cores"], cm["verdict"],
                100 * cm["fraction_of_best"])
            if not cm.get("decided") and not cm["verdict"].startswith("undecided"):
                why = "too few repetitions for a 95 % interval: " + why
            out.append(_answer("Is 'physical cores - 1' right here? (%s)" % who,
                               "yes" if cm["verdict"] == "right" else "no", why, figs, None,
                               decided=cm.get("decided", False)))
        elif cm:
            out.append(_answer("Is 'physical cores - 1' right here? (%s)" % who, "",
                               cm["verdict"], [], None, decided=False))
    io = side.get("io")
    if io:
        sizes = ", ".join("%d %% blocked: %d" % (round(float(k) * 100), v)
                          for k, v in io["by_blocking_fraction"].items())
        pts = {p["workers"]: p for p in io["curve"]}
        figs = []
        if io.get("max_efficient_workers") in pts:
            figs.append(_curve_fig("%spool/io/workers:%d/task_ms:%d" % (
                pre, io["max_efficient_workers"], io["task_ms"]),
                pts[io["max_efficient_workers"]], "efficiency"))
        why = "ceil(usable CPUs / (1 - blocked fraction)), bounded by %s" % (
            "the largest pool measured at >= 90 %% efficiency (%d workers, %d ms tasks)" % (
                io["max_efficient_workers"], io["task_ms"])
            if io.get("max_efficient_workers") else "nothing: no measured pool reached 90 %")
        if not io.get("decided"):
            few = any(p.get("efficiency_lo") is None for p in io["curve"]
                      if p.get("efficiency") is not None)
            why = ("too few repetitions for a 95 % interval: " if few else
                   "an efficiency interval straddles 90 %% (the sizes by the medians: %s): "
                   % sizes) + why
        out.append(_answer("I/O-bound pool size (%s)" % who, sizes, why, figs, None,
                           decided=io.get("decided", False)))
    ch = side.get("chunksize")
    if ch:
        parts, figs, decided, costly = [], [], True, []
        for api, e in ch.items():
            c1, c20 = e["chunksize_for_1ms_tasks"], e["chunksize_for_20ms_tasks"]
            decided = decided and e["decided_for_1ms_tasks"] and e["decided_for_20ms_tasks"]
            p1 = e["points"][0]
            figs.append(_figure("%spool_overhead/%s/chunksize:%d" % (pre, api, p1["chunksize"]),
                                "ns_per_task", p1["ns_per_task"], p1["ns_per_task_lo"],
                                p1["ns_per_task_hi"]))
            if len(e["points"]) == 1:       # no chunksize (apply_async, submit): the cost
                if c1 is None:
                    costly.append("%s %s per task" % (api, fmt_ns(p1["ns_per_task"])))
                continue
            parts.append("%s: chunksize %s for 1 ms tasks, %s for 20 ms" % (
                api, ">= %d" % c1 if c1 else "none measured is enough",
                ">= %d" % c20 if c20 else "none measured is enough"))
        why = ("the smallest chunksize whose per-task overhead (its interval's high end) stays "
               "under 1 %% of the task, from %s's own per-task cost" % who)
        if costly:
            why += "; one call per task costs more than 1 %% of a 1 ms task (%s): send " \
                   "bigger tasks or use map" % ", ".join(costly)
        if not decided:
            few = any(p["ns_per_task_lo"] is None for e in ch.values() for p in e["points"])
            why = ("too few repetitions for a 95 % interval: " if few else
                   "an interval reaches the 1 % limit: ") + why
        out.append(_answer("Chunksize (%s)" % who, "; ".join(parts) or "no chunksize measured",
                           why, figs, None, decided=decided))
    return out


def build_answers(run, rec, machine):
    """[answer] for the seed questions this run can speak to, in the order users ask."""
    out = []
    for fn in (lambda: answer_start_method(run, False), lambda: answer_start_method(run, True),
               lambda: answer_pipe_or_queue(run, False),
               lambda: answer_pipe_or_queue(run, True), lambda: answer_queue_backend(run),
               lambda: answer_shared_state(run, False), lambda: answer_shared_state(run, True),
               lambda: answer_manager_tcp(run, False), lambda: answer_manager_tcp(run, True)):
        a = fn()
        if a is not None:
            out.append(a)
    if rec is not None:
        out += answer_pools(rec, False) + answer_pools(rec, True)
    busy = machine.get("busy")
    for a in out:
        a["provisional"] = busy is not False
        if busy:
            a["why"] = "provisional (machine busy): " + a["why"]
    return out


def decide_summary(run):
    """Lines about decide.json (the decider stage): figures measured again until they decided,
    and those still undecided when its budget was spent; [] when absent."""
    doc = decide_doc(run)
    pairs = [p for p in doc.get("pairs") or [] if isinstance(p, dict)]
    ext = [p.get("what") or "%s / %s" % (p.get("a"), p.get("b"))
           for p in pairs if p.get("extended")]
    und = [p.get("what") or "%s / %s" % (p.get("a"), p.get("b"))
           for p in pairs if p.get("status") in ("undecided", "wide")]
    eq = [p.get("what") or "%s / %s" % (p.get("a"), p.get("b"))
          for p in pairs if p.get("status") == "equivalent"]
    if not pairs:
        return []
    tie = (" %d pair%s could not be told apart but differ%s by less than 5 %% (%s): not "
           "measured further." % (len(eq), "" if len(eq) == 1 else "s",
                                  "s" if len(eq) == 1 else "", "; ".join(eq))) if eq else ""
    if not ext and not und:
        return ["Adaptive repetitions (`decide.json`): every deciding pair decided in the "
                "main pass; none needed more." + tie]
    return ["Adaptive repetitions (`decide.json`, %.0f s of %g s spent): %d deciding pair%s "
            "measured again, interleaved%s; %d still undecided or wider than +-5 %%%s." % (
                doc.get("spent_s") or 0, doc.get("budget_s") or 0, len(ext),
                "" if len(ext) == 1 else "s", " (%s)" % "; ".join(ext) if ext else "",
                len(und), " (%s)" % "; ".join(und) if und else "") + tie]


def fmt_answer_figure(f):
    """'`name` field 283 µs [270 µs, 300 µs]' of one answer figure."""
    if f["field"] == "ratio":
        return "`%s` %s" % (f["name"], fmt_ratio_ci(f["value"], f["lo"], f["hi"]))
    field = "p50_ns" if f["field"] == "ns_per_update" else f["field"]
    v = fmt_value(field, f["value"])
    iv = "[%s, %s]" % (fmt_value(field, f["lo"]), fmt_value(field, f["hi"])) \
        if f["lo"] is not None else "(no interval)"
    return "`%s` %s %s %s" % (f["name"], f["field"], v, iv)


def section_answers(run, answers, machine):
    """What to use on this machine: each answer with its deciding figures and caveat."""
    out = []
    if machine.get("busy"):
        out += ["**Provisional**: the machine was busy while this ran (%s); every answer "
                "below may change on a quiet machine." % md_escape(machine["line"]), ""]
    elif machine.get("busy") is None:
        out += ["The machine's state was not recorded: the answers below are provisional "
                "(nothing says the machine was quiet).", ""]
    out += ["Each answer is decided only when the 95 % intervals of its deciding figures "
            "(medians over repetitions, distribution-free) support it; otherwise it says "
            "**undecided** and why.", ""]
    if not answers:
        out += ["No question can be answered from this run (the harnesses that measure them "
                "did not run).", ""]
    items = []
    for a in answers:
        ans = "**undecided**" if a["answer"] == "undecided" else "**%s**" % md_escape(a["answer"])
        if a.get("provisional") and a["answer"] != "undecided":
            ans += " (provisional)"
        subs = []
        figs = [fmt_answer_figure(f) for f in a["figures"] if f.get("value") is not None]
        if figs:
            subs.append("figures: " + "; ".join(figs))
        if a.get("caveat"):
            subs.append("mind: " + a["caveat"])
        items.append(("**%s**: %s. %s." % (a["question"], ans, md_escape(a["why"])), subs))
    out += bullets(items) + [""]
    out += decide_summary(run)
    if out[-1] != "":
        out.append("")
    return out


def answers_doc(answers, machine):
    """RUN/answers.json: the same answers, for `make verify` (compared by "question")."""
    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        return x
    return {"schema": "mproc-answers/1", "busy": machine.get("busy"),
            "machine": machine.get("line"),
            "answers": [{"question": a["question"], "answer": a["answer"], "why": a["why"],
                         "provisional": a.get("provisional", True),
                         "figures": [{k: clean(f[k]) for k in ("name", "field", "value", "lo",
                                                               "hi")} for f in a["figures"]]}
                        for a in answers]}


# ------------------------------------------------------------------------------------------
# [targets] the project's own performance targets: RUN/targets.md, for developers

def _target(run, what, a, b, field, op, threshold, fields_b=None):
    """One target row: median(a.field) / median(b.field) against `op threshold` ('<=' or
    '>='), with its interval; None when either figure is missing."""
    fa, fb = run.figures.get(a), run.figures.get(b)
    if fa is None or fb is None:
        return None
    fb_field = next((f for f in (fields_b or [field]) if fb.value(f) is not None), field)
    fa_field = field if fa.value(field) is not None else fb_field
    if not same_placement(a, b):
        return {"what": what, "a": a, "b": b, "target": "%s %g" % (op, threshold),
                "ratio": None, "lo": None, "hi": None, "how": None,
                "outcome": "not compared",
                "why": "placements differ (%s: %s, %s: %s)" % (
                    a, placement_of(a), b, placement_of(b))}
    r, lo, hi, how = ratio_of(run, fa, fa_field, fb, fb_field)
    v = stats.verdict(lo, hi, threshold, higher_is_better=(op == ">="))
    outcome = {"better": "met", "worse": "missed"}.get(v, "undecided")
    if r is None:
        outcome, why = "undecided", "no finite figures"
    elif lo is None:
        why = "too few repetitions for a 95 %% interval (%d and %d; 6 needed)" % (
            fa.repetitions, fb.repetitions)
    elif outcome == "undecided":
        why = "the interval straddles %g" % threshold
    else:
        why = ""
    return {"what": what, "a": a, "b": b, "target": "%s %g" % (op, threshold), "ratio": r,
            "lo": lo, "hi": hi, "how": how, "outcome": outcome, "why": why}


# The targets whose two figures come from different harnesses (run a minute or more apart,
# never interleaved): on a machine whose speed changes for seconds at a time, a bootstrap of
# their medians can straddle anything. The decider (decide.py) measures these again in
# back-to-back pairs, after the answers' and the headline's pairs, and the row then takes its
# interval. (decide.json id, what, A, B, target): times, A / B <= target.
CROSS_HARNESS_TARGETS = [
    ("target/fork_vs_fork_exit", "`fork` start->reap / the machine's fork + exit + reap",
     "spawn/fork/rss_mib:0", "baseline/fork_exit", 1.1),
    ("target/ring_vs_cacheline", "ring round trip / cache-line round trip (cross_core)",
     "latency/ring_spin/placement:cross_core", "baseline/cacheline_rtt/placement:cross_core",
     1.3),
]


def target_rows(run):
    """Every target this run can check, in the order of the issues that set them."""
    rows = []
    time_fields = ["p50_ns", "real_time"]
    cross = {pid: (what, a, b, thr) for pid, what, a, b, thr in CROSS_HARNESS_TARGETS}

    def cross_row(pid, fields_b=None):
        what, a, b, thr = cross[pid]
        return _target(run, what, a, b, "p50_ns", "<=", thr, fields_b)

    rows.append(cross_row("target/fork_vs_fork_exit", time_fields))
    rss = sorted({int(m.group(1)) for n in run.figures
                  for m in [re.fullmatch(r"spawn/[a-z_]+/rss_mib:(\d+)", n)] if m})
    if 512 in rss:
        for method in ("vfork", "posix_spawn", "spawn", "forkserver"):
            rows.append(_target(run, "`%s` start, 512 MiB parent / 0 MiB" % method,
                                "spawn/%s/rss_mib:512" % method, "spawn/%s/rss_mib:0" % method,
                                "p50_ns", "<=", 1.2))
    for tr, place in (("unix", ""), ("tcp", ""), ("unix", "/placement:cross_core")):
        # The manager's own overhead over the socket it would use: the shm:off twin where
        # a local client would otherwise take the shared-memory channel, which makes no
        # socket round trip at all (and would meet this target by skipping it).
        ours = "manager/dict_get/transport:%s%s" % (tr, place)
        if ours + "/shm:off" in run.figures:
            ours += "/shm:off"
        rows.append(_target(run, "manager `dict_get` / raw socket round trip (%s%s)" % (
            tr, ", cross_core" if place else ""), ours,
            "manager/raw_rtt/transport:%s%s" % (tr, place), "p50_ns", "<=", 1.5))
    for tr in ("unix", "tcp"):
        ours = next((n for n in ("manager/dict_get/transport:%s/placement:unpinned" % tr,
                                 "manager/dict_get/transport:%s" % tr) if n in run.figures),
                    None)
        if ours:
            rows.append(_target(run, "CPython's Manager `dict_get` / ours (%s)" % tr,
                                "python/manager/dict_get/transport:%s" % tr, ours, "p50_ns",
                                ">=", 5))
    rows.append(cross_row("target/ring_vs_cacheline"))
    for place in ("cross_core", "same_core"):
        rows.append(_target(run, "`conn_pipe` / `raw_pipe` throughput at 64 KiB (%s)" % place,
                            "pipe/conn_pipe/bytes:65536/placement:%s" % place,
                            "pipe/raw_pipe/bytes:65536/placement:%s" % place,
                            "bytes_per_second", ">=", 0.95))
    return [r for r in rows if r is not None]


def build_targets(run, machine):
    c = run.context
    out = ["# mproc targets: %s, %s" % (c.get("host", "?"), c.get("started_utc", "?")), "",
           "The project's own performance targets, checked on this run, for developers (the "
           "user's answers are in [report.md](report.md)). Each ratio has a 95 % interval: "
           "*decide.json* where the decider measured the pair again in back-to-back pairs (its "
           "final interval), else a *bootstrap* of the ratio of medians (*interleaved* where "
           "both figures come from one harness whose repetitions were shuffled together). "
           "**met** or "
           "**missed** only when the whole interval is on one side of the target; otherwise "
           "**undecided**.", ""]
    if machine.get("busy"):
        out += ["**Provisional**: the machine was busy (%s)." % md_escape(machine["line"]), ""]
    elif machine.get("busy") is None:
        out += ["Machine state not recorded (no `noise.json`).", ""]
    rows = target_rows(run)
    if not rows:
        return "\n".join(_doc.render_md_items(out + ["No target can be checked from this run.",
                                                      ""]))
    trs = []
    for t in rows:
        oc = t["outcome"]
        trs.append(("%s (`%s` / `%s`)" % (t["what"], t["a"], t["b"]), t["target"],
                    fmt_ratio_ci(t["ratio"], t["lo"], t["hi"]),
                    ("**%s**" % oc if oc in ("met", "missed") else oc)
                    + (": " + t["why"] if t["why"] else ""),
                    "—" if t["ratio"] is None else t["how"]))
    out += table(["target", "wanted", "ratio [95 % interval]", "outcome", "interval"], trs)
    rss = {int(m.group(1)) for n in run.figures
           for m in [re.fullmatch(r"spawn/[a-z_]+/rss_mib:(\d+)", n)] if m}
    if rss and 512 not in rss:
        out += ["", "The start-cost targets (512 MiB parent / 0 MiB <= 1.2) need "
                "`PROFILE=full`, which measures a 512 MiB parent."]
    out.append("")
    return "\n".join(_doc.render_md_items(out))


# ------------------------------------------------------------------------------------------
# [compare] headline table (mproc vs CPython vs the machine) and index.html

# (what, mproc name, CPython name (None: the mproc name under python/), fields tried in order,
#  reference name for the baseline ratio or None). "{W}" in a name is the worker count: the
#  usable budget when both sides have it, else the largest count both have.
HEADLINE = [
    ("start a process: fork (start -> reaped)", "spawn/fork/rss_mib:0", None,
     ["p50_ns", "real_time"], "baseline/fork_exit"),
    ("start a process: spawn", "spawn/spawn/rss_mib:0", None,
     ["p50_ns", "real_time"], "baseline/fork_exit"),
    ("start a process: forkserver", "spawn/forkserver/rss_mib:0", None,
     ["p50_ns", "real_time"], "baseline/fork_exit"),
    ("Pipe() round trip, cross core", "latency/conn_pipe/placement:cross_core", None,
     ["p50_ns", "real_time"], "baseline/pipe_rtt/placement:cross_core"),
    ("Pipe() throughput, 1 MiB messages", "pipe/conn_pipe/bytes:1048576/placement:cross_core",
     None, ["bytes_per_second"], "baseline/memcpy/bytes:1048576"),
    ("Queue round trip, cross core", "latency/pipe_queue/placement:cross_core", None,
     ["p50_ns", "real_time"], "baseline/pipe_rtt/placement:cross_core"),
    ("Queue throughput, 64 B items, 1 producer 1 consumer",
     "queue/pipe/bytes:64/producers:1/consumers:1", None, ["msgs_per_second"], None),
    ("Lock handoff, cross core", "latency/lock_handoff/placement:cross_core", None,
     ["p50_ns", "real_time"], "baseline/futex_rtt/placement:cross_core"),
    ("Semaphore handoff, cross core", "latency/semaphore/placement:cross_core", None,
     ["p50_ns", "real_time"], "baseline/futex_rtt/placement:cross_core"),
    ("Event set -> wake, cross core", "latency/event/placement:cross_core", None,
     ["p50_ns", "real_time"], "baseline/futex_rtt/placement:cross_core"),
    ("Value with lock, 2 processes", "shm/value/lock/procs:2", None,
     ["updates_per_second"], None),
    ("shared_memory create, 1 MiB", "shm/create/named/bytes:1048576", None,
     ["p50_ns", "real_time"], None),
    ("Manager dict get, Unix socket", "manager/dict_get/transport:unix", None,
     ["p50_ns", "real_time"], "manager/raw_rtt/transport:unix"),
    ("Manager dict get, TCP", "manager/dict_get/transport:tcp", None,
     ["p50_ns", "real_time"], "manager/raw_rtt/transport:tcp"),
    ("Pool apply_async, cost per task", "pool_overhead/apply_async/chunksize:1", None,
     ["ns_per_task"], "baseline/pipe_rtt/placement:cross_core"),
    ("Pool map, chunksize 1000, cost per task", "pool_overhead/map/chunksize:1000", None,
     ["ns_per_task"], None),
    ("Pool CPU-bound speedup, {W} workers", "pool/cpu/workers:{W}/task_ms:20", None,
     ["speedup"], None),
    ("Pool: error after a worker is SIGKILLed", "pool/failure/running",
     "python/pool/failure/pool_sigkill", ["p50_ns", "real_time"], None),
]
# What a reader must know to read a headline row right: printed under the table for the rows
# present: a ratio that goes CPython's way for a reason the design chose says so here.
HEADLINE_NOTES = {
    "shm/create/named/bytes:1048576":
        "shared_memory create: mproc reserves the segment's pages at creation "
        "(posix_fallocate), so a full or tiny /dev/shm (Docker gives 64 MiB) fails there with "
        "-ENOSPC; CPython's SharedMemory only sets the size, so its create is cheaper and a "
        "later write to an unbacked page kills the process with SIGBUS.",
}

def _headline_pick(fig, fields):
    """(field, Stats) of the first field with a finite median, or (None, None)."""
    if fig is None:
        return None, None
    for f in fields:
        s = fig.value(f)
        if s is not None and s.n > 0 and math.isfinite(s.median):
            return f, s
    return None, None


def _headline_fmt(field, fig):
    """A figure with its 95 % interval ('(n reps: no interval)' with too few repetitions);
    CPython's bounded hang as 'hang (> T s)'."""
    if fig is not None and fig.median("hang", 0) and fig.median("hang", 0) > 0:
        return "hang (> %s s)" % ("%g" % fig.median("bound_s") if math.isfinite(
            fig.median("bound_s")) else "?")
    if field is None or fig is None:
        return "—"
    return fmt_ci(field, *fig_ci(fig, field))


def _headline_workers(run, template, pyname):
    """The worker count for a '{W}' name: the budget when both sides have it, else the largest
    count both have (else the largest mproc has)."""
    rx = re.compile(re.escape(template).replace(re.escape("{W}"), r"(\d+)"))
    figs = run.figures
    mine = {int(m.group(1)) for n in figs for m in [rx.fullmatch(n)] if m}
    theirs = {int(m.group(1)) for n in figs if n.startswith("python/")
              for m in [rx.fullmatch(n[len("python/"):])] if m}
    both = mine & theirs
    budget = (run.context.get("budget") or {}).get("usable")
    if isinstance(budget, int) and budget in both:
        return budget
    if both:
        return max(both)
    return max(mine or theirs) if mine or theirs else None


def headline_rows(run):
    """[(what, mproc cell, CPython cell, ratio cell, verdict, mproc/baseline,
    CPython/baseline, baseline name)] for the HEADLINE entries with an mproc or CPython
    figure in the run. The ratio is how many times faster mproc is, with its 95 % interval;
    the verdict is "faster", "slower" or "undecided" from that interval; two figures measured
    at different placements are not compared (mproc's unpinned twin is used where it
    exists)."""
    figs = run.figures
    rows = []
    for what, name, pyname, fields, ref in HEADLINE:
        if "{W}" in name:
            w = _headline_workers(run, name, pyname)
            if w is None:
                continue
            name, what = name.replace("{W}", str(w)), what.replace("{W}", str(w))
        pyname = pyname or "python/" + name
        if not same_placement(name, pyname) and name + "/placement:unpinned" in figs:
            name = name + "/placement:unpinned"
        mfig, pfig = figs.get(name), figs.get(pyname)
        mf, ms = _headline_pick(mfig, fields)
        pf, ps = _headline_pick(pfig, fields)
        if ms is None and ps is None:
            continue
        ratio, verdict = "—", "—"
        hung = pfig is not None and pfig.median("hang", 0) > 0
        if hung and ms is not None:
            ratio, verdict = "CPython hangs", "mproc reports the error"
        elif ms is not None and ps is not None and not same_placement(name, pyname):
            ratio = "— (placements differ: mproc %s, CPython %s)" % (
                placement_of(name), placement_of(pyname))
            verdict = "not compared"
        elif (ms is not None and ps is not None and _fields.comparable(mf, pf) and ms.median > 0
              and ps.median > 0):
            if _fields.higher_is_better(mf):
                r, lo, hi, _ = ratio_of(run, mfig, mf, pfig, pf)
            else:
                r, lo, hi, _ = ratio_of(run, pfig, pf, mfig, mf)
            if r is not None:
                if r >= 1:
                    ratio = "%.3gx faster" % r
                    iv = (lo, hi)
                else:
                    ratio = "%.3gx slower" % (1 / r)
                    iv = (1 / hi, 1 / lo) if lo is not None and lo > 0 and hi > 0 else (None,
                                                                                        None)
                ratio += " [%.3g, %.3g]" % iv if iv[0] is not None else " (no interval)"
                v = stats.verdict(lo, hi, 1.0, higher_is_better=True)
                verdict = {"better": "faster", "worse": "slower"}.get(v, "undecided")
        bm, bp = "—", "—"
        rf, rs = _headline_pick(figs.get(ref), fields + ["p50_ns", "real_time"]) \
            if ref else (None, None)
        if rs is not None and rs.median > 0:
            if ms is not None and _fields.comparable(mf, rf):
                bm = "%.3gx" % (ms.median / rs.median)
            if ps is not None and _fields.comparable(pf, rf) and not hung:
                bp = "%.3gx" % (ps.median / rs.median)
        rows.append(("%s (`%s`)" % (what, name), _headline_fmt(mf, mfig),
                     _headline_fmt(pf, pfig), ratio, verdict, bm, bp,
                     "`%s`" % ref if ref and rs is not None else "—"))
    return rows


# A line of a harness log that names an error: Python's exception line, or a C harness's.
_ERROR_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b.*"
                         r"|.*\b(?:error|ERROR|Error|FAILED|fatal|Assertion)\b.*)$")


def harness_error_line(run, name):
    """The first line of logs/<name>.log that says what went wrong (a Python traceback's
    exception line first), or None."""
    try:
        with open(os.path.join(run.path, "logs", name + ".log"), encoding="utf-8",
                  errors="replace") as f:
            lines = [l.rstrip("\n") for l in f]
    except OSError:
        return None
    body = [l for l in lines if l.strip() and not l.startswith(("$ ", "# exit status"))]
    for i, l in enumerate(body):
        if l.startswith("Traceback (most recent call last)"):
            for m in body[i + 1:]:
                if not m.startswith((" ", "\t")):
                    return m.strip()
    for l in body:
        if _ERROR_LINE.match(l.strip()):
            return l.strip()
    return body[-1].strip() if body else None


def python_absent_reason(run):
    """Why the CPython column is empty, as it happened: not selected, failed (with the first
    line of its error), or not started."""
    hs = run.context.get("harnesses") or {}
    failed = {f.get("name"): f for f in hs.get("failed") or [] if isinstance(f, dict)}
    skipped = {x.get("name"): x for x in hs.get("skipped") or [] if isinstance(x, dict)}
    if "python" in failed:
        err = harness_error_line(run, "python")
        return ("The CPython comparators **failed** in this run (%s%s; log: "
                "[logs/python.log](logs/python.log)): the CPython column is empty." % (
                    failed["python"].get("reason", "failed"),
                    ": `%s`" % err if err else ""))
    if "python" in skipped:
        return ("The CPython comparators did not run in this run (%s): the CPython column is "
                "empty." % skipped["python"].get("reason", "skipped"))
    if "python" in (hs.get("selected") or []):
        return ("The CPython comparators did not run to a result in this run (selected, but "
                "no `python.json` could be read; see [logs/python.log](logs/python.log)): the "
                "CPython column is empty.")
    return ("The CPython comparators did not run in this run (not selected: `ONLY=` without "
            "`python`, or `MPROC_BENCH_PYTHON=0`): the CPython column is empty.")


def section_headline(run):
    """The headline table: each primitive's mproc figure, CPython's, their ratio, and each as
    a multiple of the machine's own limit measured in the same run."""
    rows = headline_rows(run)
    has_py = "python" in run.harnesses
    if not rows:
        return ["No headline figures in this run (neither the harnesses nor the CPython "
                "comparators that measure them ran).", ""] + (
                    [python_absent_reason(run), ""] if not has_py else [])
    out = ["Medians over repetitions with their 95 % intervals in brackets, measured on this "
           "machine in this run (times: p50 of individual operations where the harness "
           "samples them). *ratio*: how much faster mproc is than CPython's "
           "`multiprocessing` for the same operation, with its interval (a bootstrap of the "
           "ratio of medians: the two sides did not run interleaved); *verdict*: faster or "
           "slower only when the whole interval says so, else undecided; both sides at the "
           "same placement, or not compared. *× baseline*: the figure as a multiple of the "
           "machine's own limit (the reference named in the last column; for throughput, a "
           "fraction of it).", ""]
    if not has_py:
        out += [python_absent_reason(run), ""]
    out += table(["primitive", "mproc", "CPython", "ratio", "verdict", "mproc × baseline",
                  "CPython × baseline", "baseline"], rows)
    notes = [n for k, n in HEADLINE_NOTES.items() if any("(`%s`)" % k in r[0] for r in rows)]
    if notes:
        out += [""] + bullets(notes)
    return out + [""]


def attach_plots(d, run_path, owners):
    """Give each plot under RUN/plots/ to the section it belongs with: owners maps a plot id
    (registry.py's "id", the file stem before ".gnuplot"/".mpl") to a section title; the
    others go to a last "Other plots" section. Returns the number of plots attached."""
    by_title = {}
    for s in d.sections:
        by_title[s.title] = s
        for sub in s.subsections:
            by_title.setdefault(sub.title, sub)
    rest = []
    plots = _doc.plot_files(run_path)
    for p in plots:
        title = owners.get(p.stem.rsplit("/", 1)[-1].split(".", 1)[0])
        if title in by_title:
            by_title[title].plots.append(p)
        else:
            rest.append(p)
    if rest:
        d.section("Other plots", plots=rest)
    return len(plots)


def plot_owners(run):
    """{plot id: section title} for a run: each registry plot belongs with the first of its
    harnesses that has a section (the CPython-only runs' plots with "python")."""
    out = {}
    for spec in registry.PLOTS:
        hs = [spec["harness"]] if isinstance(spec["harness"], str) else list(spec["harness"])
        for h in hs + ["python"]:
            if h in run.harnesses:
                out[spec["id"]] = h
                break
    return out


def write_index(run, d):
    """RUN/index.html from the document report.md was rendered from. Static."""
    return files.write_text(os.path.join(run.path, "index.html"), _doc.render_html(
        d, note="The same as [report.md](report.md); each plot links to its SVG."))


def manager_section(run, h):
    """Every figure (generic table), then the ratios: a proxy call over the raw socket round
    trip at the same placement, and the bounded spin's gain (spin:off over spin). The targets
    on them (and CPython's Manager against ours) are in targets.md, with intervals."""
    lines, unstable = generic_section(run, h)
    figs = run.figures

    def p50(name):
        f = figs.get(name)
        v = f and (f.median("p50_ns", None) or f.median("real_time", None))
        return v if v and math.isfinite(v) and v > 0 else None

    ratios = []
    for tr, place in (("unix", ""), ("tcp", ""), ("unix", "/placement:cross_core")):
        where = "%s, %s" % (tr, place.split(":")[1] if place else "same_core")
        call = p50("manager/dict_get/transport:%s%s" % (tr, place))
        raw = p50("manager/raw_rtt/transport:%s%s" % (tr, place))
        off = p50("manager/dict_get/transport:%s%s/spin:off" % (tr, place))
        if call and raw:
            ratios.append("`dict_get` / `raw_rtt` (%s): %.2fx" % (where, call / raw))
        if call and off:
            ratios.append("`dict_get` spin:off / spin (%s): %.2fx" % (where, off / call))
    if ratios:
        lines += ["", "Ratios of p50 round trips (targets, and CPython's Manager against ours: "
                  "[targets.md](targets.md)):", ""]
        lines += bullets(ratios)
    return lines, unstable


# [conn] the transports of bench_pipe in the order of bench_conn.h (floors first).
PIPE_TRANSPORTS = ["raw_pipe", "framed_pipe", "conn_pipe", "conn_stream", "conn_seqpacket"]
PIPE_NAME = re.compile(r"pipe/([a-z_]+)/bytes:(\d+)/placement:([a-z_]+)")


def _pipe_key(fig):
    """Sort key of a pipe figure: transport (bench_conn.h order), size, placement; the file's
    order is shuffled when the repetitions were interleaved."""
    m = PIPE_NAME.fullmatch(fig.name)
    if not m:
        return (len(PIPE_TRANSPORTS) + 1, 0, fig.name)
    tr = m.group(1)
    return (PIPE_TRANSPORTS.index(tr) if tr in PIPE_TRANSPORTS else len(PIPE_TRANSPORTS),
            int(m.group(2)), m.group(3))


def pipe_ratios(figs, bytes_=65536):
    """[(placement, conn/raw, conn/framed, framed/raw)] of median bytes_per_second at one
    size, per placement where conn_pipe and one of the floors have figures (None: missing)."""
    def bps(tr, place):
        f = figs.get("pipe/%s/bytes:%d/placement:%s" % (tr, bytes_, place))
        v = f.median("bytes_per_second", None) if f is not None else None
        return v if v and math.isfinite(v) and v > 0 else None

    out = []
    for place in ("cross_core", "same_core"):
        raw, framed, conn = (bps(t, place) for t in ("raw_pipe", "framed_pipe", "conn_pipe"))
        if not (conn and (raw or framed)) and not (raw and framed):
            continue
        out.append((place, conn / raw if conn and raw else None,
                    conn / framed if conn and framed else None,
                    framed / raw if framed and raw else None))
    return out


def pipe_section(run, h):
    """Every figure (generic table, in transport/size/placement order), then issue 5's ratio
    at 64 KiB per placement, conn_pipe / raw_pipe (its target is in targets.md), split into its two
    factors: framed_pipe / raw_pipe (what a length prefix sent in one writev per frame costs)
    and conn_pipe / framed_pipe (mproc_conn against that: its own code, less what its send
    strategy wins back; across CPUs it writes without waiting first, conn.c)."""
    lines, unstable = generic_section(run, h, sorted(h.figures.values(), key=_pipe_key))
    rows = []
    for place, cr, cf, fr in pipe_ratios(h.figures):
        rows.append(("`%s`" % place,
                     "%.3fx" % cr if cr is not None else "—",
                     "%.3fx" % cf if cf is not None else "—",
                     "%.3fx" % fr if fr is not None else "—"))
    if rows:
        inter = h.context.get("mproc_random_interleaving")
        lines += ["", "Throughput ratios at 64 KiB, of median `bytes_per_second`; the "
                  "repetitions ran %s:" % ("randomly interleaved in time" if inter == "true"
                                          else "back to back"), ""]
        lines += table(["placement", "conn_pipe / raw_pipe (target: [targets.md](targets.md))",
                        "conn_pipe / framed_pipe (mproc_conn against one writev per frame)",
                        "framed_pipe / raw_pipe (one writev per frame against a bare pipe)"],
                       rows)
    return lines, unstable


# harness name -> function(run, HarnessResult) -> (markdown lines, [unstable names])
SECTIONS = {
    "baseline": baseline_section,
    # [spawn] [pipe] [queue] [latency] [shm] [manager] [pool] [python]: add entries here.
    "spawn": spawn_section,
    "manager": manager_section,
    "pipe": pipe_section,
}


def section_recommendation(run, rec):
    """The pool sizes for this machine (recommend.py, as mproc-recommend prints them),
    for libmproc and for CPython's pools, and the CPU-bound curves with their intervals."""
    if not any(k in rec for k in ("cpu", "io", "chunksize", "python")):
        return []
    out = ["From this run's pool curves (`mproc-recommend %s` prints it again; "
           "`recommendation.json` holds the evidence):" % md_escape(run.path), ""]
    out += code(recommend.render_text(rec).splitlines()) + [""]
    for who, side in (("libmproc", rec), ("Python", rec.get("python") or {})):
        cpu = side.get("cpu")
        if not cpu or not cpu.get("curve"):
            continue
        out += ["%s CPU-bound curve (%s ms tasks):" % (who, cpu.get("task_ms")), ""]
        rows = []
        for p in cpu["curve"]:
            iv = "[%s, %s]" % (fmt_num(p["tasks_per_second_lo"]),
                               fmt_num(p["tasks_per_second_hi"])) \
                if p.get("tasks_per_second_lo") is not None else "no interval"
            rows.append(["%d" % p["workers"], fmt_num(p.get("tasks_per_second")), iv,
                         "%.2f" % p["speedup"] if p.get("speedup") is not None else "—",
                         "%.2f" % p["efficiency"] if p.get("efficiency") is not None else "—"])
        out += table(["workers", "tasks/s", "95 % interval", "speedup", "efficiency"], rows)
        out.append("")
    return out


# ------------------------------------------------------------------------------------------
# [devshm] Without /dev/shm: what works where /dev/shm is missing, read-only or too small
# (AWS Lambda, Docker), from the two capability probes the driver ran (context.json "devshm":
# bench/devshm_probe.c and bench/python/mp_bench.py --probe) and this run's figures.

# (label, probe key, [mproc figure names], [CPython figure names], fields tried in order)
DEVSHM_ROWS = [
    ("Process, fork", "process/fork", ["spawn/fork/rss_mib:0"],
     ["python/spawn/fork/rss_mib:0"], ["p50_ns", "real_time"]),
    ("Process, vfork", "process/vfork", ["spawn/vfork/rss_mib:0"], [], ["p50_ns", "real_time"]),
    ("Process, posix_spawn", "process/posix_spawn", ["spawn/posix_spawn/rss_mib:0"], [],
     ["p50_ns", "real_time"]),
    ("Process, spawn", "process/spawn", ["spawn/spawn/rss_mib:0"],
     ["python/spawn/spawn/rss_mib:0"], ["p50_ns", "real_time"]),
    ("Process, forkserver", "process/forkserver", ["spawn/forkserver/rss_mib:0"],
     ["python/spawn/forkserver/rss_mib:0"], ["p50_ns", "real_time"]),
    ("Pipe (round trip)", "pipe", ["latency/conn_pipe/placement:cross_core",
                                   "latency/conn_pipe/placement:same_core"],
     ["python/latency/conn_pipe/placement:cross_core",
      "python/latency/conn_pipe/placement:same_core"], ["p50_ns", "real_time"]),
    ("Queue, pipe back end (CPython's Queue)", "queue/pipe",
     ["queue/pipe/bytes:64/producers:1/consumers:1"],
     ["python/queue/pipe/bytes:64/producers:1/consumers:1"], ["msgs_per_second"]),
    ("Queue, ring back end", "queue/ring", ["queue/ring/bytes:64/producers:1/consumers:1"], [],
     ["msgs_per_second"]),
    ("Queue, POSIX mqueue back end", "queue/mq", ["queue/mq/bytes:64/producers:1/consumers:1"],
     [], ["msgs_per_second"]),
    ("Queue, SysV back end", "queue/sysv", ["queue/sysv/bytes:64/producers:1/consumers:1"], [],
     ["msgs_per_second"]),
    ("SimpleQueue", "simple_queue", ["queue/pipe/bytes:64/producers:1/consumers:1"],
     ["python/queue/simple_pipe/bytes:64/producers:1/consumers:1"], ["msgs_per_second"]),
    ("JoinableQueue", "joinable_queue", [], [], []),
    ("Lock (handoff)", "lock", ["latency/lock_handoff/placement:cross_core"],
     ["python/latency/lock_handoff/placement:cross_core"], ["p50_ns", "real_time"]),
    ("Semaphore (handoff)", "semaphore", ["latency/semaphore/placement:cross_core"],
     ["python/latency/semaphore/placement:cross_core"], ["p50_ns", "real_time"]),
    ("Event (set -> wake)", "event", ["latency/event/placement:cross_core"],
     ["python/latency/event/placement:cross_core"], ["p50_ns", "real_time"]),
    ("Condition", "condition", [], [], []),
    ("Barrier", "barrier", ["latency/barrier/procs:2"], [], ["p50_ns", "real_time"]),
    ("Value (with lock)", "value", ["shm/value/lock/procs:1"], ["python/shm/value/lock/procs:1"],
     ["updates_per_second"]),
    ("Array", "array", [], [], []),
    ("shared_memory, named (in /dev/shm)", "shared_memory", ["shm/create/named/bytes:4096"],
     ["python/shm/create/named/bytes:4096"], ["p50_ns", "real_time"]),
    ("shared memory in a memfd", "shared_memory/memfd", ["shm/create/memfd/bytes:4096"], [],
     ["p50_ns", "real_time"]),
    ("shared memory, anonymous", "shared_memory/anon", ["shm/create/anon/bytes:4096"], [],
     ["p50_ns", "real_time"]),
    ("shared_memory bigger than /dev/shm's free space", "shared_memory/oversize", [], [], []),
    ("Manager (dict get, Unix socket)", "manager", ["manager/dict_get/transport:unix"],
     ["python/manager/dict_get/transport:unix"], ["p50_ns", "real_time"]),
    ("Pool (apply_async, cost per task)", "pool", ["pool_overhead/apply_async/chunksize:1"],
     ["python/pool_overhead/apply_async/chunksize:1"], ["ns_per_task"]),
    ("futures (ProcessPoolExecutor submit, cost per task)", "futures",
     ["pool_overhead/submit/chunksize:1"], ["python/pool_overhead/submit/chunksize:1"],
     ["ns_per_task"]),
]

DEVSHM_HOWTO = ("`make bench NO_DEV_SHM=1` runs the whole suite with /dev/shm an empty "
                "read-only directory (as on AWS Lambda), `NO_DEV_SHM=tiny` with a 64 MiB one "
                "(Docker's default), in a private mount namespace (root, or unprivileged user "
                "namespaces).")


def _devshm_fig(run, names, fields):
    """(field, Stats, name) of the first of names with a figure in this run."""
    for n in names:
        f, st = _headline_pick(run.figures.get(n), fields)
        if st is not None:
            return f, st, n
    return None, None, None


def _devshm_cell(probe, key, side):
    """One side's cell: works (on what) / fails with its error / not probed."""
    if not isinstance(probe, dict) or "primitives" not in probe:
        err = probe.get("error") if isinstance(probe, dict) else None
        return "not probed%s" % (" (%s)" % err if err else "")
    r = probe["primitives"].get(key)
    if r is None:
        return "no such primitive" if side == "cpython" else "not probed"
    if r.get("ok"):
        return "works" + (" (%s)" % r["on"] if r.get("on") else "")
    return "**fails**: `%s`" % r.get("error", "?")


def section_without_devshm(run):
    """Without /dev/shm: a table of primitives when this run's /dev/shm was unusable (real or
    simulated), else one line on how to produce it."""
    out = []
    d = run.context.get("devshm")
    seen = d.get("seen") if isinstance(d, dict) else None
    if not isinstance(seen, dict) or seen.get("state") in (None, "ok"):
        free = seen.get("free_bytes") if isinstance(seen, dict) else None
        return out + ["/dev/shm was usable in this run%s. %s" % (
            " (%s free)" % fmt_bytes(free) if isinstance(free, int) else "", DEVSHM_HOWTO), ""]
    probe = d.get("probe") or {}
    mp, py = probe.get("mproc"), probe.get("cpython")
    how = ("simulated: %s (%s)" % (d.get("simulates"), d.get("how") or "a private mount "
                                   "namespace") if d.get("simulated") else "as found")
    state = seen.get("state")
    if state == "too small":
        state = "too small for the suite (%s free, %s needed)" % (
            fmt_bytes(seen.get("free_bytes") or 0), fmt_bytes(seen.get("need_bytes") or 0))
    out.append("In this run %s was **%s** (%s). Each primitive was tried once in a process of "
               "its own by both sides (`mproc-devshm-probe`, `mp_bench.py --probe`); the "
               "figures are this run's, where the benchmark ran." % (
                   seen.get("path", "/dev/shm"), state, how))
    out.append("")

    def works(side, key):
        x = side.get("primitives", {}).get(key) if isinstance(side, dict) else None
        return None if x is None else bool(x.get("ok"))

    def names(side, want):
        """Short names of the primitives whose probe answered want, Process methods grouped."""
        procs = [k.split("/", 1)[1] for _, k, *_ in DEVSHM_ROWS
                 if k.startswith("process/") and works(side, k) is want]
        out, seen = (["Process (%s)" % ", ".join(procs)] if procs else []), set()
        for label, key, *_ in DEVSHM_ROWS:
            short = label.split(" (")[0].split(",")[0]
            if key.startswith("process/") or key == "shared_memory/oversize" \
                    or works(side, key) is not want or short in seen:
                continue
            seen.add(short)
            out.append(short)
        return out

    advice = []
    if isinstance(py, dict) and names(py, False):
        errs = [x.get("error") for x in py.get("primitives", {}).values()
                if isinstance(x, dict) and not x.get("ok") and x.get("error")]
        advice.append("**What to use here (AWS Lambda and the like).** With CPython only %s "
                      "work; %s fail (`%s`): start workers with `multiprocessing.Process`, give "
                      "each a `Pipe()`, and keep shared state in a `Manager` or in the "
                      "messages." % (", ".join(names(py, True)) or "nothing",
                                     ", ".join(names(py, False)),
                                     errs[0].split(": '")[0] if errs else "?"))
    if isinstance(mp, dict) and "primitives" in mp:
        bad = names(mp, False)
        advice.append("With libmproc %s (memfd, anonymous shared mappings, pipes)%s." % (
            "everything works" if not bad else "all but %s work" % ", ".join(bad),
            "; make shared regions with `MPROC_SHM_MEMFD` or `MPROC_SHM_ANON`, not a named one"
            if works(mp, "shared_memory") is False else ""))
    out += [" ".join(a for a in advice if a), ""]
    rows = []
    for label, key, mnames, pnames, fields in DEVSHM_ROWS:
        mcell, pcell = _devshm_cell(mp, key, "mproc"), _devshm_cell(py, key, "cpython")
        if key == "shared_memory/oversize" and "not probed" in mcell + pcell \
                and "works" not in mcell + pcell and "fails" not in mcell + pcell:
            continue
        mf, ms, mn = _devshm_fig(run, mnames, fields)
        pf, ps, pn = _devshm_fig(run, pnames, fields)
        fig = "—"
        mfig = run.figures.get(mn) if mn else None
        pfig = run.figures.get(pn) if pn else None
        if ms is not None and ps is not None and works(mp, key) and works(py, key):
            fig = "%s / %s" % (_headline_fmt(mf, mfig), _headline_fmt(pf, pfig))
            if _fields.comparable(mf, pf) and ms.median > 0 and ps.median > 0:
                # How much faster libmproc is, with its interval (as the headline).
                r, lo, hi, _ = (ratio_of(run, mfig, mf, pfig, pf) if _fields.higher_is_better(mf)
                                else ratio_of(run, pfig, pf, mfig, mf))
                if r is not None:
                    fig += "; libmproc %.3gx as fast %s" % (
                        r, "(no interval)" if lo is None else "[%.3g, %.3g]" % (lo, hi))
        elif ms is not None and works(mp, key):
            fig = "%s / —" % _headline_fmt(mf, mfig)
        rows.append((label, mcell, pcell, fig))
    out += table(["primitive", "libmproc", "CPython", "figure: libmproc / CPython"], rows)
    over = (py or {}).get("primitives", {}).get("shared_memory/oversize") \
        if isinstance(py, dict) else None
    if over is not None:
        out += ["", "A named segment bigger than /dev/shm's free space: libmproc reserves its "
                "pages at creation (posix_fallocate), so it fails there with -ENOSPC; "
                "CPython's SharedMemory only sets the size, so creation succeeds and the first "
                "write to a page tmpfs cannot back kills the process (here: %s)." % (
                    over.get("error") or "it did not fail")]
    elif state.startswith("too small"):
        out += ["", "A named segment bigger than the free space fails at creation with -ENOSPC "
                "in libmproc; CPython's SharedMemory creates it and the process dies of "
                "SIGBUS on a later write (shown safely with `make bench NO_DEV_SHM=tiny`)."]
    return out + ["", DEVSHM_HOWTO, ""]


# ------------------------------------------------------------------------------------------
# [cross] cross-checks with independent tools (crosscheck.json, crosscheck.py)

def _fmt_cc(v, unit):
    if unit == "count":
        return "%s" % v if v is not None else "—"
    return fmt_ns(v)


def section_crosschecks(run):
    """Cross-checks: every tool figure beside ours, ratio tool/mproc, >2x flagged."""
    out = []
    cc_ctx = run.context.get("crosscheck") if isinstance(run.context.get("crosscheck"), dict) \
        else {}
    try:
        doc = gbjson.read_side(run.path, "crosscheck", strict=True)
    except gbjson.GBJsonError as e:
        return out + ["`crosscheck.json` unreadable: %s" % md_escape(e), ""]
    if doc is None:
        if cc_ctx.get("status") == "disabled":
            return out + ["Not run (%s)." % cc_ctx.get("detail", "disabled"), ""]
        return out + ["Not run (no crosscheck.json: `PYTHONPATH=plots python3 -m "
                      "mproc_results.crosscheck %s` "
                      "runs them)." % md_escape(run.path), ""]
    checks = doc.get("checks") if isinstance(doc, dict) else None
    if not isinstance(checks, list):
        return out + ["`crosscheck.json` holds no checks.", ""]
    thr = doc.get("threshold") or 2.0
    out += ["Independent tools measured the same things on this machine in this run "
            "(`crosscheck.py` documents each pairing and unit conversion). Ratio = tool / "
            "mproc; outside %.3g–%gx it is **flagged**: one of the two does not measure what we "
            "think, or the machine was busy (1-minute load average %s before, %s after). "
            "Counts must be equal." % (1.0 / thr, thr, doc.get("loadavg_before", "?"),
                                        doc.get("loadavg_after", "?")), ""]
    if doc.get("interrupted"):
        out += ["**Interrupted**: the checks below are what finished.", ""]
    rows, notes, flagged = [], [], []
    for c in checks:
        if not isinstance(c, dict):
            continue
        tool = c.get("tool", "?")
        if c.get("status") != "ok":
            notes.append("`%s`: %s%s" % (tool, c.get("status", "?"),
                                          ": " + c["detail"] if c.get("detail") and
                                          c.get("detail") != c.get("status") else ""))
            continue
        fig = c.get("tool_figure") or {}
        for x in c.get("comparisons") or []:
            unit = x.get("unit", "ns")
            tv = x.get("tool_value", fig.get("value"))
            ratio = x.get("ratio")
            verdict = ("**DIFFERS**" if x.get("flag") else "equal") if unit == "count" else \
                ("**DISAGREE**" if x.get("flag") else "agrees")
            if x.get("flag"):
                flagged.append("`%s` %s vs `%s` %s" % (tool, _fmt_cc(tv, unit), x.get("ours"),
                                                       _fmt_cc(x.get("ours_value"), unit)))
            rows.append(("`%s`" % tool, x.get("what", ""), _fmt_cc(tv, unit),
                         "`%s` %s" % (x.get("ours", "?"), _fmt_cc(x.get("ours_value"), unit)),
                         "%.2fx" % ratio if isinstance(ratio, (int, float)) and unit != "count"
                         else "—", verdict))
    if rows:
        out += table(["tool", "measures", "tool figure", "mproc figure", "ratio", "verdict"],
                     rows)
    if flagged:
        out += ["", "Flagged (more than %gx apart, or counts that differ):" % thr, ""]
        out += bullets(flagged)
    if notes:
        out += ["", "Not compared:", ""] + bullets(notes)
    out.append("")
    return out


# [cross] results/reference/README.md: the machines and their headline figures, generated
# from the runs present (plots/report.py --reference-index results/reference).

# (label, benchmark name, field, kind): kind "ns" is a time, "rate" a per-second figure.
REFERENCE_HEADLINES = [
    ("syscall (getppid) p50", "baseline/syscall", "p50_ns", "ns"),
    ("pipe round trip, same core p50", "baseline/pipe_rtt/placement:same_core", "p50_ns", "ns"),
    ("pipe round trip, cross core p50", "baseline/pipe_rtt/placement:cross_core", "p50_ns",
     "ns"),
    ("futex round trip, cross core p50", "baseline/futex_rtt/placement:cross_core", "p50_ns",
     "ns"),
    ("fork + exit + reap p50", "baseline/fork_exit", "p50_ns", "ns"),
    ("mproc_conn pipe round trip, cross core p50", "latency/conn_pipe/placement:cross_core",
     "p50_ns", "ns"),
    ("ring queue 64 B items/s (1x1)", "queue/ring/bytes:64/producers:1/consumers:1",
     "msgs_per_second", "rate"),
    ("pipe queue 64 B items/s (1x1)", "queue/pipe/bytes:64/producers:1/consumers:1",
     "msgs_per_second", "rate"),
    ("CPython Queue 64 B items/s (1x1)", "python/queue/pipe/bytes:64/producers:1/consumers:1",
     "msgs_per_second", "rate"),
    ("start -> reap, fork, 0 MiB p50", "spawn/fork/rss_mib:0", "p50_ns", "ns"),
    ("start -> reap, forkserver, 0 MiB p50", "spawn/forkserver/rss_mib:0", "p50_ns", "ns"),
    ("CPython forkserver start, 0 MiB p50", "python/spawn/forkserver/rss_mib:0", "p50_ns",
     "ns"),
]


def _reference_runs(root):
    """[(machine, run dir or None, Run or error text)]: each <machine>/ is a run directory, or
    holds run directories (the newest, by name, is the reference)."""
    out = []
    for m in sorted(os.listdir(root)):
        d = os.path.join(root, m)
        if m.startswith(".") or not os.path.isdir(d):
            continue
        path = d if gbjson.is_run_dir(d) else None
        if path is None:
            subs = sorted(x for x in os.listdir(d) if gbjson.is_run_dir(os.path.join(d, x)))
            path = os.path.join(d, subs[-1]) if subs else None
        if path is None:
            out.append((m, None, "no run directory (no context.json)"))
            continue
        try:
            out.append((m, path, gbjson.load_run(path)))
        except gbjson.GBJsonError as e:
            out.append((m, path, str(e)))
    return out


def _headline_cell(run, name, field, kind):
    fig = run.figures.get(name)
    if fig is None:
        return "—"
    v = fig.median(field, None)
    if v is None:
        v = fig.median("real_time", None) if kind == "ns" else None
    return fmt_ns(v) if kind == "ns" else fmt_num(v, "/s")


def _crosscheck_summary(path):
    doc = gbjson.read_side(path, "crosscheck")
    if doc is None or not isinstance(doc.get("checks", []), list):
        return "—"
    checks = [c for c in doc.get("checks", []) if isinstance(c, dict)]
    ok = [c for c in checks if c.get("status") == "ok"]
    bad = [c.get("tool", "?") for c in ok if c.get("flag")]
    return "%d compared, %d flagged%s" % (len(ok), len(bad),
                                         " (%s)" % ", ".join(bad) if bad else "")


def _write_text(path, body):
    """Write path atomically (.tmp + rename) and say so; False, with one line, on failure."""
    try:
        files.write_text(path, body)
    except OSError as e:
        print("report: cannot write %s: %s" % (path, e), file=sys.stderr)
        return False
    print("report: %s" % path)
    return True


def build_reference_index(root):
    runs = _reference_runs(root)
    out = ["# Reference results", "",
           "<!-- Generated by `plots/report.py --reference-index results/reference` from "
           "the runs below: edit the generator, not this file. -->", "",
           "Full runs (`make bench PROFILE=full`) on known machines, kept so that a run "
           "anywhere has something to be compared with: `make compare "
           "A=results/reference/<machine> B=results/latest`. Each `<machine>/` is a run "
           "directory as [results/README.md](../README.md) describes it (or holds one; the "
           "newest is used); its `report.md` is the summary and `plots/` its plots.", "",
           "To publish one: run `make bench PROFILE=full OUT=results/reference/<machine>` on "
           "the machine (or copy its run directory there), draw the plots locally with "
           "`make plots RUN=results/reference/<machine>`, then regenerate this file with "
           "`plots/report.py --reference-index results/reference`.", ""]
    good = [(m, p, r) for m, p, r in runs if isinstance(r, gbjson.Run)]
    if not runs:
        return "\n".join(_doc.render_md_items(out + ["No reference runs yet.", ""]))
    out += ["## Machines", ""]
    rows = []
    for m, p, r in runs:
        if not isinstance(r, gbjson.Run):
            rows.append((m, "unreadable: %s" % r, "", "", "", "", "", ""))
            continue
        c, t = r.context, r.topology or {}
        counts = _get(t, "counts", default={}) or {}
        b = c.get("budget") or _get(t, "budget", default={}) or {}
        rel = os.path.relpath(p, root)
        rows.append(("[%s](%s/report.md)" % (m, rel), c.get("cpu_model", "?"),
                     "%s / %s / %s" % (counts.get("packages", "?"), counts.get("cores", "?"),
                                       counts.get("pus", "?")),
                     "%s (%s)" % (b.get("usable", "?"), b.get("bound_by", "?")),
                     c.get("kernel", "?"), c.get("profile", "?"),
                     (c.get("started_utc") or "?")[:10],
                     ("complete" if c.get("complete") else "**incomplete**")
                     + (", %s" % c.get("status") if c.get("status") not in (None, "ok") else "")))
    out += table(["machine", "CPU", "packages / cores / PUs", "usable CPUs (bound by)",
                  "kernel", "profile", "date", "run"], rows)
    if good:
        out += ["", "## Headline figures", "",
                "Medians over repetitions (p50 of the individual samples where the harness "
                "records them); — where the run has no such figure.", ""]
        hrows = []
        for label, name, field, kind in REFERENCE_HEADLINES:
            hrows.append(["%s (`%s`)" % (label, name)] +
                         [_headline_cell(r, name, field, kind) for _, _, r in good])
        rec_row = ["recommended CPU-bound pool workers"]
        cc_row = ["cross-checks (independent tools)"]
        for _, p, _r in good:
            try:
                rec_row.append(str(gbjson.read_side(p, "recommendation")["cpu"]
                                   ["recommended_workers"]))
            except (KeyError, TypeError):
                rec_row.append("—")
            cc_row.append(_crosscheck_summary(p))
        out += table(["figure"] + [m for m, _, _ in good], hrows + [rec_row, cc_row])
    out.append("")
    return "\n".join(_doc.render_md_items(out))


def reference_index_main(argv):
    ap = cli.Parser(PROG, "plots/report.py --reference-index",
                    description="Write DIR/README.md listing the reference runs.")
    ap.add_argument("dir", help="the reference tree, e.g. results/reference")
    ap.add_argument("--stdout", action="store_true", help="print instead of writing README.md")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.dir):
        print("report: --reference-index %s: not a directory" % a.dir, file=sys.stderr)
        return 2
    text = build_reference_index(a.dir)
    if a.stdout:
        sys.stdout.write(text)
        return 0
    return 0 if _write_text(os.path.join(a.dir, "README.md"), text) else 1


def machine_line(machine):
    """The report's first line: noise.json's verdict, or that the state was not recorded."""
    if machine.get("busy") is None:
        return ("Machine: **machine state not recorded** (no `noise.json`): not known to be "
                "quiet, so every answer below is provisional.")
    return "Machine: **%s**." % md_escape(machine["line"])


def report_inputs(run):
    """(machine state, recommendation, answers) of a run: what report.md, answers.json and
    the recommendation section are written from."""
    machine = recommend.machine_state(run.path)
    rec = recommend.from_run(run)
    return machine, rec, build_answers(run, rec, machine)


def build_doc(run, inputs=None):
    """The run's document: what report.md and index.html are both rendered from."""
    machine, rec, answers = inputs or report_inputs(run)
    c = run.context
    d = _doc.Doc("mproc run: %s, %s" % (c.get("host", "?"), c.get("started_utc", "?")))
    d.intro += [machine_line(machine), ""]
    d.section("What to use on this machine", section_answers(run, answers, machine))
    status = ["The project's own performance targets (met, missed or undecided, with "
              "intervals) are in [targets.md](targets.md), for developers.", ""]
    d.section("Run", status + section_status(run) + [""])
    d.section("Machine", section_machine(run) + [""])
    d.section("Usable CPU budget", section_budget(run) + [""])
    d.section("Capabilities", section_caps(run) + [""])
    d.section("Headline: mproc vs CPython", section_headline(run))
    recs = section_recommendation(run, rec)
    if recs:
        d.section("Recommendation: how many workers here", recs)
    d.section("Without /dev/shm", section_without_devshm(run))
    all_unstable = []
    per_harness = []          # (harness, unstable, figures)
    order = [n for n in (c.get("harnesses") or {}).get("selected") or [] if n in run.harnesses]
    order += [n for n in run.harnesses if n not in order]
    for name in order:
        h = run.harnesses[name]
        fn = SECTIONS.get(name, generic_section)
        body = []
        if h.figures:
            lines, unstable = fn(run, h)
            body += lines
            all_unstable += unstable
            per_harness.append((name, len(unstable), len(h.figures)))
        else:
            body.append("No figures.")
        if h.skipped:
            body += ["", "Skipped benchmarks:"]
            body += bullets(["`%s`: %s" % (n, r) for n, r in h.skipped.items()])
        d.section(name, body + [""])
    if all_unstable:
        d.section("Unstable figures", [
            "%d figures vary by more than %d %% (CV) over their repetitions (%s): re-run "
            "with `PROFILE=full` on a quiet machine before trusting them." % (
                len(all_unstable), UNSTABLE_CV * 100,
                ", ".join("%s %d/%d" % t for t in per_harness if t[1])), ""]
            + details("the list", bullets(["`%s`" % n for n in all_unstable])) + [""])
    d.section("Cross-checks", section_crosschecks(run))
    if not attach_plots(d, run.path, plot_owners(run)):
        d.section("Plots", ["No plots (see logs/plots.log: the plot step was skipped or "
                            "found no data).", ""])
    d.section("Files", [
        "`context.json` (the run), `topology.json` / `topology.xml` (the machine), "
        "`<harness>.json` (Google Benchmark JSON), `logs/`, `plots/` — see "
        "results/README.md for the schema.", ""])
    return d


def build_report(run, inputs=None):
    """report.md's text (render_md of build_doc)."""
    return _doc.render_md(build_doc(run, inputs))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--reference-index"]:
        return reference_index_main(argv[1:])
    ap = cli.Parser(PROG, "plots/report.py", description="Write report.md, targets.md, "
                    "answers.json and index.html for one mproc run.")
    ap.add_argument("run", help="run directory")
    ap.add_argument("--stdout", action="store_true", help="print instead of writing report.md")
    a = ap.parse_args(argv)
    try:
        run = gbjson.load_run(a.run)
    except gbjson.GBJsonError as e:
        return cli.fail(PROG, e)
    inputs = report_inputs(run)
    d = build_doc(run, inputs)
    text = _doc.render_md(d)
    if a.stdout:
        sys.stdout.write(text)
        return 0
    machine, _rec, answers = inputs
    docs = [("report.md", text), ("targets.md", build_targets(run, machine)),
            ("answers.json", json.dumps(answers_doc(answers, machine), indent=1,
                                        allow_nan=False) + "\n")]
    for fn, body in docs:
        if not _write_text(os.path.join(run.path, fn), body):
            return 1
    try:
        print("report: %s" % write_index(run, d))
    except OSError as e:
        print("report: cannot write %s: %s" % (os.path.join(run.path, "index.html"), e),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
