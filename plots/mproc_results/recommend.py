"""Pool-size recommendation from measured pool curves (issues 7 and 17).

Input: a mapping from benchmark name (suffixes stripped, e.g. ``pool/cpu/workers:4/task_ms:20``)
to a dict of figures per counter (``tasks_per_second``, ``ns_per_task``, ``efficiency`` ...),
each either the list of its repetitions' values (then it gets a 95 % interval of its median,
stats.py) or one number (a median alone: no interval), and the usable CPU budget of
the run. Output: a JSON-ready dict, for libmproc (``pool/...``, ``pool_overhead/...``) and,
under ``"python"``, for CPython's Pool/ProcessPoolExecutor (``python/pool/...``,
``python/pool_overhead/...``), each from its own curves:

- the CPU pool size: the smallest N whose median throughput is within 2 % of the best N's
  and whose interval overlaps the best's (it cannot be told from the best), capped by the
  budget (an interval alone is not enough: a wide one at 1 worker, [30, 56] against the
  best's [55, 76], would pick a pool at 56 % of the best); without intervals (fewer than 6
  repetitions) the point knee (smallest N within 2 % of the best median), marked undecided;
- I/O pool sizes for given blocking fractions: ceil(usable / (1 - f)), bounded by the largest
  N measured at >= 90 % efficiency (its interval's low end, where there is one);
- the chunksize that keeps per-task overhead under 1 % of a 1 ms and of a 20 ms task (the
  interval's high end under the limit, where there is one), per API;
- a verdict on the "physical cores - 1" rule.

Curves are lists of labelled objects (results/README.md documents the schema). A busy machine
(noise.json, noise.py) makes everything provisional. ``machine_state`` reads noise.json;
nothing else here does I/O (the CLI, ``mproc-recommend``, reads runs and writes files).
Stdlib only.
"""

import math
import re

from . import gbjson
from . import stats

# recommendation.json's schema (results/README.md): a reader checks it before the keys.
SCHEMA = "mproc-recommendation/1"
KNEE_TOLERANCE = 0.02        # the point knee: "within 2 % of the best" (no intervals)
OVERHEAD_BUDGET = 0.01       # per-task overhead < 1 % of task time
IO_EFFICIENCY_FLOOR = 0.90   # an I/O pool size counts as measured-good above this efficiency
BLOCKING_FRACTIONS = (0.5, 0.9, 0.99)
CHUNK_TASK_MS = (1, 20)
FEW_REPS = "too few repetitions for a 95 % interval (6 needed)"

_ARG = re.compile(r"([a-z_]+):(-?\d+)")


def parse_args(name):
    """'pool/cpu/workers:4/task_ms:20' -> ('pool/cpu', {'workers': 4, 'task_ms': 20})."""
    parts = name.split("/")
    base = [p for p in parts if ":" not in p]
    args = {}
    for p in parts:
        m = _ARG.fullmatch(p)
        if m:
            args[m.group(1)] = int(m.group(2))
    return "/".join(base), args


def curves(figures, family):
    """{task_ms: [(workers, figures)]} for one family ('pool/cpu', 'python/pool/io' ...)."""
    out = {}
    for name, fig in figures.items():
        base, args = parse_args(name)
        if base != family or "workers" not in args:
            continue
        out.setdefault(args.get("task_ms", 0), []).append((args["workers"], fig))
    for k in out:
        out[k].sort(key=lambda t: t[0])
    return out


def _finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def summary(v):
    """(median, lo, hi, n) of one field: a list of repetitions gets its 95 % interval
    (stats.median_ci; None with too few), a number is a median alone (n None)."""
    if isinstance(v, (list, tuple)):
        vals = sorted(x for x in v if _finite(x))
        if not vals:
            return None, None, None, 0
        ci = stats.median_ci(vals)
        return stats.median(vals), (ci[0] if ci else None), (ci[1] if ci else None), len(vals)
    if _finite(v):
        return v, None, None, None
    return None, None, None, 0


def _point(fig, key):
    """{key: median, key_lo, key_hi, n} of one field of one figure (None where missing)."""
    med, lo, hi, n = summary(fig.get(key))
    return {key: med, key + "_lo": lo, key + "_hi": hi, "n": n}


def knee(points, key="tasks_per_second", tolerance=KNEE_TOLERANCE):
    """The point knee: smallest N whose median is within tolerance of the best;
    (n, best_n, best) or None."""
    pts = [(n, summary(f.get(key))[0]) for n, f in points]
    pts = [(n, v) for n, v in pts if _finite(v)]
    if not pts:
        return None
    best_n, best = max(pts, key=lambda t: t[1])
    for n, v in pts:
        if v >= (1 - tolerance) * best:
            return n, best_n, best
    return best_n, best_n, best


