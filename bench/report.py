#!/usr/bin/env python3
"""report - write RUN_DIR/report.md for one run: status (incomplete/failed harnesses), the
machine, the usable CPU budget with provenance, capabilities, the headline table (each
primitive: mproc, CPython, their ratio, each as a multiple of the machine's baseline), one
section per harness, links to every plot, and the skipped benchmarks with their reasons; then
RUN_DIR/index.html (plots/htmlindex.py: the report and every plot, static HTML).

    python3 bench/report.py RUN_DIR [--stdout]
    python3 bench/report.py --reference-index results/reference [--stdout]
        (writes results/reference/README.md: the reference machines and headline figures)

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


def generic_section(run, h, figures=None):
    """One row per figure of the harness (or of `figures`, in that order)."""
    rows, unstable = [], []
    for fig in (h.figures.values() if figures is None else figures):
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

# Fields where a larger figure is better (rates, speedup); the others are times.
HIGHER_IS_BETTER = {"bytes_per_second", "msgs_per_second", "updates_per_second",
                    "tasks_per_second", "ops_per_second", "speedup"}


def _is_time(field):
    return field is not None and (field.endswith("_ns") or field.startswith("ns_")
                                  or field in ("real_time", "cpu_time"))


def _comparable(f1, f2):
    """Two fields whose ratio means something: the same one, or two times in ns."""
    return f1 is not None and f2 is not None and (f1 == f2 or (_is_time(f1) and _is_time(f2)))


def _headline_pick(fig, fields):
    """(field, Stats) of the first field with a finite median, or (None, None)."""
    if fig is None:
        return None, None
    for f in fields:
        s = fig.value(f)
        if s is not None and s.n > 0 and math.isfinite(s.median):
            return f, s
    return None, None


def _headline_fmt(field, stats, fig=None):
    """A figure with its unit, ' (unstable)' when its CV exceeds UNSTABLE_CV; CPython's
    bounded hang as 'hang (> T s)'."""
    if fig is not None and fig.median("hang", 0) and fig.median("hang", 0) > 0:
        return "hang (> %s s)" % ("%g" % fig.median("bound_s") if math.isfinite(
            fig.median("bound_s")) else "?")
    if stats is None:
        return "—"
    if _is_time(field):
        txt = fmt_ns(stats.median)
    elif field == "bytes_per_second":
        txt = fmt_num(stats.median, "B/s")
    elif field.endswith("_per_second"):
        txt = fmt_num(stats.median, "/s")
    else:
        txt = "%.3g" % stats.median
    _, flag = fmt_cv(stats)
    return txt + (" (unstable)" if flag else "")


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
    """[(what, mproc cell, CPython cell, ratio cell, mproc/baseline, CPython/baseline,
    baseline name)] for the HEADLINE entries with an mproc or CPython figure in the run."""
    figs = run.figures
    rows = []
    for what, name, pyname, fields, ref in HEADLINE:
        if "{W}" in name:
            w = _headline_workers(run, name, pyname)
            if w is None:
                continue
            name, what = name.replace("{W}", str(w)), what.replace("{W}", str(w))
        pyname = pyname or "python/" + name
        mf, ms = _headline_pick(figs.get(name), fields)
        pf, ps = _headline_pick(figs.get(pyname), fields)
        pfig = figs.get(pyname)
        if ms is None and ps is None:
            continue
        ratio = "—"
        hung = pfig is not None and pfig.median("hang", 0) > 0
        if hung and ms is not None:
            ratio = "CPython hangs"
        elif (ms is not None and ps is not None and _comparable(mf, pf) and ms.median > 0
              and ps.median > 0):
            r = ms.median / ps.median if mf in HIGHER_IS_BETTER else ps.median / ms.median
            ratio = "%.3gx %s" % (r if r >= 1 else 1 / r, "faster" if r >= 1 else "slower")
        bm, bp = "—", "—"
        rf, rs = _headline_pick(figs.get(ref), fields + ["p50_ns", "real_time"]) \
            if ref else (None, None)
        if rs is not None and rs.median > 0:
            if ms is not None and _comparable(mf, rf):
                bm = "%.3gx" % (ms.median / rs.median)
            if ps is not None and _comparable(pf, rf) and not hung:
                bp = "%.3gx" % (ps.median / rs.median)
        rows.append(("%s (`%s`)" % (what, name), _headline_fmt(mf, ms),
                     _headline_fmt(pf, ps, pfig), ratio, bm, bp,
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
        return ["## Headline: mproc vs CPython", "",
                "No headline figures in this run (neither the harnesses nor the CPython "
                "comparators that measure them ran).", ""] + (
                    [python_absent_reason(run), ""] if not has_py else [])
    out = ["## Headline: mproc vs CPython", "",
           "Medians over repetitions, measured on this machine in this run (times: p50 of "
           "individual operations where the harness samples them). *ratio*: how much faster "
           "mproc is than CPython's `multiprocessing` for the same operation. *× baseline*: "
           "the figure as a multiple of the machine's own limit (the reference named in the "
           "last column; for throughput, a fraction of it). (unstable): CV over repetitions "
           "above %d %%." % (UNSTABLE_CV * 100), ""]
    if not has_py:
        out += [python_absent_reason(run), ""]
    out += table(["primitive", "mproc", "CPython", "ratio", "mproc × baseline",
                  "CPython × baseline", "baseline"], rows)
    notes = [n for k, n in HEADLINE_NOTES.items() if any("(`%s`)" % k in r[0] for r in rows)]
    if notes:
        out += [""] + ["- " + n for n in notes]
    return out + [""]


def write_index(run):
    """RUN/index.html: report.md rendered, and every plot (PNG linked to SVG). Static."""
    sys.path.insert(0, os.path.join(HERE, "..", "plots"))
    import htmlindex
    c = run.context
    return htmlindex.write_index(run.path, "report.md", "mproc run: %s, %s" % (
        c.get("host", "?"), c.get("started_utc", "?")))


def manager_section(run, h):
    """Every figure (generic table), then the issue's ratios: a proxy call over the raw socket
    round trip at the same placement (target <= 1.5), the bounded spin's gain (spin:off over
    spin), and CPython's Manager dict get over ours (target >= 5)."""
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
        py = p50("python/manager/dict_get/transport:%s" % tr)
        if call and raw:
            ratios.append("`dict_get` / `raw_rtt` (%s): %.2fx (target <= 1.5)"
                          % (where, call / raw))
        if call and off:
            ratios.append("`dict_get` spin:off / spin (%s): %.2fx" % (where, off / call))
        if call and py:
            ratios.append("CPython `dict_get` / ours (%s): %.2fx (target >= 5)"
                          % (where, py / call))
    if ratios:
        lines += ["", "Ratios of p50 round trips (CPython's Manager runs unpinned):", ""]
        lines += ["- " + r for r in ratios]
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
    at 64 KiB per placement, conn_pipe / raw_pipe (target >= 0.95), split into its two
    factors: framed_pipe / raw_pipe (what a length prefix sent in one writev per frame costs)
    and conn_pipe / framed_pipe (mproc_conn against that: its own code, less what its send
    strategy wins back; across CPUs it writes without waiting first, conn.c)."""
    lines, unstable = generic_section(run, h, sorted(h.figures.values(), key=_pipe_key))
    rows = []
    for place, cr, cf, fr in pipe_ratios(h.figures):
        rows.append(("`%s`" % place,
                     "%.3fx (%s)" % (cr, "met" if cr >= 0.95 else "**missed**")
                     if cr is not None else "—",
                     "%.3fx" % cf if cf is not None else "—",
                     "%.3fx" % fr if fr is not None else "—"))
    if rows:
        inter = h.context.get("mproc_random_interleaving")
        lines += ["", "Throughput ratios at 64 KiB, of median `bytes_per_second`; the "
                  "repetitions ran %s:" % ("randomly interleaved in time" if inter == "true"
                                          else "back to back"), ""]
        lines += table(["placement", "conn_pipe / raw_pipe (target >= 0.95)",
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
    """## Without /dev/shm: a table of primitives when this run's /dev/shm was unusable (real or
    simulated), else one line on how to produce it."""
    out = ["## Without /dev/shm", ""]
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
        if ms is not None and ps is not None and works(mp, key) and works(py, key):
            fig = "%s / %s" % (_headline_fmt(mf, ms), _headline_fmt(pf, ps))
            if _comparable(mf, pf) and ms.median > 0 and ps.median > 0:
                r = ms.median / ps.median if mf in HIGHER_IS_BETTER else ps.median / ms.median
                fig += " (%.3gx %s)" % (r if r >= 1 else 1 / r, "faster" if r >= 1 else "slower")
        elif ms is not None and works(mp, key):
            fig = "%s / —" % _headline_fmt(mf, ms)
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
# [cross] cross-checks with independent tools (crosscheck.json, bench/crosscheck.py)

def _fmt_cc(v, unit):
    if unit == "count":
        return "%s" % v if v is not None else "—"
    return fmt_ns(v)


def section_crosschecks(run):
    """## Cross-checks: every tool figure beside ours, ratio tool/mproc, >2x flagged."""
    import json as _json
    out = ["## Cross-checks", ""]
    path = os.path.join(run.path, "crosscheck.json")
    cc_ctx = run.context.get("crosscheck") if isinstance(run.context.get("crosscheck"), dict) \
        else {}
    try:
        with open(path, encoding="utf-8") as f:
            doc = _json.load(f)
    except FileNotFoundError:
        if cc_ctx.get("status") == "disabled":
            return out + ["Not run (%s)." % cc_ctx.get("detail", "disabled"), ""]
        return out + ["Not run (no crosscheck.json: `python3 bench/crosscheck.py %s` runs "
                      "them)." % md_escape(run.path), ""]
    except (OSError, ValueError) as e:
        return out + ["`crosscheck.json` unreadable: %s" % md_escape(e), ""]
    checks = doc.get("checks") if isinstance(doc, dict) else None
    if not isinstance(checks, list):
        return out + ["`crosscheck.json` holds no checks.", ""]
    thr = doc.get("threshold") or 2.0
    out += ["Independent tools measured the same things on this machine in this run "
            "(`bench/crosscheck.py` documents each pairing and unit conversion). Ratio = tool / "
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
            notes.append("- `%s`: %s%s" % (tool, c.get("status", "?"),
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
        out += table(["tool", "measures", "tool figure", "mproc figure", "ratio", ""], rows)
    if flagged:
        out += ["", "Flagged (more than %gx apart, or counts that differ):" % thr, ""]
        out += ["- " + f for f in flagged]
    if notes:
        out += ["", "Not compared:", ""] + notes
    out.append("")
    return out


# [cross] results/reference/README.md: the machines and their headline figures, generated
# from the runs present (bench/report.py --reference-index results/reference).

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
    import json as _json
    try:
        with open(os.path.join(path, "crosscheck.json"), encoding="utf-8") as f:
            doc = _json.load(f)
        checks = [c for c in doc.get("checks", []) if isinstance(c, dict)]
    except (OSError, ValueError, AttributeError):
        return "—"
    ok = [c for c in checks if c.get("status") == "ok"]
    bad = [c.get("tool", "?") for c in ok if c.get("flag")]
    return "%d compared, %d flagged%s" % (len(ok), len(bad),
                                         " (%s)" % ", ".join(bad) if bad else "")


def build_reference_index(root):
    runs = _reference_runs(root)
    out = ["# Reference results", "",
           "<!-- Generated by `python3 bench/report.py --reference-index results/reference` from "
           "the runs below: edit the generator, not this file. -->", "",
           "Full runs (`make bench PROFILE=full`) on known machines, kept so that a run "
           "anywhere has something to be compared with: `make compare "
           "A=results/reference/<machine> B=results/latest`. Each `<machine>/` is a run "
           "directory as [results/README.md](../README.md) describes it (or holds one; the "
           "newest is used); its `report.md` is the summary and `plots/` its plots.", "",
           "To publish one: run `make bench PROFILE=full OUT=results/reference/<machine>` on "
           "the machine (or copy its run directory there), draw the plots locally with "
           "`make plots RUN=results/reference/<machine>`, then regenerate this file with "
           "`python3 bench/report.py --reference-index results/reference`.", ""]
    good = [(m, p, r) for m, p, r in runs if isinstance(r, gbjson.Run)]
    if not runs:
        return "\n".join(out + ["No reference runs yet.", ""])
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
        import json as _json
        for _, p, _r in good:
            try:
                with open(os.path.join(p, "recommendation.json"), encoding="utf-8") as f:
                    rec_row.append(str(_json.load(f)["cpu"]["recommended_workers"]))
            except (OSError, ValueError, KeyError, TypeError):
                rec_row.append("—")
            cc_row.append(_crosscheck_summary(p))
        out += table(["figure"] + [m for m, _, _ in good], hrows + [rec_row, cc_row])
    out.append("")
    return "\n".join(out)


def reference_index_main(argv):
    ap = argparse.ArgumentParser(prog="report.py --reference-index",
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
    path = os.path.join(a.dir, "README.md")
    try:
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
    except OSError as e:
        print("report: cannot write %s: %s" % (path, e), file=sys.stderr)
        return 1
    print("report: %s" % path)
    return 0


def build_report(run):
    c = run.context
    title = "# mproc run: %s, %s" % (c.get("host", "?"), c.get("started_utc", "?"))
    out = [title, ""]
    out += section_status(run) + [""]
    out += ["## Machine", ""] + section_machine(run) + [""]
    out += ["## Usable CPU budget", ""] + section_budget(run) + [""]
    out += ["## Capabilities", ""] + section_caps(run) + [""]
    out += section_headline(run)
    out += section_recommendation(run)
    out += section_without_devshm(run)
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
    out += section_crosschecks(run)
    out += ["## Plots", ""] + section_plots(run) + [""]
    out += ["## Files", "",
            "`context.json` (the run), `topology.json` / `topology.xml` (the machine), "
            "`<harness>.json` (Google Benchmark JSON), `logs/`, `plots/` — see "
            "results/README.md for the schema.", ""]
    return "\n".join(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--reference-index"]:
        return reference_index_main(argv[1:])
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
    try:
        print("report: %s" % write_index(run))
    except OSError as e:
        print("report: cannot write %s: %s" % (os.path.join(run.path, "index.html"), e),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
