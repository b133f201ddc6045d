#!/usr/bin/env python3
"""Run an example and check what it printed: expect.py REGEX... -- PROGRAM [ARG...].

Exit 0 when PROGRAM exits 0 and every REGEX (Python re, MULTILINE) matches its stdout+stderr;
1 otherwise, with what it printed. For examples whose result is what they print (log.c)."""
import re
import subprocess
import sys


def main(argv):
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("expect.py: need REGEX... -- PROGRAM [ARG...]", file=sys.stderr)
        return 2
    k = argv.index("--")
    r = subprocess.run(argv[k + 1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=120)
    missing = [p for p in argv[:k] if not re.search(p, r.stdout, re.MULTILINE)]
    sys.stdout.write(r.stdout)
    if r.returncode != 0 or missing:
        print("expect.py: exit %d; not found: %s" % (r.returncode, missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
