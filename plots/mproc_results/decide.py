#!/usr/bin/env python3
"""decide - the decider: measure again, interleaved, the figure pairs that decide something
until their ratio decides or the profile's extra-time budget is spent; write RUN_DIR/decide.json.

    python3 -m mproc_results.decide RUN_DIR [--build DIR] [--profile P] [--python PY] [--budget S]

The driver (bench/mproc-bench) runs it after the harnesses, before the report. A deciding pair
is a headline row (mproc against CPython: report.py's HEADLINE) or one of the answers'
pairs (DECIDING below: start methods, Pipe or Queue, pool size). mproc's figure and CPython's
cannot be interleaved inside one Google Benchmark process, and even two mproc figures from
two harnesses were measured minutes apart, so after the main pass every pair whose ratio is
undecided, or whose 95 % interval is wider than +-5 % (MAX_HALF_WIDTH), is measured again
in alternating short runs: side A once (its harness with --benchmark_filter and 1
repetition; mp_bench.py --filter --repetitions 1 for CPython), side B once, then B before A
the next round, and so on, round-robin over the pairs, each round appending one pair of
samples measured seconds apart.

The interval of a pair (stats.py):
  - the decider's pairs alone once there are enough for an interval (6 at 95 %): paired
    ratios (each pair measured back to back);
  - before that, every value of each side (main pass + decider), unpaired bootstrap. The main
    pass's repetitions are never pairs, not even in one harness whose repetitions Google
    Benchmark shuffled together: repetition i of A and repetition i of B were not measured
    together.

Budget: smoke 0 s, quick 60 s, full 300 s of decider runs in total (--budget or
MPROC_DECIDE_BUDGET override it). A round is not started when the pair's last round says it
would overrun the budget.

decide.json (results/README.md documents it): {"schema": "mproc-decide/1", "profile",
"budget_s", "spent_s", "level", "max_half_width", "interrupted", "pairs": [...]}, each pair with
its sides, the main pass's interval, the decider's samples, the final interval and verdict,
"extended" (the decider measured it) and "status": "decided" (verdict better/worse and
interval within +-5 %), "wide" (a verdict, but wider than +-5 %), "equivalent" (undecided,
and the whole interval within +-5 % of 1: not extended further) or "undecided".
A third kind of pair is a target of targets.md whose two figures come from two harnesses
(report.py's CROSS_HARNESS_TARGETS: fork against the machine's fork + exit, the ring round trip
against the cache line): its verdict is against the target (A / B below it is "better"), not 1.
Rounds go to undecided pairs first, the answers' pairs before the headline rows; undecided
targets only once no answer or headline row is undecided (at most MAX_TARGET_ROUNDS each); what
is left of the budget then goes to wide pairs.
The verdict reads A against B in A's direction: "better" means A is faster (for times) or
higher (for rates) than B, beyond the interval.

Exit: 0 written (whatever the verdicts); 2 bad usage or not a run directory; 1 cannot write.
Stdlib only; Python >= 3.8.
"""

import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

from . import cli
from . import files
from . import fields as _fields
from . import gbjson
from . import paths
from . import stats

PROG = "decide"
SCHEMA = "mproc-decide/1"
LEVEL = 0.95
MAX_HALF_WIDTH = 0.05
BUDGET_S = {"smoke": 0.0, "quick": 60.0, "full": 300.0}
RUN_TIMEOUT_S = 60.0
MAX_ROUNDS = 40         # per pair: beyond this the pair is as decided as it will get
# per target pair (the project's own, not a user's answer): enough for a paired interval, and
# no more of the user's budget (a ring target near its bound took 35 of a quick run's 60 s)
MAX_TARGET_ROUNDS = 12
MP_BENCH = os.path.join(paths.BENCH, "python", "mp_bench.py")

TIME_FIELDS = ["p50_ns", "real_time"]
# Fields a run of one figure alone cannot give (a speedup is a ratio to workers:1, measured
# by another benchmark): their pairs keep the main pass's interval and are not extended.
NOT_ALONE = {"speedup", "efficiency"}

