#!/usr/bin/env python3
"""crosscheck - measure what a run measured with independent tools, on the same machine, and
put their figure beside ours (RUN_DIR/crosscheck.json; the report's "Cross-checks" section).

    python3 -m mproc_results.crosscheck RUN_DIR [--profile smoke|quick|full] [--timeout S]

Run by mproc-bench after the harnesses (unless --no-crosscheck or MPROC_CROSSCHECK=0). A tool
that is not installed is one line, "not installed"; a check whose mproc figure is not in the
run (its harness was not selected) is skipped without running the tool. A tool figure more
than 2x away from ours, either way, is flagged with both numbers: one of the two measures
something else than we think, and the report says so.

The pairings (what each tool measures, and what of ours it is compared with). Each tool is
paired ONLY with figures that measure the same operation the same way (same processes, same
placement, same statistic), so that DISAGREE means a real disagreement; a figure that adds
work of its own (framing, a queue's lock, a library's process object) is never a pairing:

  perf bench sched pipe -l N     (Debian linux-perf; Ubuntu linux-tools-<kernel>)
      Two processes, two pipes; each loop the parent writes 4 bytes to the child and reads
      them back, so one "op" is one ROUND TRIP and `usecs/op` x 1000 is the round trip in ns
      (total wall time / loops, a mean). The tool is pinned to one PU (both processes inherit
      the affinity), so it pairs with our bare same-core pipe round trips, compared as means
      (real_time): baseline/pipe_rtt/placement:same_core (two minimal processes, as perf's)
      and latency/raw_pipe/placement:same_core. Not latency/conn_pipe (mproc_conn's framing
      and checks are work perf does not do).
  hackbench -p -s 64 -g 1 -f 1 -l L   (rt-tests)
      One sender and one receiver process, L 64-byte messages over one pipe, each a plain
      write(2) and read(2): L messages in `Time:` seconds. The per-message cost (Time / L)
      pairs with the raw-pipe fan-out of the same shape, 1 / msgs_per_second of
      queue/raw_pipe/bytes:64/producers:1/consumers:1 (a bare pipe, one write and one read
      per item, unpinned, as hackbench is). Not queue/pipe (mproc's framed queue: a lock and
      a length per item, work hackbench does not do), and no wider fan-out: with F > 1
      hackbench gives each receiver its own pipe that F senders share, a shape no figure of
      ours has (queue/raw_pipe runs 1x1 only).
  stress-ng --switch 1 --switch-method pipe -t T --metrics
      A writer and a reader process on an O_DIRECT pipe shrunk to one slot: every 1-byte
      write fills it, the next write blocks and hands the CPU to the reader, whose next read
      blocks and hands it back. "nanosecs per context switch (pipe method)" is wall time /
      writes: despite its name, each write costs TWO context switches (its sem-sysv method
      divides by 2 x ops, the pipe method does not), one write and one read. Our same-core
      pipe round trip is the same two switches with two writes and two reads, so, pinned to
      one PU, it pairs with baseline/pipe_rtt/placement:same_core and
      latency/raw_pipe/placement:same_core as they are (real_time, a mean); the extra
      write+read pair on our side is a syscall's worth, small beside two switches.
  stress-ng --fork 1 --fork-max 1 -t T --metrics
      fork() + _exit() + waitpid in a loop; wall time / bogo ops is one fork to reap. Pairs
      with the same loop of ours: baseline/fork_exit (in mproc-floor, a minimal static
      process) and baseline/fork_exit_harness (in the harness process); stress-ng's own
      process, a dynamically linked program of many libraries, lies between the two, and a
      fork's cost grows with the mappings it copies. Not spawn/fork/rss_mib:0 (mproc's
      process object and status pipe are work the loop does not do). `--clone` is not used:
      its children are made with random clone flag sets (namespaces, CLONE_VM, ...) and its
      "microsecs per clone" times the clone() call alone, so no figure of ours means the same.
  lscpu -p, hwloc-calc --whole-system --number-of pu|core|package machine:0, nproc
      PU, core and package counts must equal mproc-topo's (topology.json `counts`, the whole
      machine as hwloc sees it); nproc (sched_getaffinity, OMP_* removed from its
      environment) must equal the budget's affinity limit. Any difference is flagged.

Bounded: a tool gets about TARGET_S of work (its loop count is sized from our own figure) and
is killed (its whole process group) at its timeout; the whole step stops at TOTAL_S. SIGINT,
SIGTERM and SIGHUP kill the running tool, write what was measured, and exit 128+signal.
Tools are found on PATH; MPROC_CROSSCHECK_PATH replaces PATH for the lookup (and turns off
the perf_<version> / linux-tools fall-backs). Stdlib only; Python >= 3.8.

Exit: 0 written (whatever the tools did); 2 bad usage or RUN_DIR not a run; 1 cannot write.
"""

