"""noise - what disturbed the machine while a run measured: <run>/noise.json.

The driver (bench/mproc-bench) takes a snapshot at the start of a run, before and after each
harness, and at the end, and writes noise.json atomically after each one, so an interrupted
run has it too. Readers call load(run_dir) (None when the file is absent: an old run, machine
state unknown, never "quiet") and verdict(run_dir) (the "verdict" object).

Schema "mproc-noise/1" (results/README.md, "noise.json"):

  usable_cpus   the CPUs the run may use (the budget of mproc-topo, else the affinity mask)
  static        {"governor", "boost", "thp"}: cpufreq governor of the usable CPUs ("a,b" when
                they differ), turbo/boost ("on"/"off"), transparent huge pages mode; null
                where unreadable (a VM without cpufreq has no governor)
  samples       [{"when": "start" | "before:<h>" | "after:<h>" | "end", "t", "loadavg",
                  "psi_cpu_some_avg10", "steal_pct", "probe_ns"}]: steal_pct is the share of
                the usable CPUs' time the hypervisor gave to someone else since the previous
                sample; probe_ns the speed probe (speed_probe: a fixed loop, fastest of 5)
  harnesses     {"<h>": {"wall_s", "nivcsw", "nvcsw", "steal_pct", "load_max",
                  "psi_some_avg10_max", "busy", "others_cpus", "self_cpus"}}: context switches
                and CPU time (self_cpus = CPU seconds / wall seconds) of the harness and every
                process it waited for (getrusage(RUSAGE_CHILDREN) deltas of the driver);
                others_cpus = the usable CPUs' busy time from /proc/stat over the harness,
                minus the harness's own CPU time, per wall second: what other processes took
  start         {"window_s", "others_cpus", "psi_some_pct", "reasons"}: the start window
                (below) and what it found
  verdict       {"busy", "reasons", "line"}: "quiet", or "busy: <reasons> — figures below are
                provisional"; "unknown: ..." (busy false) only when neither /proc/loadavg nor
                /proc/stat could be read

The rule (why it is not "load average > N"): a harness loads the machine itself, so the load
average and CPU pressure during and just after a harness say more about us than about anyone
else (the 1-minute load average keeps a harness's load for minutes after it ends). So:

  * At the start, before anything runs, the driver watches the usable CPUs for START_WINDOW_S:
    busy when other processes use more than BUSY_CPU_FRACTION of the usable CPUs in that
    window (the load average is quoted beside it, not judged alone: a build just before the
    run leaves it high for a minute), or when CPU pressure over the window (PSI "some",
    from its total counter) exceeds PSI_PCT, or when steal exceeds STEAL_PCT.
  * During each harness: busy when other processes (others_cpus, above) used more than
    BUSY_CPU_FRACTION of the usable CPUs, or steal exceeded STEAL_PCT. CPU pressure and load
    during a harness are recorded (psi_some_avg10_max, load_max) but not judged: a harness
    with more processes than CPUs makes them itself.
  * The CPU's speed: busy when the speed probe's slowest sample took more than SPEED_SPREAD
    times its fastest (the machine ran at two speeds during the run).
  * The run is busy when its start or any harness was busy, or its speed varied.

Stdlib only; every /proc and /sys path is read under a root directory (default "/"), so the
rule is tested on fixed files (tests/test_noise.py).
"""

import os
import time

from . import files
from . import gbjson

SCHEMA = "mproc-noise/1"
FILE = "noise.json"
BUSY_CPU_FRACTION = 0.5     # others using more than this share of the usable CPUs: busy
STEAL_PCT = 5.0             # steal above this share of the usable CPUs' time: busy
PSI_PCT = 20.0              # CPU pressure ("some") over the start window above this: busy
START_WINDOW_S = 1.0
SPEED_SPREAD = 1.5          # the speed probe's slowest sample over its fastest above this: busy
PROBE_LOOPS = 20000         # the probe's loop (about 1 ms here), timed PROBE_TRIALS times
PROBE_TRIALS = 5