def pick_pool_size(curve, key="tasks_per_second"):
    """curve: [labelled point] with key, key_lo, key_hi. The smallest N whose median is within
    KNEE_TOLERANCE of the best's and whose interval overlaps the best's; without an interval
    on every point, the point knee.
    -> (n, best point, decided, method, why) or None."""
    pts = [p for p in curve if _finite(p.get(key))]
    if not pts:
        return None
    best = max(pts, key=lambda p: p[key])
    if all(p.get(key + "_lo") is not None for p in pts):
        for p in pts:
            # p's median <= the best's, so p's interval reaches the best's iff hi >= best lo.
            if p is best:
                return (p["workers"], best, True, "interval overlap",
                        "the best pool (%d workers, 95 %% interval [%.4g, %.4g]); no smaller "
                        "pool is within %d %% of its median with an interval that reaches it"
                        % (p["workers"], best[key + "_lo"], best[key + "_hi"],
                           KNEE_TOLERANCE * 100))
            if p[key + "_hi"] >= best[key + "_lo"] and \
                    p[key] >= (1 - KNEE_TOLERANCE) * best[key]:
                return (p["workers"], best, True, "interval overlap",
                        "the smallest pool within %d %% of the best median whose 95 %% "
                        "interval [%.4g, %.4g] overlaps the best's [%.4g, %.4g] (%d workers)" % (
                            KNEE_TOLERANCE * 100, p[key + "_lo"], p[key + "_hi"],
                            best[key + "_lo"], best[key + "_hi"], best["workers"]))
    n_min = min((p.get("n") or 1) for p in pts)
    few = "too few repetitions for a 95 %% interval (%d; 6 needed)" % n_min
    for p in pts:
        if p[key] >= (1 - KNEE_TOLERANCE) * best[key]:
            return (p["workers"], best, False, "point knee",
                    "%s: the point knee, the smallest pool within %d %% of the best median, is "
                    "%d workers" % (few, KNEE_TOLERANCE * 100, p["workers"]))
    return best["workers"], best, False, "point knee", few


def _cpu(figures, prefix, usable, cores, unstable, warnings):
    """{family: entry} for prefix+'pool/cpu' and prefix+'pool/cpu_pinned'."""
    cpu = {}
    for family in (prefix + "pool/cpu", prefix + "pool/cpu_pinned"):
        cs = curves(figures, family)
        if not cs:
            continue
        task_ms = max(cs)       # the longest task: the least overhead-dominated curve
        curve = []
        for w, f in cs[task_ms]:
            p = {"workers": w}
            p.update(_point(f, "tasks_per_second"))
            p["speedup"] = summary(f.get("speedup"))[0]
            p["efficiency"] = summary(f.get("efficiency"))[0]
            curve.append(p)
        pick = pick_pool_size(curve)
        if not pick:
            continue
        n, best, decided, method, why = pick
        chosen = min(n, usable)
        by_n = {p["workers"]: p for p in curve}
        achieved = (by_n.get(chosen) or {}).get("tasks_per_second")
        cpu[family] = {
            "task_ms": task_ms, "knee_workers": n, "recommended_workers": chosen,
            "method": method, "decided": decided, "why": why,
            "best_workers": best["workers"], "best_tasks_per_second": best["tasks_per_second"],
            "best_tasks_per_second_lo": best.get("tasks_per_second_lo"),
            "best_tasks_per_second_hi": best.get("tasks_per_second_hi"),
            "recommended_fraction_of_best": (achieved / best["tasks_per_second"])
            if _finite(achieved) and best["tasks_per_second"] else None,
            "capped_by_budget": chosen < n,
            "curve": curve,
            "unstable_points": sorted(nm for nm in unstable if nm.startswith(family + "/")),
        }
        if cpu[family]["unstable_points"]:
            warnings.append(f"{family}: {len(cpu[family]['unstable_points'])} point(s) "
                            "with CV > 5 %: the knee may move between runs")
    return cpu