import ctypes
import datetime
import glob
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
from . import cli
from . import files
from .fields import fmt_ns
from . import gbjson

PROG = "crosscheck"
SCHEMA = "mproc-crosscheck/1"
THRESHOLD = 2.0                 # a ratio above this, or below 1/this, is flagged
PROFILES = ("smoke", "quick", "full")
# Seconds of work per loop-count tool (perf, hackbench), per profile, if the tool runs at our
# own figure's speed: a tool 10x slower than us (a loaded machine) still ends well before its
# timeout, and a few hundred ms of round trips is thousands of samples.
TARGET_S = {"smoke": 0.1, "quick": 0.25, "full": 1.0}
# stress-ng's -t is whole seconds.
STRESS_S = {"smoke": 1, "quick": 1, "full": 2}
# A tool is killed after this long; the whole step gives up at TOTAL_S.
TOOL_TIMEOUT_S = {"smoke": 5.0, "quick": 10.0, "full": 20.0}
TOTAL_S = {"smoke": 12.0, "quick": 20.0, "full": 45.0}
VERSION_TIMEOUT_S = 5.0
GRACE_S = 0.5


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------------
# running a tool

class State:
    """The signal that stopped us (if any) and the tool running now."""

    def __init__(self):
        self.signum = None
        self.current = None

    def install(self):
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, self._handler)

    def _handler(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        p = self.current
        if p is not None and p.returncode is None:
            _killpg(p.pid, signal.SIGKILL)


STATE = State()


def _killpg(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


LIBC = _libc()


def _preexec(cpu):
    def fn():
        try:
            if LIBC is not None:
                LIBC.prctl(1, signal.SIGKILL, 0, 0, 0)     # PR_SET_PDEATHSIG: die with us
        except AttributeError:
            pass
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
    return fn


class ToolRun:
    def __init__(self, status, rc, out, elapsed):
        self.status = status        # "ok", "failed", "timeout", "interrupted", "cannot start"
        self.rc = rc
        self.out = out
        self.elapsed = elapsed


def _exited(p, timeout):
    """Wait up to timeout for p to exit, without reaping it (WNOWAIT): True once it has."""
    end = time.monotonic() + max(timeout, 0.0)
    while True:
        try:
            if os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.01)


def run_tool(argv, timeout, cpu=None, env=None, cwd=None):
    """Run argv in its own process group, stdout+stderr to a temporary file (a grandchild that
    keeps a pipe open cannot hang us); kill the group at the timeout. Never raises."""
    if STATE.signum:
        return ToolRun("interrupted", None, "", 0.0)
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as out:
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 preexec_fn=_preexec(cpu), env=env, cwd=cwd)
        except (OSError, subprocess.SubprocessError) as e:   # the latter: preexec failed
            return ToolRun("cannot start", None, "cannot start: %s"
                           % (getattr(e, "strerror", None) or e), 0.0)
        STATE.current = p
        timed_out = False
        try:
            if not _exited(p, timeout):
                timed_out = True
                _killpg(p.pid, signal.SIGTERM)
                _exited(p, GRACE_S)
            # The leader is gone (or stuck); its group may not be. Not reaped yet, so its pid
            # (the group's id) cannot have been reused.
            _killpg(p.pid, signal.SIGKILL)
            rc = p.wait()
        finally:
            STATE.current = None
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    dt = time.monotonic() - t0
    if STATE.signum:
        return ToolRun("interrupted", rc, text, dt)
    if timed_out:
        return ToolRun("timeout", rc, text, dt)
    return ToolRun("ok" if rc == 0 else "failed", rc, text, dt)


