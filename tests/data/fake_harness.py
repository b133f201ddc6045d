#!/usr/bin/env python3
"""A stand-in for a bench_<name> harness in driver tests: accepts the flags the driver passes,
writes Google Benchmark-style JSON to --benchmark_out. FAKE_MODE picks the behaviour:
ok (default), fail (exit 3 after writing JSON), nojson (exit 0, no file), crash (SIGSEGV),
sleep (start a grandchild, write FAKE_PIDFILE with both pids, sleep until killed),
orphan (leave a setsid'd grandchild behind and exit 0), shm (create /mproc-<pid>-... in
MPROC_SHM_DIR and sleep), tree (as CPython leaves things when its parent is killed: a child
in the harness's session and a setsid'd grandchild whose parent exits, so it is orphaned, plus
a file in $TMPDIR; writes FAKE_PIDFILE "pid child grandchild TMPDIR" and sleeps)."""
import json
import os
import signal
import sys
import time

out = None
profile = None
for a in sys.argv[1:]:
    if a.startswith("--benchmark_out="):
        out = a.split("=", 1)[1]
    elif a.startswith("--profile="):
        profile = a.split("=", 1)[1]
name = os.path.basename(sys.argv[0])[len("bench_"):]
mode = os.environ.get("FAKE_MODE_" + name.upper()) or os.environ.get("FAKE_MODE", "ok")
print("fake harness %s mode %s profile %s" % (name, mode, profile), flush=True)


def write():
    doc = {"context": {"host_name": "fake", "mproc_profile": profile}, "benchmarks": []}
    for pl, v in (("same_core", 2000.0), ("cross_core", 70000.0)):
        for r in range(2):
            doc["benchmarks"].append({
                "name": "%s/pipe_rtt/placement:%s/manual_time" % (name, pl),
                "run_name": "%s/pipe_rtt/placement:%s/manual_time" % (name, pl),
                "run_type": "iteration", "repetitions": 2, "repetition_index": r, "threads": 1,
                "iterations": 10, "real_time": v + r, "cpu_time": v / 2, "time_unit": "ns",
                "p50_ns": v, "p99_ns": v * 2, "p999_ns": float("nan")})
    with open(out, "w") as f:
        json.dump(doc, f)


if mode == "ok":
    write()
elif mode == "fail":
    write()
    sys.exit(3)
elif mode == "nojson":
    pass
elif mode == "crash":
    os.kill(os.getpid(), signal.SIGSEGV)
elif mode in ("sleep", "shm"):
    kid = os.fork()
    if kid == 0:
        time.sleep(600)
        os._exit(0)
    if mode == "shm":
        d = os.environ["MPROC_SHM_DIR"]
        open(os.path.join(d, "mproc-%d-0-abcd" % os.getpid()), "w").close()
    with open(os.environ["FAKE_PIDFILE"], "w") as f:
        f.write("%d %d\n" % (os.getpid(), kid))
    time.sleep(600)
elif mode == "tree":
    r, w = os.pipe()
    kid = os.fork()
    if kid == 0:
        os.close(r)
        mid = os.fork()
        if mid == 0:
            os.setsid()
            grand = os.fork()
            if grand == 0:
                time.sleep(600)
                os._exit(0)
            os.write(w, b"%d\n" % grand)
            os._exit(0)                   # grand is orphaned: reparented to the subreaper
        os.waitpid(mid, 0)
        time.sleep(600)
        os._exit(0)
    os.close(w)
    grand = int(os.read(r, 64).decode().strip())
    tmpdir = os.environ.get("TMPDIR", "")
    if tmpdir:
        open(os.path.join(tmpdir, "pymp-fake"), "w").close()
    with open(os.environ["FAKE_PIDFILE"], "w") as f:
        f.write("%d %d %d %s\n" % (os.getpid(), kid, grand, tmpdir))
    time.sleep(600)
elif mode == "orphan":
    kid = os.fork()
    if kid == 0:
        os.setsid()
        if os.fork() == 0:
            with open(os.environ["FAKE_PIDFILE"], "w") as f:
                f.write("%d\n" % os.getpid())
            time.sleep(600)
        os._exit(0)
    os.waitpid(kid, 0)
    while not os.path.exists(os.environ["FAKE_PIDFILE"]):
        time.sleep(0.01)
    write()
