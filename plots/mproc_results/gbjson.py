"""gbjson - the one reader of a run in mproc: Google Benchmark JSON (and the CPython
comparators' JSON, which uses the same schema) and the run's side files. Stdlib only;
Python >= 3.8.

    run = gbjson.load_run("results/latest")
    for fig in run.figures.values():          # one Figure per stripped benchmark name
        fig.value("p50_ns").median, fig.value("real_time").cv

What it does, so no other program has to:
  - reads files with `json` (Google Benchmark writes bare NaN / Infinity, which `json` accepts);
  - strips Google Benchmark's name suffixes (/manual_time, /real_time, /process_time,
    /min_time:X, /min_warmup_time:X, /iterations:N, /repeats:N, /threads:N) so names read as
    DESIGN.md writes them ("baseline/pipe_rtt/placement:cross_core");
  - groups repetitions (run_type "iteration") by name and computes median, quartiles (IQR),
    min/max, mean, CV per field (real_time, cpu_time in ns, and every user counter);
  - keeps every repetition's value with its repetition_index (Stats.values, Stats.indices,
    Figure.by_repetition), so every figure gets a 95 % interval (Stats.ci, stats.py)
    and interleaved(run, a, b) says whether two figures sampled the same period;
  - where a file holds only aggregates (--benchmark_report_aggregates_only), uses the
    `_median` rows and the `_cv` row instead;
  - surfaces `error_occurred` entries as skipped-with-reason rather than as figures;
  - reads a run's side files (read_side / Run.side: context, topology, noise, decide,
    recommendation, crosscheck, answers), so no other program opens a run's JSON.

Errors: a missing or corrupt file raises GBJsonError with a one-line message.
"""

import json
import math
import os
import re
import statistics

from . import stats as _stats  # intervals and verdicts

__all__ = ["GBJsonError", "Stats", "Figure", "HarnessResult", "Run", "strip_suffixes",
           "load_file", "load_harness", "load_run", "is_run_dir", "TIME_FIELDS",
           "interleaved", "read_side", "SIDE_FILES"]

# Suffixes Google Benchmark appends to a family name, in the reverse of the order it appends
# them (BenchmarkName::str, 1.7.1 / 1.8.x: args, min_time, min_warmup_time, iterations,
# repeats, process_time, manual_time|real_time, threads). Each is stripped at most once, in
# this order, so an argument of our own named like a suffix ("spawn/fork/threads:8/manual_time")
# survives: only what follows the time type can be Google Benchmark's threads count.
_SUFFIXES = [re.compile(r"/" + p + r"$") for p in (
    r"threads:\d+", r"(?:manual_time|real_time)", r"process_time", r"repeats:\d+",
    r"iterations:\d+", r"min_warmup_time:[^/]*", r"min_time:[^/]*")]
# Aggregate names: "<name>_mean", "_median", "_stddev", "_cv" and custom ones ("_p99").
_AGG = re.compile(r"_(mean|median|stddev|cv|[A-Za-z0-9]+)$")

_TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
TIME_FIELDS = ("real_time", "cpu_time")
# Keys of a benchmark entry that are not user counters.
_NOT_COUNTERS = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
    "repetition_index", "threads", "aggregate_name", "aggregate_unit", "error_occurred",
    "error_message", "iterations", "real_time", "cpu_time", "time_unit", "label",
    "skipped", "skip_message", "big_o", "rms",
}

# Files in a run dir that are not harness results.
# SIDE_FILES: reader name -> file (results/README.md describes each).
SIDE_FILES = {"context": "context.json", "topology": "topology.json",
              "recommendation": "recommendation.json", "crosscheck": "crosscheck.json",
              "noise": "noise.json", "decide": "decide.json", "answers": "answers.json"}
RUN_META_FILES = set(SIDE_FILES.values())


# The way out, when a command is given something that is not a run.
RUN_HINT = "give a run directory: results/latest or results/<host>/<stamp>"


class GBJsonError(Exception):
    """A file that is missing, not JSON, or not Google Benchmark JSON."""


def strip_suffixes(name):
    """'baseline/x/placement:same_core/min_time:0.010/manual_time' -> 'baseline/x/placement:same_core'."""
    for rx in _SUFFIXES:
        name = rx.sub("", name, count=1)
    return name