class Budget:
    """The step's deadline: each tool gets min(its timeout, what is left)."""

    def __init__(self, total, per_tool):
        self.end = time.monotonic() + total
        self.per_tool = per_tool

    def left(self):
        return self.end - time.monotonic()

    def timeout(self):
        return max(min(self.per_tool, self.left()), 0.0)


# ------------------------------------------------------------------------------------------
# finding tools

def lookup_path():
    return os.environ.get("MPROC_CROSSCHECK_PATH")


def which(name):
    p = lookup_path()
    return shutil.which(name, path=p) if p is not None else shutil.which(name)


def _version_key(path):
    return [int(x) for x in re.findall(r"\d+", os.path.basename(os.path.dirname(path))
                                       + os.path.basename(path))]


def perf_candidates():
    """`perf` first; then, when it is missing or is a wrapper that finds no perf for this
    kernel: Debian before bookworm ships /usr/bin/perf_<version> (linux-perf-<version>) behind
    linux-base's /usr/bin/perf wrapper, Ubuntu /usr/lib/linux-tools/<kernel>/perf behind its
    own wrapper. Newest version first."""
    out = []
    p = which("perf")
    if p:
        out.append(p)
    if lookup_path() is None:
        extra = glob.glob("/usr/bin/perf_*") + glob.glob("/usr/lib/linux-tools/*/perf") + \
            glob.glob("/usr/lib/linux-tools-*/perf")
        extra = [x for x in extra if os.access(x, os.X_OK) and not x.endswith(".wrapper")]
        out += sorted(extra, key=_version_key, reverse=True)
    seen = []
    for x in out:
        if x not in seen:
            seen.append(x)
    return seen


def version_of(argv, budget=None):
    """The first line of `tool --version` (or --help), within the step's budget."""
    timeout = VERSION_TIMEOUT_S if budget is None else min(VERSION_TIMEOUT_S, budget.left())
    if timeout <= 0:
        return None
    r = run_tool(argv, timeout)
    if r.status != "ok":
        return None
    for line in r.out.splitlines():
        if line.strip():
            return line.strip()[:120]
    return None


def find_perf(log, budget=None):
    """(path, version) of the first perf that runs here; (None, why) otherwise."""
    cands = perf_candidates()
    if not cands:
        return None, "not installed"
    for c in cands:
        v = version_of([c, "--version"], budget)
        if v:
            return c, v
        log("  %s --version failed: not usable for this kernel" % c)
    return None, "not installed (%s does not run for this kernel; Debian: linux-perf, Ubuntu: " \
                 "linux-tools-$(uname -r))" % cands[0]


# ------------------------------------------------------------------------------------------
# parsers (each takes a tool's text output; returns a dict, or None when it finds no figure)

def parse_perf_pipe(text):
    m = re.search(r"([0-9]+(?:\.[0-9]+)?)\s+usecs/op", text)
    if not m:
        return None
    loops = re.search(r"Executed\s+(\d+)\s+pipe operations", text)
    total = re.search(r"Total time:\s*([0-9.]+)", text)
    return {"value": float(m.group(1)) * 1e3, "unit": "ns", "usecs_per_op": float(m.group(1)),
            "loops": int(loops.group(1)) if loops else None,
            "total_s": float(total.group(1)) if total else None}


