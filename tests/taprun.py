"""Run a module's unittest cases as TAP (meson's protocol: 'tap'), one line per case.

Case names are PREFIX/Class/test_method; argv[0], when given, is an fnmatch pattern over them.
A skipped case prints "ok N name # SKIP reason"; a failure prints its traceback as comments.
"""
import fnmatch
import os
import signal
import unittest

# A test must never fail only because the machine is slow (tests/tap.h): a bound on how long
# something may take, or a watchdog on a subprocess, is written as scaled(seconds), which is
# seconds x TAP_TIMEOUT_MULT x load_factor(), as tap_timeout_mult() is in C.
LOAD_MAX = 4.0


def usable_cpus():
    """The CPUs this process may use: affinity, lowered by a cgroup v2 cpu.max quota."""
    n = len(os.sched_getaffinity(0)) or 1
    try:
        with open("/proc/self/cgroup") as f:
            rel = next((ln[3:].strip() for ln in f if ln.startswith("0::")), None)
    except OSError:
        rel = None
    while rel is not None:
        try:
            with open("/sys/fs/cgroup" + rel.rstrip("/") + "/cpu.max") as f:
                quota, period = f.read().split()[:2]
            if quota != "max" and int(period) > 0:
                n = min(n, max(1, -(-int(quota) // int(period))))
        except (OSError, ValueError):
            pass
        if rel in ("", "/"):
            break
        rel = rel.rsplit("/", 1)[0]
    return n


def load_factor():
    """Runnable tasks per usable CPU (1-minute load average or runnable now, the larger), in
    [1, LOAD_MAX]; 1 with TAP_LOAD_SCALE=0. TAP_LOADAVG_FILE replaces /proc/loadavg."""
    if os.environ.get("TAP_LOAD_SCALE") == "0":
        return 1.0
    try:
        with open(os.environ.get("TAP_LOADAVG_FILE") or "/proc/loadavg") as f:
            fields = f.read().split()
        busy = max(float(fields[0]), int(fields[3].split("/")[0]) - 1)
    except (OSError, ValueError, IndexError):
        return 1.0
    return min(max(busy / usable_cpus(), 1.0), LOAD_MAX)


def timeout_mult():
    try:
        env = max(float(os.environ.get("TAP_TIMEOUT_MULT", "1")), 1.0)
    except ValueError:
        env = 1.0
    return env * load_factor()


def scaled(seconds):
    return seconds * timeout_mult()


def default_signals():
    """The signals tests send (SIGINT to a driver, SIGTERM to a tool) get their default action
    in the processes the tests start, whatever this one inherited: a shell runs a background
    job (`make test &`, nohup) with SIGINT, SIGQUIT (and SIGHUP) ignored, and an ignored signal
    stays ignored across exec. SIGINT is handled here (KeyboardInterrupt), so it is the default
    again in a child after exec."""
    for sig in (signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main(module, prefix, argv):
    default_signals()
    pattern = argv[0] if argv else "*"
    cases = []

    def flatten(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                flatten(t)
            else:
                cases.append(t)
    flatten(unittest.defaultTestLoader.loadTestsFromModule(module))

    def tap_name(c):
        return prefix + "/" + c.id().split(".", 1)[1].replace(".", "/")
    cases = [c for c in cases if fnmatch.fnmatch(tap_name(c), pattern)]
    print("TAP version 13\n1..%d" % len(cases), flush=True)
    failed = 0
    for i, c in enumerate(cases, 1):
        r = unittest.TestResult()
        c.run(r)
        name = tap_name(c)
        if r.wasSuccessful() and r.skipped:
            print("ok %d %s # SKIP %s" % (i, name, r.skipped[0][1]), flush=True)
        elif r.wasSuccessful():
            print("ok %d %s" % (i, name), flush=True)
        else:
            failed += 1
            print("not ok %d %s" % (i, name), flush=True)
            for _, tb in r.failures + r.errors:
                for line in tb.splitlines():
                    print("# " + line)
    return 1 if failed else 0