def _finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _quantile(sorted_vals, q):
    """Linear interpolation between closest ranks (numpy's default), sorted input."""
    if not sorted_vals:
        return math.nan
    pos = (len(sorted_vals) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


class Stats:
    """Summary of one field over the repetitions of one benchmark.

    n counts finite values; nonfinite counts NaN/Infinity values (left out of the figures).
    cv is stddev/mean (sample stddev, as Google Benchmark's _cv); None with fewer than two
    values, or when given directly from an aggregate-only file (then `from_aggregate`).
    values are in repetition order; indices[i] is the repetition_index of values[i] (None
    from an aggregate-only file).
    """

    __slots__ = ("values", "indices", "n", "nonfinite", "median", "q1", "q3", "min", "max",
                 "mean", "stddev", "cv", "from_aggregate")

    def __init__(self, values, cv=None, from_aggregate=False, indices=None):
        self.values = list(values)
        self.indices = list(indices) if indices is not None else (
            None if from_aggregate else list(range(len(self.values))))
        fin = sorted(v for v in self.values if _finite(v))
        self.n = len(fin)
        self.nonfinite = len(self.values) - self.n
        self.from_aggregate = from_aggregate
        if fin:
            self.median = statistics.median(fin)
            self.q1, self.q3 = _quantile(fin, 0.25), _quantile(fin, 0.75)
            self.min, self.max = fin[0], fin[-1]
            self.mean = statistics.fmean(fin) if hasattr(statistics, "fmean") \
                else sum(fin) / len(fin)
        else:
            self.median = self.q1 = self.q3 = self.min = self.max = self.mean = math.nan
        self.stddev = statistics.stdev(fin) if len(fin) >= 2 else None
        if cv is not None:
            self.cv = cv if _finite(cv) else None
        elif self.stddev is not None and self.mean not in (0, 0.0):
            self.cv = abs(self.stddev / self.mean)
        else:
            self.cv = None

    @property
    def iqr(self):
        return self.q3 - self.q1

    def ci(self, level=0.95):
        """(lo, hi) interval of the median from order statistics (stats.py), or None
        with too few repetitions for `level` (fewer than 6 at 95 %) or from aggregates only."""
        if self.from_aggregate:
            return None
        return _stats.median_ci(self.values, level)

    def as_dict(self):
        return {k: getattr(self, k) for k in ("n", "median", "q1", "q3", "min", "max", "mean",
                                              "stddev", "cv")}

    def __repr__(self):
        return "Stats(n=%d, median=%r, cv=%r)" % (self.n, self.median, self.cv)


class Figure:
    """One benchmark name (suffixes stripped) of one harness: its repetitions, summarised.

    fields: {"real_time": Stats, "cpu_time": Stats, "<counter>": Stats, ...}; times in ns.
    skipped: None, or the reason (error_message) when every entry reported an error.
    """

    def __init__(self, name, harness):
        self.name = name
        self.harness = harness
        self.raw_names = []
        self.fields = {}
        self.label = None
        self.iterations = []
        self.skipped = None
        self.errors = []

    def value(self, field):
        """Stats of a field, or None."""
        return self.fields.get(field)

    def by_repetition(self, field):
        """{repetition_index: value} of a field ({} when absent or from aggregates only)."""
        s = self.fields.get(field)
        if s is None or s.indices is None:
            return {}
        return dict(zip(s.indices, s.values))

    def median(self, field, default=math.nan):
        s = self.fields.get(field)
        return s.median if s is not None else default

    @property
    def repetitions(self):
        s = self.fields.get("real_time")
        return s.n if s else 0

    def counters(self):
        return [k for k in self.fields if k not in TIME_FIELDS]

    def __repr__(self):
        return "Figure(%r, %s)" % (self.name, "skipped: " + self.skipped if self.skipped
                                   else "%d reps" % self.repetitions)


class HarnessResult:
    """One Google Benchmark JSON file: context, figures in file order, skipped entries."""

    def __init__(self, name, path, context, figures, skipped):
        self.name = name
        self.path = path
        self.context = context
        self.figures = figures            # {name: Figure}, insertion = file order
        self.skipped = skipped            # {name: reason}

    def __repr__(self):
        return "HarnessResult(%r, %d figures, %d skipped)" % (self.name, len(self.figures),
                                                              len(self.skipped))


def load_file(path):
    """Parse one Google Benchmark JSON file; raise GBJsonError with a one-line message."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise GBJsonError("%s: no such file" % path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise GBJsonError("%s: cannot read: %s" % (path, e)) from None
    except ValueError as e:
        raise GBJsonError("%s: not valid JSON: %s" % (path, e)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise GBJsonError("%s: not Google Benchmark JSON (no 'benchmarks' list)" % path)
    return doc


def summarize(doc, harness="?", path=None):
    """Google Benchmark JSON document -> HarnessResult."""
    per_name = {}      # stripped name -> {"iter": [entries], "agg": {agg_name: entry}, "err": [..]}
    order = []
    for e in doc["benchmarks"]:
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            continue
        run_type = e.get("run_type", "iteration")
        if run_type == "aggregate":
            base_raw = e.get("run_name")
            agg = e.get("aggregate_name")
            if not isinstance(base_raw, str):
                m = _AGG.search(e["name"])
                base_raw = e["name"][:m.start()] if m else e["name"]
                agg = agg or (m.group(1) if m else None)
        else:
            base_raw = e.get("run_name") if isinstance(e.get("run_name"), str) else e["name"]
            agg = None
        base = strip_suffixes(base_raw)
        slot = per_name.get(base)
        if slot is None:
            slot = per_name[base] = {"iter": [], "agg": {}, "err": [], "raw": set()}
            order.append(base)
        slot["raw"].add(base_raw)
        if e.get("error_occurred") or (e.get("skipped") not in (None, False, 0, "NotSkipped")):
            slot["err"].append(e.get("error_message") or e.get("skip_message") or "error")
        elif agg is not None:
            slot["agg"][agg] = e
        else:
            slot["iter"].append(e)

    figures, skipped = {}, {}
    for base in order:
        slot = per_name[base]
        fig = Figure(base, harness)
        fig.raw_names = sorted(slot["raw"])
        fig.errors = slot["err"]
        if slot["iter"]:
            _fill_from_iterations(fig, slot["iter"])
        elif "median" in slot["agg"] or "mean" in slot["agg"]:
            _fill_from_aggregates(fig, slot["agg"])
        if not fig.fields:
            fig.skipped = slot["err"][0] if slot["err"] else "no measurements"
            skipped[base] = fig.skipped
            continue
        figures[base] = fig
    return HarnessResult(harness, path, doc.get("context", {}) or {}, figures, skipped)


def _entry_fields(e):
    """{field: value} of one entry, times converted to ns."""
    scale = _TO_NS.get(e.get("time_unit", "ns"), 1.0)
    out = {}
    for k in TIME_FIELDS:
        v = e.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = v * scale
    for k, v in e.items():
        if k in _NOT_COUNTERS or isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            out[k] = float(v)
    return out


def _rep_index(e, pos):
    i = e.get("repetition_index")
    return i if isinstance(i, int) and not isinstance(i, bool) else pos


def _fill_from_iterations(fig, entries):
    entries = sorted(enumerate(entries), key=lambda pe: (_rep_index(pe[1], pe[0]), pe[0]))
    cols, idx = {}, {}
    for pos, e in entries:
        for k, v in _entry_fields(e).items():
            cols.setdefault(k, []).append(v)
            idx.setdefault(k, []).append(_rep_index(e, pos))
        fig.iterations.append(e.get("iterations"))
        if e.get("label") and not fig.label:
            fig.label = e["label"]
    for k, vals in cols.items():
        fig.fields[k] = Stats(vals, indices=idx[k])


def _fill_from_aggregates(fig, aggs):
    med = aggs.get("median") or aggs.get("mean")
    cvs = _entry_fields(aggs["cv"]) if "cv" in aggs else {}
    reps = med.get("repetitions") or med.get("iterations")
    for k, v in _entry_fields(med).items():
        cv = cvs.get(k)
        if cv is not None and k in TIME_FIELDS:
            # The _cv row's times are fractions, not times: undo the unit scaling.
            cv = aggs["cv"].get(k)
        fig.fields[k] = Stats([v], cv=cv, from_aggregate=True)
        fig.fields[k].n = reps if isinstance(reps, int) else 1
    if med.get("label"):
        fig.label = med["label"]


def interleaved(run, fig_a, fig_b):
    """True when two figures come from one harness file whose repetitions Google Benchmark
    shuffled together (mproc_random_interleaving): both sampled the same period. Not pairs:
    repetition i of A and repetition i of B were not measured together, so a ratio's interval
    is still unpaired (stats.ratio_ci(paired=False))."""
    if fig_a is None or fig_b is None or fig_a.harness != fig_b.harness:
        return False
    h = run.harnesses.get(fig_a.harness)
    return h is not None and str(h.context.get("mproc_random_interleaving")) == "true"


def load_harness(path, harness=None):
    harness = harness or os.path.splitext(os.path.basename(path))[0]
    return summarize(load_file(path), harness, path)


def is_run_dir(path):
    return os.path.isfile(os.path.join(path, "context.json"))


class Run:
    """A run directory: context.json, topology.json, one HarnessResult per <name>.json.

    figures: every figure of every harness, by name. load_errors: {file: message} for harness
    files that could not be read (a corrupt file does not hide the others).
    """

    def __init__(self, path):
        self.path = path
        self.context = {}
        self.topology = {}
        self.harnesses = {}
        self.load_errors = {}

    @property
    def figures(self):
        out = {}
        for h in self.harnesses.values():
            out.update(h.figures)
        return out

    @property
    def skipped(self):
        out = {}
        for h in self.harnesses.values():
            out.update(h.skipped)
        return out

    @property
    def complete(self):
        return bool(self.context.get("complete"))

    def side(self, name):
        """A side file of this run as a dict, or None (read_side)."""
        return read_side(self.path, name)

    def figures_matching(self, pattern):
        """[(Figure, match)] for names matching a regex (fullmatch), in file order."""
        rx = re.compile(pattern)
        out = []
        for f in self.figures.values():
            m = rx.fullmatch(f.name)
            if m:
                out.append((f, m))
        return out


def _read_json_dict(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise GBJsonError("%s: not valid JSON: %s" % (path, e)) from None
    if not isinstance(doc, dict):
        raise GBJsonError("%s: expected a JSON object" % path)
    return doc


def read_side(run_dir, name, strict=False):
    """A side file of a run (one of SIDE_FILES: "noise", "decide", "recommendation",
    "crosscheck", "answers", "context", "topology") as a dict; None when it is absent,
    unreadable or not a JSON object. Side files are optional: an older run has fewer, and a
    reader says what is missing rather than failing (load_run is strict about context.json).
    strict=True: absent is still None, but an unreadable file raises GBJsonError (one line)."""
    if strict:
        return _read_json_dict(os.path.join(run_dir, SIDE_FILES[name]))
    try:
        with open(os.path.join(run_dir, SIDE_FILES[name]), encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def load_run(path):
    """Load a run directory. Raises GBJsonError if it is not a run (no context.json) or if
    context.json itself is corrupt; corrupt harness files are kept in run.load_errors."""
    if not os.path.isdir(path):
        raise GBJsonError("%s: not a directory (%s)" % (path, RUN_HINT))
    ctx = _read_json_dict(os.path.join(path, "context.json"))
    if ctx is None:
        raise GBJsonError("%s: not a run directory (no context.json; %s)" % (path, RUN_HINT))
    run = Run(path)
    run.context = ctx
    try:
        run.topology = _read_json_dict(os.path.join(path, "topology.json")) or {}
    except GBJsonError as e:
        run.load_errors["topology.json"] = str(e)
    for fn in sorted(os.listdir(path)):
        if not fn.endswith(".json") or fn in RUN_META_FILES:
            continue
        full = os.path.join(path, fn)
        if not os.path.isfile(full):
            continue
        try:
            run.harnesses[fn[:-5]] = load_harness(full, fn[:-5])
        except GBJsonError as e:
            run.load_errors[fn] = str(e)
    return run