def speed_probe(trials=PROBE_TRIALS, loops=PROBE_LOOPS):
    """ns of a fixed interpreter loop, the fastest of a few trials (a preemption inside one
    trial does not count): how fast this CPU runs right now. The same loop taking 1.8x longer
    from one minute to the next, on an idle 2-vCPU VM with 0 % steal, is what a host core
    shared with another guest (SMT, frequency) looks like from inside; steal and load do not
    show it, and every figure measured then is slower for it."""
    best = None
    for _ in range(trials):
        t = time.perf_counter_ns()
        acc = 0
        for i in range(loops):
            acc += i * i
        dt = time.perf_counter_ns() - t
        best = dt if best is None else min(best, dt)
    return best


def _read(root, path):
    try:
        with open(os.path.join(root, path.lstrip("/")), encoding="ascii",
                  errors="replace") as f:
            return f.read()
    except OSError:
        return None


def read_loadavg(root="/"):
    t = _read(root, "/proc/loadavg")
    try:
        return [float(x) for x in t.split()[:3]] if t else None
    except ValueError:
        return None


def read_psi(root="/"):
    """(avg10 in %, total in us) of /proc/pressure/cpu's "some" line, or (None, None)."""
    t = _read(root, "/proc/pressure/cpu")
    if not t:
        return None, None
    for line in t.splitlines():
        f = line.split()
        if f and f[0] == "some":
            kv = dict(x.split("=", 1) for x in f[1:] if "=" in x)
            try:
                return float(kv["avg10"]), int(kv["total"])
            except (KeyError, ValueError):
                return None, None
    return None, None


def read_stat(root="/", cpus=None):
    """{"busy": ticks, "steal": ticks, "total": ticks, "ncpu": n} summed over the cpuN lines
    of /proc/stat whose N is in cpus (all when cpus is None or none of them is listed); None
    when unreadable. busy excludes idle, iowait and steal; guest time is already in user."""
    t = _read(root, "/proc/stat")
    if not t:
        return None
    rows = {}
    for line in t.splitlines():
        f = line.split()
        if len(f) < 5 or not f[0].startswith("cpu") or f[0] == "cpu":
            continue
        try:
            rows[int(f[0][3:])] = [int(x) for x in f[1:]]
        except ValueError:
            continue
    if not rows:
        return None
    pick = [n for n in rows if cpus is None or n in cpus] or list(rows)
    out = {"busy": 0, "steal": 0, "total": 0, "ncpu": len(pick)}
    for n in pick:
        v = rows[n] + [0] * (8 - len(rows[n]))
        user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
        out["busy"] += user + nice + system + irq + softirq
        out["steal"] += steal
        out["total"] += user + nice + system + idle + iowait + irq + softirq + steal
    return out


def _cpu_list(text):
    """The CPUs of a list such as "0-3,8"."""
    out = set()
    for part in (text or "").strip().split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        try:
            out.update(range(int(a), int(b or a) + 1))
        except ValueError:
            return None
    return out


def read_static(root="/", cpus=None):
    govs = []
    for n in sorted(cpus) if cpus else [0]:
        g = _read(root, "/sys/devices/system/cpu/cpu%d/cpufreq/scaling_governor" % n)
        if g and g.strip() and g.strip() not in govs:
            govs.append(g.strip())
    boost = _read(root, "/sys/devices/system/cpu/cpufreq/boost")
    if boost is not None and boost.strip() in ("0", "1"):
        boost = "on" if boost.strip() == "1" else "off"
    else:
        nt = _read(root, "/sys/devices/system/cpu/intel_pstate/no_turbo")
        boost = ("off" if nt.strip() == "1" else "on") if nt and nt.strip() in ("0", "1") \
            else None
    thp = _read(root, "/sys/kernel/mm/transparent_hugepage/enabled")
    if thp:
        sel = [w[1:-1] for w in thp.split() if w.startswith("[") and w.endswith("]")]
        thp = sel[0] if sel else thp.strip() or None
    return {"governor": ",".join(govs) or None, "boost": boost, "thp": thp or None}


def _ticks_per_s():
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100.0


def _pct(part, whole):
    return round(100.0 * part / whole, 2) if whole and whole > 0 else None


def _r(v, nd=3):
    return None if v is None else round(v, nd)