def parse_hackbench(text):
    """Time: in seconds, to the millisecond; messages = groups * F * F * loops."""
    t = re.search(r"^Time:\s*([0-9]+(?:\.[0-9]+)?)", text, re.M)
    if not t:
        return None
    out = {"time_s": float(t.group(1))}
    # hackbench prints 2 * F "file descriptors each" (F senders and F receivers per group).
    m = re.search(r"with\s+(\d+)\s+groups?\s+using\s+(\d+)\s+file descriptors", text)
    if m:
        out["groups"], out["fds"] = int(m.group(1)), int(m.group(2)) // 2
    m = re.search(r"pass\s+(\d+)\s+messages\s+of\s+(\d+)\s+bytes", text)
    if m:
        out["loops"], out["bytes"] = int(m.group(1)), int(m.group(2))
    if not all(k in out for k in ("groups", "fds", "loops")):
        return None
    msgs = out["groups"] * out["fds"] * out["fds"] * out["loops"]
    if msgs <= 0:
        return None
    out["messages"] = msgs
    out["value"] = out["time_s"] * 1e9 / msgs
    out["unit"] = "ns"
    return out


# stress-ng writes its metrics under the log kind "metrc:" (0.15.01 on) or "info:" (before),
# and the miscellaneous metric as "switch   42811.64 nanosecs per ..." or, in older versions,
# "switch: (pipe) 6042.75 nanosecs per ...": a bounded gap without digits covers both.
_STRESS_ROW = (r"^stress-ng:\s+\w+:\s+\[\d+\]\s+%s\s+(\d+)\s+([0-9.]+)\s+([0-9.]+)\s+"
               r"([0-9.]+)\s+([0-9.]+)")


def parse_stress_row(text, stressor):
    m = re.search(_STRESS_ROW % re.escape(stressor), text, re.M)
    if not m:
        return None
    return {"bogo_ops": int(m.group(1)), "real_time_s": float(m.group(2)),
            "ops_per_s": float(m.group(5))}


def parse_stress_switch(text):
    row = parse_stress_row(text, "switch") or {}
    m = re.search(r"\bswitch\b[^0-9\n]{0,24}([0-9]+(?:\.[0-9]+)?)\s+nanosecs per context switch",
                  text)
    if m:
        return dict(row, value=float(m.group(1)), unit="ns", source="nanosecs per context switch")
    if row.get("ops_per_s"):
        return dict(row, value=1e9 / row["ops_per_s"], unit="ns", source="1 / bogo ops/s")
    return None


def parse_stress_fork(text):
    row = parse_stress_row(text, "fork")
    if not row or row["bogo_ops"] <= 0 or row["real_time_s"] <= 0:
        return None
    return dict(row, value=row["real_time_s"] * 1e9 / row["bogo_ops"], unit="ns")


def parse_lscpu(text):
    """lscpu -p=CPU,CORE,SOCKET,NODE: one line per online CPU."""
    pus, cores, pkgs = 0, set(), set()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        f = line.split(",")
        if len(f) < 3 or not f[0].isdigit():
            continue
        pus += 1
        if f[1] != "":
            cores.add((f[2], f[1]))
        if f[2] != "":
            pkgs.add(f[2])
    if pus == 0:
        return None
    return {"pus": pus, "cores": len(cores) or None, "packages": len(pkgs) or None}


def parse_int(text):
    m = re.match(r"\s*(\d+)\s*$", text)
    return int(m.group(1)) if m else None


# ------------------------------------------------------------------------------------------
# our figures

def our_mean_ns(run, name):
    f = run.figures.get(name)
    if f is None:
        return None
    v = f.median("real_time", None)
    return v if isinstance(v, (int, float)) and math.isfinite(v) and v > 0 else None


def our_per_msg_ns(run, name):
    f = run.figures.get(name)
    if f is None:
        return None
    v = f.median("msgs_per_second", None)
    return 1e9 / v if isinstance(v, (int, float)) and math.isfinite(v) and v > 0 else None


