"""Pool-size recommendation from measured pool curves (issue 7).

Input: a mapping from benchmark name (suffixes stripped, e.g. ``pool/cpu/workers:4/task_ms:20``)
to a dict of median figures (``tasks_per_second``, ``ns_per_task``, ``efficiency`` ...) and the
usable CPU budget of the run. Output: a JSON-ready dict with the CPU pool size (the knee:
the smallest N within 2 % of the best throughput), I/O pool sizes for given blocking
fractions, the chunksize that keeps per-task overhead under 1 % of the task time, and a
verdict on the "physical cores - 1" rule, each with its evidence.

No I/O here: the CLI (``mproc-recommend``) reads runs and writes files. Stdlib only.
"""

import math
import re

KNEE_TOLERANCE = 0.02        # "within 2 % of the best"
OVERHEAD_BUDGET = 0.01       # per-task overhead < 1 % of task time
IO_EFFICIENCY_FLOOR = 0.90   # an I/O pool size counts as measured-good above this efficiency
BLOCKING_FRACTIONS = (0.5, 0.9, 0.99)

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
    """{task_ms: [(workers, figures)]} for one family ('pool/cpu', 'pool/io' ...)."""
    out = {}
    for name, fig in figures.items():
        base, args = parse_args(name)
        if base != family or "workers" not in args:
            continue
        out.setdefault(args.get("task_ms", 0), []).append((args["workers"], fig))
    for k in out:
        out[k].sort(key=lambda t: t[0])
    return out


def knee(points, key="tasks_per_second", tolerance=KNEE_TOLERANCE):
    """Smallest N whose throughput is within tolerance of the best; (n, best_n, best)."""
    pts = [(n, f[key]) for n, f in points if _finite(f.get(key))]
    if not pts:
        return None
    best_n, best = max(pts, key=lambda t: t[1])
    for n, v in pts:
        if v >= (1 - tolerance) * best:
            return n, best_n, best
    return best_n, best_n, best