class Recorder:
    """Snapshots of one run. usable_cpus: the run's CPU budget (None: the affinity mask's
    size); cpus: the CPUs to watch in /proc/stat (None: the affinity mask); clock and sleep
    are replaceable for tests."""

    def __init__(self, root="/", usable_cpus=None, cpus=None, clock=time.time,
                 sleep=time.sleep, probe=speed_probe):
        self.root = root
        if cpus is None:
            try:
                cpus = set(os.sched_getaffinity(0))
            except (AttributeError, OSError):
                cpus = None
        self.cpus = cpus
        self.usable = int(usable_cpus) if usable_cpus else (len(cpus) if cpus else 1)
        self.clock = clock
        self.sleep = sleep
        self.probe = probe
        self.hz = _ticks_per_s()
        self.doc = {"schema": SCHEMA, "usable_cpus": self.usable,
                    "static": read_static(root, cpus),
                    "samples": [], "harnesses": {},
                    "verdict": {"busy": False, "reasons": [], "line": "quiet"}}
        self.start_reasons = []
        self._prev_stat = None
        self._before = {}

    # -- snapshots ---------------------------------------------------------------------
    def _sample(self, when):
        stat = read_stat(self.root, self.cpus)
        psi, _ = read_psi(self.root)
        steal = None
        if stat and self._prev_stat:
            steal = _pct(stat["steal"] - self._prev_stat["steal"],
                         stat["total"] - self._prev_stat["total"])
        if stat:
            self._prev_stat = stat
        s = {"when": when, "t": round(self.clock(), 3), "loadavg": read_loadavg(self.root),
             "psi_cpu_some_avg10": psi, "steal_pct": steal,
             "probe_ns": self.probe() if self.probe else None}
        self.doc["samples"].append(s)
        return s, stat

    def start(self, window_s=START_WINDOW_S):
        """The start snapshot, after watching the usable CPUs for window_s with nothing of
        ours running. Returns the verdict so far (the driver warns when it is busy)."""
        stat0 = read_stat(self.root, self.cpus)
        _, psi_t0 = read_psi(self.root)
        t0 = self.clock()
        self._prev_stat = stat0
        self.sleep(window_s)
        s, stat1 = self._sample("start")
        _, psi_t1 = read_psi(self.root)
        wall = max(self.clock() - t0, 1e-3)
        reasons = []
        others = None
        if stat0 and stat1 and stat1["total"] > stat0["total"]:
            # Busy ticks as a share of all ticks, times the CPUs watched: CPUs' worth of work.
            others = (stat1["busy"] - stat0["busy"]) / (stat1["total"] - stat0["total"]) \
                * stat1["ncpu"]
        self.doc["start"] = {"window_s": round(wall, 3), "others_cpus": _r(others),
                             "psi_some_pct": _pct((psi_t1 - psi_t0) / 1e6, wall)
                             if psi_t0 is not None and psi_t1 is not None else None}
        load1 = s["loadavg"][0] if s["loadavg"] else None
        if others is not None and others > BUSY_CPU_FRACTION * self.usable:
            reasons.append("load %s on %d usable CPU%s (other processes using %.1f now)" % (
                "%.1f" % load1 if load1 is not None else "?", self.usable,
                "" if self.usable == 1 else "s", others))
        psi_pct = self.doc["start"]["psi_some_pct"]
        if psi_pct is not None and psi_pct > PSI_PCT:
            reasons.append("CPU pressure %.0f %%" % psi_pct)
        if s["steal_pct"] is not None and s["steal_pct"] > STEAL_PCT:
            reasons.append("%.0f %% steal" % s["steal_pct"])
        if stat0 is None and s["loadavg"] is None:
            reasons.append("unknown")
        self.start_reasons = reasons
        self.doc["start"]["reasons"] = reasons
        self._update_verdict()
        return self.doc["verdict"]

    def before(self, name, rusage_children=None):
        """rusage_children: resource.getrusage(RUSAGE_CHILDREN) now (or None)."""
        s, stat = self._sample("before:" + name)
        self._before[name] = (s, stat, rusage_children)

    def after(self, name, wall_s, rusage_children=None):
        s, stat = self._sample("after:" + name)
        b, stat0, ru0 = self._before.pop(name, (None, None, None))
        h = {"wall_s": _r(wall_s), "nivcsw": None, "nvcsw": None, "steal_pct": None,
             "load_max": None, "psi_some_avg10_max": None, "busy": False,
             "others_cpus": None, "self_cpus": None}
        cpu_s = None
        if ru0 is not None and rusage_children is not None:
            h["nivcsw"] = int(rusage_children.ru_nivcsw - ru0.ru_nivcsw)
            h["nvcsw"] = int(rusage_children.ru_nvcsw - ru0.ru_nvcsw)
            cpu_s = (rusage_children.ru_utime - ru0.ru_utime) + \
                (rusage_children.ru_stime - ru0.ru_stime)
            if wall_s:
                h["self_cpus"] = _r(cpu_s / wall_s)
        if stat0 and stat and stat["total"] > stat0["total"]:
            h["steal_pct"] = _pct(stat["steal"] - stat0["steal"], stat["total"] - stat0["total"])
            if cpu_s is not None and wall_s:
                busy_s = (stat["busy"] - stat0["busy"]) / self.hz
                h["others_cpus"] = _r(max(busy_s - cpu_s, 0.0) / wall_s)
        loads = [x["loadavg"][0] for x in (b, s) if x and x["loadavg"]]
        h["load_max"] = max(loads) if loads else None
        psis = [x["psi_cpu_some_avg10"] for x in (b, s)
                if x and x["psi_cpu_some_avg10"] is not None]
        h["psi_some_avg10_max"] = max(psis) if psis else None
        h["busy"] = bool((h["others_cpus"] is not None
                          and h["others_cpus"] > BUSY_CPU_FRACTION * self.usable)
                         or (h["steal_pct"] is not None and h["steal_pct"] > STEAL_PCT))
        self.doc["harnesses"][name] = h
        self._update_verdict()
        return h

    def end(self):
        self._sample("end")
        self._update_verdict()

    # -- the verdict ---------------------------------------------------------------------
    def _update_verdict(self):
        self.doc["verdict"] = judge(self.doc, self.start_reasons)

    def write(self, run_dir):
        return files.write_json(os.path.join(run_dir, FILE), self.doc)