def compare(tool_value, ours, what):
    """One comparison row: ratio = tool / ours; flagged when outside [1/THRESHOLD, THRESHOLD]."""
    name, value = ours
    ratio = tool_value / value if value else None
    flag = ratio is not None and (ratio > THRESHOLD or ratio < 1.0 / THRESHOLD)
    return {"ours": name, "ours_value": value, "unit": "ns", "what": what,
            "ratio": ratio, "flag": flag}


def clamp(v, lo, hi):
    return int(min(max(v, lo), hi))


# ------------------------------------------------------------------------------------------
# the checks

class Ctx:
    def __init__(self, run, profile, budget, log, workdir, pin):
        self.run = run
        self.profile = profile
        self.budget = budget
        self.log = log
        self.workdir = workdir
        self.pin = pin
        self.target_s = TARGET_S[profile]


def _record(cid, tool, **kw):
    rec = {"id": cid, "tool": tool, "status": None, "detail": "", "argv": None,
           "version": None, "tool_figure": None, "comparisons": [], "flag": False,
           "elapsed_s": None}
    rec.update(kw)
    return rec


def _run_and_parse(c, rec, argv, parser, cpu=None, env=None):
    rec["argv"] = argv
    if cpu is not None:
        rec["pinned_pu"] = cpu
    timeout = c.budget.timeout()
    if timeout <= 0:
        rec["status"], rec["detail"] = "skipped", "the cross-check time budget is spent"
        return None
    c.log("$ %s%s" % (" ".join(argv), "  (pinned to PU %d)" % cpu if cpu is not None else ""))
    r = run_tool(argv, timeout, cpu=cpu, env=env, cwd=c.workdir)
    rec["elapsed_s"] = round(r.elapsed, 3)
    for line in r.out.splitlines():
        c.log("  | " + line)
    if r.status == "interrupted":
        rec["status"], rec["detail"] = "interrupted", "stopped by a signal"
        return None
    if r.status == "timeout":
        rec["status"], rec["detail"] = "timeout", "killed after %.3g s" % timeout
        return None
    if r.status != "ok":
        rec["status"] = "failed"
        rec["detail"] = r.out.strip().splitlines()[-1][:200] if r.out.strip() else \
            ("exit %s" % r.rc if r.rc is not None else r.status)
        if r.rc is not None:
            rec["detail"] = "exit %d: %s" % (r.rc, rec["detail"])
        return None
    fig = parser(r.out)
    if fig is None:
        rec["status"], rec["detail"] = "unparsed", "no figure found in its output (see the log)"
        return None
    return fig


def _finish(rec, fig, comps):
    rec["tool_figure"] = fig
    rec["comparisons"] = comps
    rec["flag"] = any(x["flag"] for x in comps)
    rec["status"] = "ok"


def check_perf(c):
    rec = _record("perf_sched_pipe", "perf bench sched pipe",
                  pairing="round trip over two pipes, both processes on one PU (mean)")
    ours = [(n, our_mean_ns(c.run, n)) for n in (
        "baseline/pipe_rtt/placement:same_core", "latency/raw_pipe/placement:same_core")]
    ours = [o for o in ours if o[1]]
    if not ours:
        rec["status"] = "no mproc figure"
        rec["detail"] = "the run has no same-core pipe round trip (latency or baseline harness)"
        return rec
    perf, why = find_perf(c.log, c.budget)
    if not perf:
        rec["status"], rec["detail"] = "not installed", why
        return rec
    rec["version"] = why
    loops = clamp(c.target_s * 1e9 / ours[0][1], 1000, 2000000)
    fig = _run_and_parse(c, rec, [perf, "bench", "sched", "pipe", "-l", str(loops)],
                         parse_perf_pipe, cpu=c.pin)
    if fig:
        _finish(rec, fig, [compare(fig["value"], o, "round trip") for o in ours])
    return rec