def _finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def recommend(figures, budget, unstable=(), physical_cores=None):
    """figures: {name: {counter: median}}; budget: {'usable': int, 'usable_cores': int,
    'bound_by': str}; unstable: names whose repetitions' CV > 5 %."""
    usable = max(1, int(budget.get("usable", 1)))
    cores = int(physical_cores or budget.get("usable_cores") or usable)
    rec = {"budget": {"usable": usable, "usable_cores": cores,
                      "bound_by": budget.get("bound_by", "unknown")},
           "warnings": []}

    # CPU-bound: the knee of the longest task's curve (least overhead-dominated), capped by
    # the budget: more workers than usable CPUs never buys CPU-bound throughput.
    cpu = {}
    for family in ("pool/cpu", "pool/cpu_pinned"):
        cs = curves(figures, family)
        if not cs:
            continue
        task_ms = max(cs)
        k = knee(cs[task_ms])
        if not k:
            continue
        n, best_n, best = k
        chosen = min(n, usable)
        by_n = {w: f.get("tasks_per_second") for w, f in cs[task_ms]}
        achieved = by_n.get(chosen)
        cpu[family] = {
            "task_ms": task_ms, "knee_workers": n, "recommended_workers": chosen,
            "best_workers": best_n, "best_tasks_per_second": best,
            "recommended_fraction_of_best": (achieved / best) if _finite(achieved) and best
            else None,
            "capped_by_budget": chosen < n,
            "curve": [[w, f.get("tasks_per_second"), f.get("speedup"), f.get("efficiency")]
                      for w, f in cs[task_ms]],
            "unstable_points": sorted(nm for nm in unstable if nm.startswith(family + "/")),
        }
        if cpu[family]["unstable_points"]:
            rec["warnings"].append(f"{family}: {len(cpu[family]['unstable_points'])} point(s) "
                                   "with CV > 5 %: the knee may move between runs")
    if cpu:
        main = cpu.get("pool/cpu") or cpu.get("pool/cpu_pinned")
        rec["cpu"] = dict(main)
        rec["cpu"]["variants"] = cpu
        rec["cpu"]["bound_by"] = rec["budget"]["bound_by"]

        # The folk rule "physical cores - 1": how much of the best does it reach here?
        rule_n = max(1, cores - 1)
        by_n = {w: f.get("tasks_per_second") for w, f in curves(figures, "pool/cpu").get(
            main["task_ms"], [])} if "pool/cpu" in cpu else {}
        v = by_n.get(rule_n)
        if cores <= 1:
            # One usable core (taskset -c 0, a 1-CPU container): the rule says 0 workers,
            # which is no pool at all; "right" would be a verdict on a rule that did not apply.
            rec["cores_minus_one"] = {
                "workers": 0, "fraction_of_best": None,
                "verdict": "not applicable: 1 usable core, the rule would give 0 workers"}
        elif _finite(v) and main["best_tasks_per_second"]:
            frac = v / main["best_tasks_per_second"]
            rec["cores_minus_one"] = {
                "workers": rule_n, "fraction_of_best": frac,
                "verdict": "right" if frac >= 1 - KNEE_TOLERANCE else
                f"leaves {100 * (1 - frac):.0f} % of the best throughput unused"}
        else:
            rec["cores_minus_one"] = {"workers": rule_n, "fraction_of_best": None,
                                      "verdict": "not measured"}

    # I/O-bound: N = ceil(usable / (1 - f)) (a task blocks f of its time), bounded by the
    # largest measured N that still ran at >= 90 % of ideal.
    io = curves(figures, "pool/io")
    if io:
        # The curve with the most worker counts (the bound below is only as fine as its
        # grid: quick runs measure CPython's 20 ms workload at 1, 8, 32 only), then the longest
        # task (the least overhead-dominated).
        task_ms = max(io, key=lambda ms: (len(io[ms]), ms))
        pts = io[task_ms]
        good = [w for w, f in pts if _finite(f.get("efficiency"))
                and f["efficiency"] >= IO_EFFICIENCY_FLOOR]
        max_good = max(good) if good else None
        sizes = {}
        for frac in BLOCKING_FRACTIONS:
            ideal = math.ceil(round(usable / (1 - frac), 6))
            sizes[str(frac)] = min(ideal, max_good) if max_good else ideal
        if max_good is None:
            rec["warnings"].append(
                f"pool/io: no measured point reached {IO_EFFICIENCY_FLOOR:.0%} of ideal "
                f"(best {max((f.get('efficiency') or 0) for _, f in pts):.2f}): the I/O sizes "
                "are the formula alone, not bounded by evidence")
        rec["io"] = {"task_ms": task_ms, "max_efficient_workers": max_good,
                     "by_blocking_fraction": sizes,
                     "curve": [[w, f.get("tasks_per_second"), f.get("efficiency")]
                               for w, f in pts]}

    # Chunksize: per-task overhead (ns) per API and chunksize; the smallest chunksize that keeps
    # overhead < 1 % of a task of 1 ms and of 20 ms.
    over = {}
    for name, fig in figures.items():
        base, args = parse_args(name)
        if not base.startswith("pool_overhead/") or "chunksize" not in args:
            continue
        v = fig.get("ns_per_task")
        if _finite(v):
            over.setdefault(base.split("/", 1)[1], []).append((args["chunksize"], v))
    if over:
        chunk = {}
        for api, pts in sorted(over.items()):
            pts.sort()
            entry = {"ns_per_task": [[c, v] for c, v in pts]}
            for task_ms in (1, 20):
                limit = OVERHEAD_BUDGET * task_ms * 1e6
                ok = [c for c, v in pts if v < limit]
                entry[f"chunksize_for_{task_ms}ms_tasks"] = min(ok) if ok else None
            chunk[api] = entry
        rec["chunksize"] = chunk
    return rec


def render_text(rec):
    """A few lines a person reads first."""
    b = rec["budget"]
    lines = [f"usable CPUs: {b['usable']} ({b['usable_cores']} physical cores), "
             f"bound by {b['bound_by']}"]
    if "cpu" in rec:
        c = rec["cpu"]
        frac = c.get("recommended_fraction_of_best")
        lines.append(
            f"CPU-bound pool: {c['recommended_workers']} workers "
            f"(knee of the {c['task_ms']} ms-task curve; best {c['best_tasks_per_second']:.1f} "
            f"tasks/s at {c['best_workers']}"
            + (f"; recommended size reaches {100 * frac:.1f} % of it" if frac else "") + ")")
        if "cores_minus_one" in rec:
            r = rec["cores_minus_one"]
            lines.append(f"'physical cores - 1' = {r['workers']}: {r['verdict']}")
    else:
        lines.append("CPU-bound pool: not measured (run the pool harness: "
                     "mproc-recommend --measure)")
    if "io" in rec:
        parts = [f"{float(k):.0%} blocked -> {v}" for k, v in rec["io"]["by_blocking_fraction"].items()]
        lines.append("I/O-bound pool: " + ", ".join(parts))
    if "chunksize" in rec:
        for api, e in rec["chunksize"].items():
            def fmt(c):
                return f">= {c}" if c is not None else "none measured is enough"
            lines.append(f"chunksize ({api}): {fmt(e['chunksize_for_1ms_tasks'])} for 1 ms "
                         f"tasks, {fmt(e['chunksize_for_20ms_tasks'])} for 20 ms tasks "
                         "(per-task overhead < 1 %)")
    for w in rec.get("warnings", []):
        lines.append("warning: " + w)
    return "\n".join(lines)