def _cores_minus_one(main, cores):
    """The folk rule "physical cores - 1" on the main CPU curve: right when it is as good as
    the best (median within KNEE_TOLERANCE and interval overlapping the best's), wrong when
    its interval lies below the best's (what it leaves unused), else undecided."""
    rule_n = max(1, cores - 1)
    if cores <= 1:
        # One usable core (taskset -c 0, a 1-CPU container): the rule says 0 workers,
        # which is no pool at all; "right" would be a verdict on a rule that did not apply.
        return {"workers": 0, "fraction_of_best": None, "decided": False,
                "verdict": "not applicable: 1 usable core, the rule would give 0 workers"}
    p = {q["workers"]: q for q in main["curve"]}.get(rule_n)
    best = main["best_tasks_per_second"]
    if not p or not _finite(p.get("tasks_per_second")) or not best:
        return {"workers": rule_n, "fraction_of_best": None, "decided": False,
                "verdict": "not measured"}
    frac = p["tasks_per_second"] / best
    lo_best = main.get("best_tasks_per_second_lo")
    near = frac >= 1 - KNEE_TOLERANCE
    if p.get("tasks_per_second_hi") is not None and lo_best is not None:
        overlap = p["tasks_per_second_hi"] >= lo_best
        if overlap and not near:
            return {"workers": rule_n, "fraction_of_best": frac, "decided": False,
                    "verdict": f"undecided: {100 * frac:.0f} % of the best median, but the "
                    "intervals overlap"}
        right, decided = overlap and near, True
    else:
        right, decided = near, False
    return {"workers": rule_n, "fraction_of_best": frac, "decided": decided,
            "verdict": "right" if right else
            f"leaves {100 * (1 - frac):.0f} % of the best throughput unused"}


def _io(figures, prefix, usable, warnings):
    io = curves(figures, prefix + "pool/io")
    if not io:
        return None
    # The curve with the most worker counts (the bound below is only as fine as its grid:
    # quick runs measure CPython's 20 ms workload at 1, 8, 32 only), then the longest task.
    task_ms = max(io, key=lambda ms: (len(io[ms]), ms))
    curve = []
    for w, f in io[task_ms]:
        p = {"workers": w}
        p.update(_point(f, "efficiency"))
        p["tasks_per_second"] = summary(f.get("tasks_per_second"))[0]
        curve.append(p)
    measured = [p for p in curve if _finite(p["efficiency"])]
    # A point counts by its median; the bound is decided only when every interval is wholly
    # on its side of the floor. (Counting only intervals wholly above it bounded CPython's
    # 99 %-blocked pool at 1 worker, because 8 workers' interval [0.885, 0.932] straddled
    # 0.9: an answer that was confidently wrong rather than undecided.)
    good = [p["workers"] for p in measured if p["efficiency"] >= IO_EFFICIENCY_FLOOR]
    decided = bool(measured) and all(p["efficiency_lo"] is not None for p in measured) and \
        all((p["efficiency_lo"] >= IO_EFFICIENCY_FLOOR) == (p["workers"] in good) and
            (p["efficiency_hi"] < IO_EFFICIENCY_FLOOR) == (p["workers"] not in good)
            for p in measured)
    max_good = max(good) if good else None
    sizes = {}
    for frac in BLOCKING_FRACTIONS:
        ideal = math.ceil(round(usable / (1 - frac), 6))
        sizes[str(frac)] = min(ideal, max_good) if max_good else ideal
    if max_good is None:
        warnings.append(
            f"{prefix}pool/io: no measured point reached {IO_EFFICIENCY_FLOOR:.0%} of ideal "
            f"(best {max([p['efficiency'] for p in measured] or [0]):.2f}): the I/O sizes "
            "are the formula alone, not bounded by evidence")
    return {"task_ms": task_ms, "max_efficient_workers": max_good, "decided": decided,
            "why": ("the largest pool whose efficiency interval stays >= %d %% bounds the "
                    "formula" % (IO_EFFICIENCY_FLOOR * 100)) if decided else FEW_REPS,
            "by_blocking_fraction": sizes, "curve": curve}