# The answers' deciding pairs: (id, what, A, B, fields). "{W}" is the usable CPU count,
# "{W-1}" one less (the pool-size question). A pair whose figures the run lacks is left out.
DECIDING = [
    ("start/forkserver_vs_spawn", "libmproc start method: forkserver against spawn",
     "spawn/forkserver/rss_mib:0", "spawn/spawn/rss_mib:0", TIME_FIELDS),
    ("start/fork_vs_forkserver", "libmproc start method: fork against forkserver",
     "spawn/fork/rss_mib:0", "spawn/forkserver/rss_mib:0", TIME_FIELDS),
    ("python_start/forkserver_vs_spawn", "Python start method: forkserver against spawn",
     "python/spawn/forkserver/rss_mib:0", "python/spawn/spawn/rss_mib:0", TIME_FIELDS),
    ("python_start/fork_vs_forkserver", "Python start method: fork against forkserver",
     "python/spawn/fork/rss_mib:0", "python/spawn/forkserver/rss_mib:0", TIME_FIELDS),
    ("channel/pipe_vs_queue", "libmproc one-to-one: Pipe against Queue round trip",
     "latency/conn_pipe/placement:cross_core", "latency/pipe_queue/placement:cross_core",
     TIME_FIELDS),
    ("python_channel/pipe_vs_queue", "Python one-to-one: Pipe against Queue round trip",
     "python/latency/conn_pipe/placement:cross_core",
     "python/latency/pipe_queue/placement:cross_core", TIME_FIELDS),
    ("pool/cpu_w_vs_w-1", "libmproc CPU-bound pool: {W} workers against {W-1}",
     "pool/cpu/workers:{W}/task_ms:20", "pool/cpu/workers:{W-1}/task_ms:20",
     ["tasks_per_second", "speedup"]),
    ("python_pool/cpu_w_vs_w-1", "Python CPU-bound pool: {W} workers against {W-1}",
     "python/pool/cpu/workers:{W}/task_ms:20", "python/pool/cpu/workers:{W-1}/task_ms:20",
     ["tasks_per_second", "speedup"]),
]


class UsageError(Exception):
    pass


def _finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _pick(fig, fields):
    """The first field with at least one finite value, or None."""
    if fig is None:
        return None
    for f in fields:
        s = fig.value(f)
        if s is not None and s.n > 0 and math.isfinite(s.median):
            return f
    return None


def _usable(run):
    b = (run.context.get("budget") or {}).get("usable")
    if isinstance(b, int) and b > 0:
        return b
    b = (run.topology.get("budget") or {}).get("usable") if run.topology else None
    return b if isinstance(b, int) and b > 0 else None