def check_hackbench(c):
    rec = _record("hackbench", "hackbench",
                  pairing="per-message cost, one sender and one receiver over a bare pipe vs "
                          "the raw-pipe queue yardstick, 1 producer x 1 consumer")
    fan, ours = 1, []
    raw = our_per_msg_ns(c.run, "queue/raw_pipe/bytes:64/producers:1/consumers:1")
    if raw:
        ours.append(("queue/raw_pipe/bytes:64/producers:1/consumers:1", raw))
    if not ours:
        rec["status"] = "no mproc figure"
        rec["detail"] = "the run has no 64-byte raw-pipe figure (queue harness)"
        return rec
    tool = which("hackbench")
    if not tool:
        rec["status"], rec["detail"] = "not installed", "not installed (Debian: rt-tests)"
        return rec
    rec["version"] = version_of([tool, "--help"], c.budget)
    loops = clamp(c.target_s * 1e9 / (ours[0][1] * fan * fan), 2000, 1000000)
    fig = _run_and_parse(c, rec, [tool, "-p", "-s", "64", "-g", "1", "-f", str(fan), "-l",
                                  str(loops)], parse_hackbench)
    if fig:
        _finish(rec, fig, [compare(fig["value"], o, "per message, %dx%d" % (fan, fan))
                           for o in ours])
    return rec


def _stress_ng(c, rec, args, parser, cpu=None):
    tool = which("stress-ng")
    if not tool:
        rec["status"], rec["detail"] = "not installed", "not installed (Debian: stress-ng)"
        return None
    rec["version"] = version_of([tool, "--version"], c.budget)
    return _run_and_parse(c, rec, [tool] + args + ["-t", str(STRESS_S[c.profile]), "--metrics"],
                          parser, cpu=cpu)


def check_switch(c):
    rec = _record("stress_ng_switch", "stress-ng --switch",
                  pairing="two context switches over a one-slot pipe on one PU vs our "
                          "same-core pipe round trip (two switches)")
    ours = [(n, our_mean_ns(c.run, n)) for n in (
        "baseline/pipe_rtt/placement:same_core", "latency/raw_pipe/placement:same_core")]
    ours = [o for o in ours if o[1]]
    if not ours:
        rec["status"] = "no mproc figure"
        rec["detail"] = "the run has no same-core pipe round trip (baseline harness)"
        return rec
    fig = _stress_ng(c, rec, ["--switch", "1", "--switch-method", "pipe"], parse_stress_switch,
                     cpu=c.pin)
    if fig:
        _finish(rec, fig, [compare(fig["value"], o, "2 switches (pipe)") for o in ours])
    return rec


def check_fork(c):
    rec = _record("stress_ng_fork", "stress-ng --fork",
                  pairing="fork + _exit + waitpid, wall time per child")
    ours = [(n, our_mean_ns(c.run, n)) for n in ("baseline/fork_exit",
                                                  "baseline/fork_exit_harness")]
    ours = [o for o in ours if o[1]]
    if not ours:
        rec["status"] = "no mproc figure"
        rec["detail"] = "the run has no fork figure (baseline or spawn harness)"
        return rec
    fig = _stress_ng(c, rec, ["--fork", "1", "--fork-max", "1"], parse_stress_fork)
    if fig:
        _finish(rec, fig, [compare(fig["value"], o, "fork to reap") for o in ours])
    return rec


def _counts(c):
    counts = c.run.topology.get("counts") if isinstance(c.run.topology, dict) else None
    return counts if isinstance(counts, dict) else None


def _count_rows(tool_counts, counts):
    comps = []
    for k in ("pus", "cores", "packages"):
        a, b = tool_counts.get(k), counts.get(k)
        if a is None or not isinstance(b, int):
            continue
        comps.append({"ours": "mproc-topo counts.%s" % k, "ours_value": b, "unit": "count",
                      "what": k, "tool_value": a, "ratio": a / b if b else None,
                      "flag": a != b})
    return comps