def _chunksize(figures, prefix):
    """Per API: per-task overhead per chunksize, and the smallest chunksize that keeps it
    under 1 % of a 1 ms and of a 20 ms task."""
    over = {}
    for name, fig in figures.items():
        base, args = parse_args(name)
        if not base.startswith(prefix + "pool_overhead/") or "chunksize" not in args:
            continue
        p = {"chunksize": args["chunksize"]}
        p.update(_point(fig, "ns_per_task"))
        if _finite(p["ns_per_task"]):
            over.setdefault(base.split("/")[-1], []).append(p)
    if not over:
        return None
    chunk = {}
    for api, pts in sorted(over.items()):
        pts.sort(key=lambda p: p["chunksize"])
        entry = {"points": pts}
        for task_ms in CHUNK_TASK_MS:
            limit = OVERHEAD_BUDGET * task_ms * 1e6
            sure = [p["chunksize"] for p in pts
                    if p["ns_per_task_hi"] is not None and p["ns_per_task_hi"] < limit]
            point = [p["chunksize"] for p in pts if p["ns_per_task"] < limit]
            entry[f"chunksize_for_{task_ms}ms_tasks"] = min(sure) if sure else \
                (min(point) if point else None)
            # Decided: the chosen chunksize's interval clears the limit AND every smaller one's
            # lies wholly above it (known not to be enough: a smaller chunksize whose interval
            # straddles the limit might do, so ">= 100" would be ">= 10" in the next run: it
            # was, once, for CPython's imap at [3.4 us, 12.4 us] against 10 us); or none comes
            # near it (every median and every interval's low end above it: none is enough).
            smaller_not_enough = bool(sure) and all(
                p["ns_per_task_lo"] is not None and p["ns_per_task_lo"] >= limit
                for p in pts if p["chunksize"] < min(sure))
            entry[f"decided_for_{task_ms}ms_tasks"] = smaller_not_enough or (
                not point and all(p["ns_per_task_lo"] is not None and
                                  p["ns_per_task_lo"] >= limit for p in pts))
        chunk[api] = entry
    return chunk


def _side(figures, prefix, usable, cores, unstable, warnings):
    """The recommendation from one side's curves (prefix '' for libmproc, 'python/')."""
    out = {}
    cpu = _cpu(figures, prefix, usable, cores, unstable, warnings)
    if cpu:
        main = cpu.get(prefix + "pool/cpu") or cpu.get(prefix + "pool/cpu_pinned")
        out["cpu"] = dict(main)
        out["cpu"]["variants"] = cpu
        if prefix + "pool/cpu" in cpu:
            out["cores_minus_one"] = _cores_minus_one(main, cores)
        else:
            out["cores_minus_one"] = {"workers": max(1, cores - 1), "fraction_of_best": None,
                                      "decided": False, "verdict": "not measured"}
    io = _io(figures, prefix, usable, warnings)
    if io:
        out["io"] = io
    chunk = _chunksize(figures, prefix)
    if chunk:
        out["chunksize"] = chunk
    return out


def recommend(figures, budget, unstable=(), physical_cores=None, machine=None):
    """figures: {name: {counter: [repetitions] or median}}; budget: {'usable': int,
    'usable_cores': int, 'bound_by': str}; unstable: names whose repetitions' CV > 5 %;
    machine: machine_state() of the run ({'busy': bool or None, 'line': str}) or None."""
    usable = max(1, int(budget.get("usable", 1)))
    cores = int(physical_cores or budget.get("usable_cores") or usable)
    machine = machine or {"busy": None, "line": "machine state not recorded"}
    rec = {"schema": SCHEMA,
           "budget": {"usable": usable, "usable_cores": cores,
                      "bound_by": budget.get("bound_by", "unknown")},
           "machine": {"busy": machine.get("busy"), "line": machine.get("line")},
           "provisional": machine.get("busy") is True,
           "warnings": []}
    rec.update(_side(figures, "", usable, cores, unstable, rec["warnings"]))
    if "cpu" in rec:
        rec["cpu"]["bound_by"] = rec["budget"]["bound_by"]
    py = _side(figures, "python/", usable, cores, unstable, rec["warnings"])
    if py:
        rec["python"] = py
    if rec["provisional"]:
        rec["warnings"].insert(0, "the machine was busy (%s): every size here is provisional"
                               % machine.get("line"))
    return rec


def machine_state(run_dir):
    """{'busy': True/False/None, 'line': str, 'reasons': [...]} from RUN/noise.json (through
    noise.py where it is installed); busy None when the file is absent or unreadable:
    machine state unknown, not quiet."""
    doc = gbjson.read_side(run_dir, "noise")
    v = doc.get("verdict") if doc else None
    if not isinstance(v, dict) or not isinstance(v.get("busy"), bool):
        return {"busy": None, "line": "machine state not recorded", "reasons": []}
    line = v.get("line") or ("busy" if v["busy"] else "quiet")
    return {"busy": v["busy"], "line": str(line), "reasons": list(v.get("reasons") or [])}