class Pair:
    """Two figures whose ratio decides something; A's direction is the verdict's."""

    def __init__(self, pid, what, source, a, b, field_a, field_b, threshold=1.0):
        self.id = pid
        self.what = what
        self.source = source            # "headline" | "answer" | "target"
        # What the ratio is decided against: 1 (which side is better), or a target's bound
        # (A / B against it: "better" is on the target's side).
        self.threshold = threshold
        self.a, self.b = a, b
        self.field_a, self.field_b = field_a, field_b
        self.higher_is_better = _fields.higher_is_better(field_a)
        self.main_a, self.main_b = [], []     # main pass values (never pairs: see _result)
        self.main_interleaved = False         # both from one harness, shuffled together
        self.main = None                      # the main pass's result (dict)
        self.samples_a, self.samples_b = [], []
        self.round_s = []                     # seconds each decider round took
        self.errors = []
        self._cache = None

    def result(self):
        """(ratio, lo, hi, method) from everything measured so far."""
        key = (len(self.main_a), len(self.samples_a), len(self.samples_b))
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._result())
        return self._cache[1]

    def _result(self):
        # Only the decider's rounds are pairs (A and B back to back); the main pass's
        # repetitions, even those Google Benchmark shuffled together, were not measured in
        # pairs, so they count on each side of an unpaired bootstrap.
        na = len(self.samples_a)
        if na >= stats.min_repetitions(LEVEL):
            r, lo, hi = stats.ratio_ci(self.samples_a, self.samples_b, True, LEVEL)
            if lo is not None:
                return r, lo, hi, "paired (decider runs only)"
        r, lo, hi = stats.ratio_ci(self.main_a + self.samples_a,
                                   self.main_b + self.samples_b, False, LEVEL)
        return r, lo, hi, "unpaired (bootstrap)"

    def summary(self):
        r, lo, hi, method = self.result()
        v = stats.verdict(lo, hi, self.threshold, self.higher_is_better)
        hw = stats.half_width(r, lo, hi)
        return {"ratio": r if _finite(r) else None, "lo": lo, "hi": hi,
                "interval": method if lo is not None else None,
                "verdict": v, "half_width": hw,
                "n_a": len(self.main_a) + len(self.samples_a),
                "n_b": len(self.main_b) + len(self.samples_b)}

    def equivalent(self):
        """Undecided, but the whole interval lies within +-MAX_HALF_WIDTH of the threshold
        (1: the two sides differ by less than that), and more rounds would only say so more
        precisely. (Two such ties took 40 rounds each, the whole of a quick run's 60 s.)"""
        s = self.summary()
        t = self.threshold
        return s["verdict"] == "undecided" and s["lo"] is not None and \
            s["lo"] >= t / (1 + MAX_HALF_WIDTH) and s["hi"] <= t * (1 + MAX_HALF_WIDTH)

    def needs_more(self):
        s = self.summary()
        if self.equivalent():
            return False
        return s["verdict"] == "undecided" or s["half_width"] is None \
            or s["half_width"] > MAX_HALF_WIDTH

    def status(self):
        s = self.summary()
        if self.equivalent():
            return "equivalent"
        if s["verdict"] == "undecided":
            return "undecided"
        return "wide" if s["half_width"] is None or s["half_width"] > MAX_HALF_WIDTH \
            else "decided"

    def why(self):
        s = self.summary()
        if s["lo"] is None:
            return "too few repetitions for a %d %% interval (%d and %d values)" % (
                LEVEL * 100, s["n_a"], s["n_b"])
        txt = "ratio %.4g, %d %% interval [%.4g, %.4g] (%s)" % (
            s["ratio"], LEVEL * 100, s["lo"], s["hi"], s["interval"])
        if self.equivalent():
            return txt + ": straddles %g, within +-%d %% of it" % (self.threshold,
                                                                  MAX_HALF_WIDTH * 100)
        if s["verdict"] == "undecided":
            return txt + ": straddles %g" % self.threshold
        if s["half_width"] > MAX_HALF_WIDTH:
            return txt + ": wider than +-%d %%" % (MAX_HALF_WIDTH * 100)
        return txt

    def why_not_extended(self):
        if self.field_a in NOT_ALONE or self.field_b in NOT_ALONE:
            return "%s is relative to another figure: not measured again alone" % self.field_a
        return None

    def as_dict(self):
        return {"id": self.id, "what": self.what, "source": self.source,
                "a": self.a, "b": self.b, "field_a": self.field_a, "field_b": self.field_b,
                "higher_is_better": self.higher_is_better, "threshold": self.threshold,
                "main": self.main, "extended": bool(self.samples_a),
                "rounds": len(self.samples_a),
                "samples": {"a": self.samples_a, "b": self.samples_b},
                "final": self.summary(), "status": self.status(), "why": self.why(),
                "not_extended": self.why_not_extended(), "errors": self.errors}


def _make_pair(run, pid, what, source, a, b, fields, threshold=1.0):
    figs = run.figures
    fa, fb = figs.get(a), figs.get(b)
    if fa is None or fb is None:
        return None
    field_a, field_b = _pick(fa, fields), _pick(fb, fields)
    if not _fields.comparable(field_a, field_b):
        return None
    if fa.median("hang", 0) > 0 or fb.median("hang", 0) > 0:
        return None
    p = Pair(pid, what, source, a, b, field_a, field_b, threshold)
    p.main_interleaved = gbjson.interleaved(run, fa, fb)
    p.main_a = list(fa.value(field_a).values) if not fa.value(field_a).from_aggregate else []
    p.main_b = list(fb.value(field_b).values) if not fb.value(field_b).from_aggregate else []
    p.main = p.summary()
    return p


# The order in which undecided pairs get the budget: what report.md tells a user to use, what
# it shows (mproc against CPython), then the project's own targets (targets.md).
SOURCE_RANK = {"answer": 0, "headline": 1, "target": 2}