def check_lscpu(c):
    rec = _record("lscpu", "lscpu", pairing="online PUs, cores, packages must equal mproc-topo's")
    counts = _counts(c)
    if not counts:
        rec["status"], rec["detail"] = "no mproc figure", "topology.json has no counts"
        return rec
    tool = which("lscpu")
    if not tool:
        rec["status"], rec["detail"] = "not installed", "not installed (Debian: util-linux)"
        return rec
    rec["version"] = version_of([tool, "--version"], c.budget)
    fig = _run_and_parse(c, rec, [tool, "-p=CPU,CORE,SOCKET,NODE"], parse_lscpu)
    if fig:
        fig["unit"] = "count"
        _finish(rec, fig, _count_rows(fig, counts))
    return rec


def check_hwloc_calc(c):
    rec = _record("hwloc_calc", "hwloc-calc",
                  pairing="PUs, cores, packages of the whole machine must equal mproc-topo's")
    counts = _counts(c)
    if not counts:
        rec["status"], rec["detail"] = "no mproc figure", "topology.json has no counts"
        return rec
    tool = which("hwloc-calc")
    if not tool:
        rec["status"], rec["detail"] = "not installed", "not installed (Debian: hwloc-nox)"
        return rec
    rec["version"] = version_of([tool, "--version"], c.budget)
    fig = {"unit": "count"}
    for obj, key in (("pu", "pus"), ("core", "cores"), ("package", "packages")):
        v = _run_and_parse(c, rec, [tool, "--whole-system", "--number-of", obj, "machine:0"],
                           parse_int)
        if v is None:
            return rec
        fig[key] = v
    rec["argv"] = [tool, "--whole-system", "--number-of", "pu|core|package", "machine:0"]
    _finish(rec, fig, _count_rows(fig, counts))
    return rec


def check_nproc(c):
    rec = _record("nproc", "nproc", pairing="CPUs this process may run on must equal the "
                                            "budget's affinity limit")
    b = c.run.context.get("budget") or c.run.topology.get("budget") or {}
    lim = b.get("limits") if isinstance(b, dict) else None
    aff = lim.get("affinity", {}).get("value") if isinstance(lim, dict) and \
        isinstance(lim.get("affinity"), dict) else None
    if not isinstance(aff, int):
        rec["status"], rec["detail"] = "no mproc figure", "the budget has no affinity limit"
        return rec
    tool = which("nproc")
    if not tool:
        rec["status"], rec["detail"] = "not installed", "not installed (coreutils)"
        return rec
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    fig = _run_and_parse(c, rec, [tool], lambda t: (lambda v: None if v is None else
                                                    {"pus": v, "unit": "count"})(parse_int(t)),
                         env=env)
    if fig:
        _finish(rec, fig, [{"ours": "budget.limits.affinity", "ours_value": aff,
                            "unit": "count", "what": "allowed PUs", "tool_value": fig["pus"],
                            "ratio": fig["pus"] / aff if aff else None,
                            "flag": fig["pus"] != aff}])
    return rec


CHECKS = (check_lscpu, check_hwloc_calc, check_nproc, check_perf, check_hackbench,
          check_switch, check_fork)
# (id, tool) of each check, for the records written without running it.
CHECK_NAMES = {check_lscpu: ("lscpu", "lscpu"), check_hwloc_calc: ("hwloc_calc", "hwloc-calc"),
               check_nproc: ("nproc", "nproc"),
               check_perf: ("perf_sched_pipe", "perf bench sched pipe"),
               check_hackbench: ("hackbench", "hackbench"),
               check_switch: ("stress_ng_switch", "stress-ng --switch"),
               check_fork: ("stress_ng_fork", "stress-ng --fork")}


# ------------------------------------------------------------------------------------------