def figures_of(run, cv_unstable=0.05):
    """({name: {counter: [repetitions]}}, unstable names) for the pool figures of a
    gbjson.Run, libmproc's and CPython's."""
    figs, unstable = {}, set()
    for name, f in run.figures.items():
        bare = name[len("python/"):] if name.startswith("python/") else name
        if not (bare.startswith("pool/") or bare.startswith("pool_overhead/")) or f.skipped:
            continue
        figs[name] = {k: [x for x in s.values if _finite(x)] for k, s in f.fields.items()}
        for key in ("tasks_per_second", "ns_per_task", "real_time"):
            s = f.value(key)
            if s is not None:
                if s.cv is not None and s.cv > cv_unstable:
                    unstable.add(name)
                break
    return figs, unstable


def budget_of(run):
    b = (run.topology or {}).get("budget") or (run.context or {}).get("budget") or {}
    counts = (run.topology or {}).get("counts") or {}
    return {"usable": b.get("usable", 1), "usable_cores": b.get("usable_cores"),
            "bound_by": b.get("bound_by", "unknown"), "physical_cores": counts.get("cores")}


def from_run(run):
    """The recommendation of a loaded gbjson.Run (its noise.json read for the machine)."""
    figs, unstable = figures_of(run)
    b = budget_of(run)
    rec = recommend(figs, b, unstable=unstable, physical_cores=b.get("usable_cores"),
                    machine=machine_state(run.path))
    if not figs:
        rec["warnings"].append("this run has no pool measurements (run with ONLY=pool, or "
                               "mproc-recommend --measure)")
    return rec


def _fmt_rate(v):
    return "%.1f" % v if _finite(v) else "?"


def _side_lines(side, who, tag):
    """Text lines for one side; who: '' (libmproc) or 'Python '."""
    lines = []
    if "cpu" in side:
        c = side["cpu"]
        frac = c.get("recommended_fraction_of_best")
        iv = ""
        if c.get("best_tasks_per_second_lo") is not None:
            iv = " [%s, %s]" % (_fmt_rate(c["best_tasks_per_second_lo"]),
                                _fmt_rate(c["best_tasks_per_second_hi"]))
        lines.append(
            f"{who}CPU-bound pool: {c['recommended_workers']} workers{tag} "
            f"({c['method']} on the {c['task_ms']} ms-task curve"
            + ("" if c.get("decided") else ", undecided: " + FEW_REPS)
            + f"; best {_fmt_rate(c['best_tasks_per_second'])}{iv} tasks/s at "
            f"{c['best_workers']}"
            + (f"; recommended size reaches {100 * frac:.1f} % of it" if frac else "")
            + ("; capped by the budget" if c.get("capped_by_budget") else "") + ")")
        if "cores_minus_one" in side:
            r = side["cores_minus_one"]
            lines.append(f"{who}'physical cores - 1' = {r['workers']}: {r['verdict']}"
                         + ("" if r.get("decided") or r["verdict"].startswith("not ")
                            else " (undecided: no intervals)"))
    elif not who:
        lines.append("CPU-bound pool: not measured (run the pool harness: "
                     "mproc-recommend --measure)")
    if "io" in side:
        parts = [f"{float(k):.0%} blocked -> {v}"
                 for k, v in side["io"]["by_blocking_fraction"].items()]
        lines.append(f"{who}I/O-bound pool{tag}: " + ", ".join(parts)
                     + ("" if side["io"].get("decided") else " (undecided: " + FEW_REPS + ")"))
    for api, e in (side.get("chunksize") or {}).items():
        def fmt(ms):
            c = e[f"chunksize_for_{ms}ms_tasks"]
            s = f">= {c}" if c is not None else "none measured is enough"
            return s + ("" if e[f"decided_for_{ms}ms_tasks"] else " (undecided)")
        lines.append(f"{who}chunksize ({api}){tag}: {fmt(1)} for 1 ms tasks, {fmt(20)} for "
                     "20 ms tasks (per-task overhead < 1 %)")
    return lines


def render_text(rec):
    """A few lines a person reads first."""
    b = rec["budget"]
    m = rec.get("machine") or {}
    tag = " (provisional: busy machine)" if rec.get("provisional") else ""
    lines = [f"usable CPUs: {b['usable']} ({b['usable_cores']} physical cores), "
             f"bound by {b['bound_by']}",
             "machine: %s" % (m.get("line") or "machine state not recorded")]
    lines += _side_lines(rec, "", tag)
    if rec.get("python"):
        lines += _side_lines(rec["python"], "Python ", tag)
    for w in rec.get("warnings", []):
        lines.append("warning: " + w)
    return "\n".join(lines)