def deciding_pairs(run):
    """[Pair] of the run: the headline rows (mproc against CPython), then DECIDING, then the
    targets whose figures come from two harnesses (report.CROSS_HARNESS_TARGETS)."""
    pairs, seen = [], set()
    try:
        from . import report
        headline = report.HEADLINE
    except Exception:  # noqa: BLE001  the report's table is optional here
        report, headline = None, []
    w = _usable(run)
    for what, name, pyname, fields, _ref in headline:
        if "{W}" in name:
            ww = report._headline_workers(run, name, pyname)
            if ww is None:
                continue
            name, what = name.replace("{W}", str(ww)), what.replace("{W}", str(ww))
        pyname = pyname or "python/" + name
        # As the report's headline (report.headline_rows): mproc's figure measured where
        # CPython's was, its unpinned twin where the plain name is pinned (the manager), so
        # that the pair measured again is the pair the report compares.
        if (report is not None and not report.same_placement(name, pyname)
                and name + "/placement:unpinned" in run.figures):
            name = name + "/placement:unpinned"
        p = _make_pair(run, "headline/" + name, what + " (mproc against CPython)",
                       "headline", name, pyname, fields)
        if p is not None and (p.a, p.b) not in seen:
            seen.add((p.a, p.b))
            pairs.append(p)
    for pid, what, a, b, fields in DECIDING:
        if "{W" in a + b:
            if w is None or w < 2:
                continue
            sub = {"{W}": str(w), "{W-1}": str(w - 1)}
            for k, v in sub.items():
                a, b, what = a.replace(k, v), b.replace(k, v), what.replace(k, v)
        p = _make_pair(run, pid, what, "answer", a, b, fields)
        if p is not None and (p.a, p.b) not in seen:
            seen.add((p.a, p.b))
            pairs.append(p)
    for pid, what, a, b, thr in (report.CROSS_HARNESS_TARGETS if report is not None else []):
        p = _make_pair(run, pid, what + " (a target: targets.md)", "target", a, b,
                       TIME_FIELDS, thr)
        if p is not None and (p.a, p.b) not in seen:
            seen.add((p.a, p.b))
            pairs.append(p)
    return pairs


# ------------------------------------------------------------------------------------------
# one short run of one figure

_ERE_SPECIAL = re.compile(r"([.\[\]()*+?{}|^$\\])")
# The suffixes Google Benchmark may append to a name (gbjson.strip_suffixes).
_GB_SUFFIXES = ("(/(manual_time|real_time|process_time|min_time:[^/]*|min_warmup_time:[^/]*|"
                "iterations:[0-9]+|repeats:[0-9]+|threads:[0-9]+))*")


def gb_filter(name):
    """A --benchmark_filter (POSIX extended regex) that matches this name and only it, with
    any of Google Benchmark's suffixes after it."""
    return "^" + _ERE_SPECIAL.sub(r"\\\1", name) + _GB_SUFFIXES + "$"


def python_group(name):
    """mp_bench.py's group of a python/... name."""
    parts = name.split("/")
    if len(parts) < 2 or parts[0] != "python":
        return None
    if parts[1] == "pool" and len(parts) > 2 and parts[2] == "failure":
        return "pool_failure"
    return parts[1]