def summary_line(rec):
    """One line per check, for the driver's output and the report."""
    head = "%s: " % rec["tool"]
    if rec["status"] != "ok":
        return head + (rec["detail"] or rec["status"]) if rec["status"] == "not installed" else \
            head + "%s%s" % (rec["status"], ": " + rec["detail"] if rec["detail"] else "")
    fig = rec["tool_figure"] or {}
    parts = []
    for x in rec["comparisons"]:
        if x["unit"] == "count":
            parts.append("%s %s vs %s%s" % (x["what"], x["tool_value"], x["ours_value"],
                                            "  DISAGREE" if x["flag"] else ""))
        else:
            parts.append("%s vs %s %s (%.2fx)%s" % (
                fmt_ns(fig.get("value")), x["ours"], fmt_ns(x["ours_value"]), x["ratio"],
                "  DISAGREE (>%gx)" % THRESHOLD if x["flag"] else ""))
    return head + "; ".join(parts)


def _loadavg():
    """The 1-minute load average: a tool run on a busy machine disagrees for that reason."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def crosscheck(run_dir, profile="quick", timeout=None, total=None, log=None):
    """Run every check on the run in run_dir; returns the crosscheck.json document."""
    log = log or (lambda s: print(s, flush=True))
    run = gbjson.load_run(run_dir)
    budget = Budget(total if total is not None else TOTAL_S[profile],
                    timeout if timeout is not None else TOOL_TIMEOUT_S[profile])
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = []
    doc = {"schema": SCHEMA, "profile": profile, "threshold": THRESHOLD,
           "started_utc": utc_now(), "elapsed_s": None, "interrupted": False,
           "loadavg_before": _loadavg(), "loadavg_after": None, "checks": []}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mproc-crosscheck.") as wd:
        c = Ctx(run, profile, budget, log, wd, allowed[0] if allowed else None)
        for fn in CHECKS:
            if STATE.signum:
                break
            cid, tool = CHECK_NAMES.get(fn, (fn.__name__, fn.__name__))
            try:
                if budget.left() <= 0:
                    rec = _record(cid, tool, status="skipped",
                                  detail="the cross-check time budget is spent")
                else:
                    rec = fn(c)
            except Exception as e:  # one broken check must not lose the others
                rec = _record(cid, tool, status="failed", detail="internal error: %s" % e)
            doc["checks"].append(rec)
            log("%s: %s" % (PROG, summary_line(rec)))
    doc["interrupted"] = bool(STATE.signum)
    doc["loadavg_after"] = _loadavg()
    doc["elapsed_s"] = round(time.monotonic() - t0, 3)
    return doc


def write_json_atomic(path, obj):
    files.write_json(path, obj)


def main(argv=None):
    ap = cli.Parser(PROG, "PYTHONPATH=plots python3 -m mproc_results.crosscheck",
                    description="Cross-check a run's figures with independent "
                    "tools (perf, hackbench, stress-ng, lscpu, hwloc-calc, nproc).")
    ap.add_argument("run", help="run directory")
    ap.add_argument("--profile", default="quick", help="smoke, quick (default) or full")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds before a tool is killed (default: by profile, 10 s quick)")
    ap.add_argument("--total", type=float, default=None,
                    help="seconds for the whole step (default: by profile, 20 s quick)")
    a = ap.parse_args(argv)
    if a.profile not in PROFILES:
        ap.error("unknown profile '%s' (choose from: %s)" % (a.profile, ", ".join(PROFILES)))
    if (a.timeout is not None and not a.timeout > 0) or (a.total is not None and not a.total > 0):
        ap.error("--timeout and --total must be positive")
    try:
        gbjson.load_run(a.run)
    except gbjson.GBJsonError as e:
        print("%s: %s" % (PROG, e), file=sys.stderr)
        return 2
    STATE.install()
    doc = crosscheck(a.run, a.profile, a.timeout, a.total)
    path = os.path.join(a.run, "crosscheck.json")
    try:
        write_json_atomic(path, doc)
    except OSError as e:
        print("%s: cannot write %s: %s" % (PROG, path, e.strerror or e), file=sys.stderr)
        return 1
    if STATE.signum:
        return 128 + STATE.signum
    return 0


if __name__ == "__main__":
    sys.exit(main())
