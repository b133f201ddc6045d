#!/usr/bin/python3
"""test_baseline_fault.py - fault tests of the baseline harness (TAP output).

    test_baseline_fault.py BENCH_BASELINE

For each round-trip probe: start the harness on it with a long minimum time, SIGKILL the
child it forked (mproc-floor, the minimal process that measures), and expect the harness to
finish promptly with the benchmark reported as an error (never a hang, never a crash); the
same when the peer that mproc-floor forked is killed instead. Then SIGTERM the harness in the
middle of a round-trip benchmark and expect it to die of SIGTERM with its child and
grandchild killed and reaped.
Standard library only.
"""
import os
import signal
import subprocess
import sys
import time

import taprun  # tests/taprun.py: scaled() timeouts (same folder)

PROBES = ["cacheline_rtt", "futex_rtt", "pipe_rtt", "eventfd_rtt"]


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def wait_child(pid, timeout=10.0):
    end = time.monotonic() + taprun.scaled(timeout)
    while time.monotonic() < end:
        kids = children(pid)
        if kids:
            return kids[0]
        time.sleep(0.05)
    return None


def start(binary, probe, placement):
    return subprocess.Popen(
        [binary, f"--benchmark_filter=^baseline/{probe}/placement:{placement}",
         "--benchmark_min_time=60", "--benchmark_repetitions=1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def case_killed_child(binary, probe, depth=1):
    """depth 1: kill mproc-floor; depth 2: kill the peer it forked."""
    proc = start(binary, probe, "same_core")
    kid = wait_child(proc.pid)
    if kid is None:
        proc.kill()
        proc.communicate()
        return "no child appeared"
    # Google Benchmark grows the iteration count run by run, each run with a fresh child: wait
    # until the runs are long, then kill the child of the current one.
    time.sleep(1.0)
    for _ in range(40):
        kids = children(proc.pid)
        if depth == 2:
            kids = [g for k in kids for g in children(k)]
        try:
            if kids:
                os.kill(kids[0], signal.SIGKILL)
                break
        except ProcessLookupError:
            pass
        time.sleep(0.05)
    else:
        proc.kill()
        proc.communicate()
        return "could not find the child to kill"
    try:
        out, _ = proc.communicate(timeout=taprun.scaled(30))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return "harness hung after its child was killed"
    if proc.returncode != 0:
        return f"harness exited with {proc.returncode}"
    if "ERROR OCCURRED" not in out:
        return "no error reported:\n" + out
    return None


def case_sigterm(binary):
    proc = start(binary, "futex_rtt", "same_core")
    kid = wait_child(proc.pid)
    if kid is None:
        proc.kill()
        proc.communicate()
        return "no child appeared"
    # mproc-floor starts its peer when it gets its first request: wait for it (a loaded
    # machine may take more than the second this once waited), at most the scaled limit.
    end = time.monotonic() + taprun.scaled(30)
    grandkids = []
    while not grandkids and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.05)
        kid = (children(proc.pid) or [kid])[0]
        grandkids = children(kid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=taprun.scaled(30))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return "harness ignored SIGTERM"
    if proc.returncode != -signal.SIGTERM:
        return f"harness ended with {proc.returncode}, want -SIGTERM"
    if not gone(kid):
        return f"child {kid} outlived the harness"
    end = time.monotonic() + 10
    while any(not gone(g) for g in grandkids) and time.monotonic() < end:
        time.sleep(0.05)    # PR_SET_PDEATHSIG, then its parent (us, the subreaper?) reaps
    left = [g for g in grandkids if not gone(g)]
    if left:
        return f"grandchildren {left} outlived the harness"
    if not grandkids:
        return "mproc-floor had no peer to check"
    return None


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    binary = argv[0]
    taprun.default_signals()
    cases = [(f"baseline/fault/{p}/killed_child", lambda p=p: case_killed_child(binary, p))
             for p in PROBES]
    cases += [(f"baseline/fault/{p}/killed_peer",
               lambda p=p: case_killed_child(binary, p, depth=2)) for p in PROBES]
    cases.append(("baseline/fault/sigterm_kills_child", lambda: case_sigterm(binary)))
    print("TAP version 13")
    print(f"1..{len(cases)}")
    failed = 0
    for i, (name, fn) in enumerate(cases, 1):
        err = fn()
        if err:
            failed += 1
            print(f"not ok {i} {name}")
            for line in str(err).splitlines():
                print(f"# {line}")
        else:
            print(f"ok {i} {name}")
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