class Measurer:
    """Runs one repetition of one figure and returns the field's value (or raises)."""

    def __init__(self, run, build, profile, python):
        self.run = run
        self.build = build
        self.profile = profile
        self.python = python
        self.tmp = tempfile.mkdtemp(prefix="mproc-decide-")

    def close(self):
        for fn in os.listdir(self.tmp):
            try:
                os.unlink(os.path.join(self.tmp, fn))
            except OSError:
                pass
        try:
            os.rmdir(self.tmp)
        except OSError:
            pass

    def argv(self, name, out):
        fig = self.run.figures.get(name)
        harness = fig.harness if fig is not None else None
        if harness == "python" or name.startswith("python/"):
            group = python_group(name)
            if group is None:
                raise RuntimeError("%s: no CPython comparator group" % name)
            topo = os.path.join(self.run.path, "topology.json")
            return [self.python, MP_BENCH, "--profile", self.profile, "--only", group,
                    "--filter", "^" + re.escape(name) + "$", "--repetitions", "1",
                    "--out", out] + (["--topology", topo] if os.path.isfile(topo) else [])
        exe = os.path.join(self.build, "bench", "bench_" + str(harness))
        if not os.access(exe, os.X_OK):
            raise RuntimeError("%s: no harness %s" % (name, exe))
        return [exe, "--profile=" + self.profile, "--benchmark_filter=" + gb_filter(name),
                "--benchmark_repetitions=1", "--benchmark_out=" + out,
                "--benchmark_out_format=json"]

    def __call__(self, name, field):
        out = os.path.join(self.tmp, "one.json")
        if os.path.exists(out):
            os.unlink(out)
        argv = self.argv(name, out)
        env = dict(os.environ, MPROC_PROFILE=self.profile)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=env, start_new_session=True)
        try:
            _, err = p.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _killpg(p.pid)
            p.communicate()
            raise RuntimeError("%s: timed out after %g s" % (name, RUN_TIMEOUT_S)) from None
        finally:
            _killpg(p.pid)
        if p.returncode != 0:
            last = (err or b"").decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise RuntimeError("%s: exit %d %s" % (name, p.returncode, last[0]))
        h = gbjson.load_harness(out, "one")
        fig = h.figures.get(name)
        if fig is None:
            why = h.skipped.get(name)
            raise RuntimeError("%s: %s" % (name, why or "not in the output"))
        s = fig.value(field)
        vals = [v for v in (s.values if s else []) if _finite(v)]
        if not vals:
            raise RuntimeError("%s: no %s" % (name, field))
        return vals[0]