def judge(doc, start_reasons):
    """The verdict object from the start's reasons and the harnesses' figures."""
    usable = doc.get("usable_cpus") or 1
    reasons = [r for r in start_reasons if r != "unknown"]
    busy_h = [(n, h) for n, h in doc.get("harnesses", {}).items() if h.get("busy")]
    crowded = [(n, h) for n, h in busy_h
               if h.get("others_cpus") is not None and h["others_cpus"] > BUSY_CPU_FRACTION * usable]
    if crowded:
        worst = max(h["others_cpus"] for _, h in crowded)
        reasons.append("other processes used up to %.1f of %d usable CPU%s during %s" % (
            worst, usable, "" if usable == 1 else "s", ", ".join(n for n, _ in crowded)))
    stolen = [(n, h) for n, h in busy_h
              if h.get("steal_pct") is not None and h["steal_pct"] > STEAL_PCT]
    if stolen:
        reasons.append("%.0f %% steal during %s" % (max(h["steal_pct"] for _, h in stolen),
                                                     ", ".join(n for n, _ in stolen)))
    probes = [x["probe_ns"] for x in doc.get("samples", [])
              if isinstance(x.get("probe_ns"), (int, float)) and x["probe_ns"] > 0]
    if len(probes) >= 2 and max(probes) > SPEED_SPREAD * min(probes):
        reasons.append("CPU speed varied %.1fx (a fixed loop took %.2g-%.2g ms, steal and "
                       "load do not show it: a host core shared with another guest?)" % (
                           max(probes) / min(probes), min(probes) / 1e6, max(probes) / 1e6))
    if reasons:
        return {"busy": True, "reasons": reasons,
                "line": "busy: %s — figures below are provisional" % "; ".join(reasons)}
    if "unknown" in start_reasons and not any(
            h.get("others_cpus") is not None or h.get("steal_pct") is not None
            for h in doc.get("harnesses", {}).values()):
        # Never "quiet" on no evidence: readers treat this like an absent file.
        return {"busy": False, "reasons": ["/proc/loadavg and /proc/stat unreadable"],
                "line": "unknown: /proc/loadavg and /proc/stat unreadable"}
    return {"busy": False, "reasons": [], "line": "quiet"}


def load(run_dir):
    """The run's noise.json as a dict; None when absent or unreadable (machine state
    unknown: not quiet)."""
    return gbjson.read_side(run_dir, "noise")


def verdict(run_dir):
    """The "verdict" object of the run's noise.json, or None when there is none."""
    doc = load(run_dir)
    v = doc.get("verdict") if doc else None
    return v if isinstance(v, dict) else None
