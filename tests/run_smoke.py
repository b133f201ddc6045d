#!/usr/bin/python3
"""run_smoke.py - run one harness for a tiny pass and check its JSON.

    run_smoke.py HARNESS_BINARY [check_bench_json.py options: --expect ... --counter ...]

Runs `HARNESS_BINARY --profile=smoke --benchmark_out=TMP --benchmark_out_format=json`, fails
if it exits non-zero, leaves /dev/shm/mproc-<its pid>-* names behind, or writes no JSON, then
runs check_bench_json.py on the file with the remaining options. Exit 0 ok, 1 failure, 77
(meson: SKIP) if the binary does not exist. Standard library only.
"""
import glob
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT_S = 280  # under meson's 300 s, so we report instead of being killed


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    binary, check_args = argv[0], argv[1:]
    if not os.path.exists(binary):
        print(f"run_smoke: {binary} does not exist", file=sys.stderr)
        return 77
    with tempfile.TemporaryDirectory(prefix="mproc-smoke-") as tmp:
        out = os.path.join(tmp, os.path.basename(binary) + ".json")
        cmd = [binary, "--profile=smoke", f"--benchmark_out={out}",
               "--benchmark_out_format=json"]
        print("run_smoke: " + " ".join(cmd), flush=True)
        proc = subprocess.Popen(cmd)
        try:
            rc = proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            print(f"run_smoke: {binary} ran past {TIMEOUT_S} s; killed", file=sys.stderr)
            return 1
        left = glob.glob(f"/dev/shm/mproc-{proc.pid}-*")
        if left:
            print(f"run_smoke: {binary} left shared memory behind: {left}", file=sys.stderr)
            return 1
        if rc != 0:
            print(f"run_smoke: {binary} exited with {rc}", file=sys.stderr)
            return 1
        if not os.path.exists(out):
            print(f"run_smoke: {binary} wrote no {out}", file=sys.stderr)
            return 1
        checker = os.path.join(HERE, "check_bench_json.py")
        r = subprocess.run([sys.executable, checker, out] + check_args)
        return 1 if r.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