def _killpg(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ------------------------------------------------------------------------------------------
# the loop


class Stop:
    signum = 0


def _on_signal(signum, _frame):
    Stop.signum = signum


def extend(pairs, measure, budget_s, clock=time.monotonic, log=None):
    """Round-robin over the pairs that need more until each decides or the budget is spent.
    measure(name, field) -> value. Returns (seconds spent, budget_exhausted)."""
    spent = 0.0
    exhausted = False
    while not Stop.signum:
        todo = [p for p in pairs if p.needs_more() and len(p.errors) < 2
                and len(p.round_s) < (MAX_TARGET_ROUNDS if p.source == "target" else MAX_ROUNDS)
                and p.field_a not in NOT_ALONE and p.field_b not in NOT_ALONE]
        if not todo:
            break
        # Undecided pairs only, while any needs more: a wide interval that already decides
        # matters less than an answer that cannot be given (a quick run's 60 s went to
        # 180x-apart start-method pairs while a pool-size pair stayed undecided).
        undecided = [p for p in todo if p.summary()["verdict"] == "undecided"]
        # The project's own targets wait while a user's answer or headline row is undecided:
        # the budget is the user's (a ring target took 12 of a quick run's 60 s while the
        # start-method answer stayed undecided).
        users = [p for p in undecided if p.source != "target"]
        todo = users or undecided or todo
        # Within a class, the answers' pairs first: they decide what report.md tells a user
        # to use; a headline row (mproc against CPython) informs; a target is the project's
        # own (SOURCE_RANK). Stable: the order within a source is the pairs' own.
        todo.sort(key=lambda p: SOURCE_RANK.get(p.source, len(SOURCE_RANK)))
        progressed = False
        t_cycle = clock()
        for p in todo:
            if Stop.signum:
                break
            est = max(p.round_s) if p.round_s else 0.0
            so_far = spent + (clock() - t_cycle)    # this cycle's rounds count at once
            if so_far + est > budget_s or so_far >= budget_s:
                exhausted = True
                continue
            t0 = clock()
            order = [(p.a, p.field_a), (p.b, p.field_b)]
            if len(p.samples_a) % 2:
                order.reverse()             # A B, then B A: neither side always goes first
            got = {}
            try:
                for name, field in order:
                    got[name] = measure(name, field)
            except Exception as e:  # noqa: BLE001  one failing figure must not stop the rest
                p.errors.append(str(e))
                if log:
                    log("%s: %s" % (p.id, e))
            else:
                p.samples_a.append(got[p.a])
                p.samples_b.append(got[p.b])
            p.round_s.append(clock() - t0)
            progressed = True
        spent += clock() - t_cycle         # the intervals' arithmetic counts too
        if not progressed:
            break
    return spent, exhausted


def write(run_dir, doc):
    return files.write_json(os.path.join(run_dir, "decide.json"), doc)


def load(run_dir):
    """decide.json of a run as a dict, or None when absent (older runs) or unreadable."""
    doc = gbjson.read_side(run_dir, "decide")
    return doc if doc is not None and isinstance(doc.get("pairs"), list) else None


def decide(run_dir, build, profile, python, budget_s, measure=None, log=None):
    """Load the run, extend its deciding pairs, write decide.json; returns the document."""
    run = gbjson.load_run(run_dir)
    pairs = deciding_pairs(run)
    m = measure or Measurer(run, build, profile, python)
    t0 = time.monotonic()
    try:
        spent, exhausted = extend(pairs, m, budget_s, log=log)
    finally:
        if measure is None:
            m.close()
    doc = {"schema": SCHEMA, "profile": profile, "budget_s": budget_s,
           "spent_s": round(spent, 3), "elapsed_s": round(time.monotonic() - t0, 3),
           "budget_exhausted": exhausted, "interrupted": bool(Stop.signum),
           "level": LEVEL, "max_half_width": MAX_HALF_WIDTH,
           "pairs": [p.as_dict() for p in pairs]}
    write(run_dir, doc)
    return doc


def summary_lines(doc):
    """Lines for the driver's output: what was extended, what stayed undecided."""
    pairs = doc.get("pairs", [])
    ext = [p for p in pairs if p.get("extended")]
    und = [p for p in pairs if p.get("status") != "decided"]
    out = ["decide: %d deciding pair(s), %d measured again (%.1f s of %g s)%s" % (
        len(pairs), len(ext), doc.get("spent_s", 0), doc.get("budget_s", 0),
        "; budget spent" if doc.get("budget_exhausted") else "")]
    for p in und:
        out.append("decide: %s: %s — %s" % (p["status"], p["what"], p["why"]))
    return out


def main(argv=None):
    ap = cli.Parser(PROG, "PYTHONPATH=plots python3 -m mproc_results.decide",
                    description="Measure the deciding pairs of a run again, interleaved, "
                    "within a time budget (decide.json).")
    ap.add_argument("run_dir")
    ap.add_argument("--build", default=os.path.join(paths.ROOT, "build"))
    ap.add_argument("--profile", default=None, help="default: the run's (context.json)")
    ap.add_argument("--python", default="/usr/bin/python3" if os.access(
        "/usr/bin/python3", os.X_OK) else sys.executable)
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds of decider runs (default: smoke 0, quick 60, full 300; "
                         "also MPROC_DECIDE_BUDGET)")
    a = ap.parse_args(argv)
    if not gbjson.is_run_dir(a.run_dir):
        print("%s: %s: not a run directory (no context.json)" % (PROG, a.run_dir),
              file=sys.stderr)
        return 2
    try:
        ctx = gbjson.read_side(a.run_dir, "context", strict=True) or {}
    except gbjson.GBJsonError as e:
        print("%s: %s" % (PROG, e), file=sys.stderr)
        return 2
    profile = a.profile or ctx.get("profile") or "quick"
    if profile not in BUDGET_S:
        print("%s: unknown profile '%s' (valid: %s)" % (PROG, profile, ", ".join(BUDGET_S)),
              file=sys.stderr)
        return 2
    budget = a.budget
    env_b = os.environ.get("MPROC_DECIDE_BUDGET", "").strip()
    if budget is None and env_b:
        try:
            budget = float(env_b)
        except ValueError:
            budget = -1
    if budget is None:
        budget = BUDGET_S[profile]
    if not (_finite(budget) and budget >= 0):
        print("%s: bad budget '%s' (seconds >= 0)" % (PROG, a.budget if a.budget is not None
                                                      else env_b), file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        doc = decide(a.run_dir, a.build, profile, a.python, budget,
                     log=lambda s: print("decide: " + s, flush=True))
    except gbjson.GBJsonError as e:
        print("%s: %s" % (PROG, e), file=sys.stderr)
        return 2
    except OSError as e:
        print("%s: cannot write decide.json: %s" % (PROG, e), file=sys.stderr)
        return 1
    for line in summary_lines(doc):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
