#!/usr/bin/env python3
"""The C commands answer the same way (issue 20): `--version` prints "NAME X.Y.Z" with the
version meson.build declares, and bad usage is ONE line on stderr that names the problem and
the way out, with exit 2 and nothing on stdout.

meson passes the commands in MPROC_COMMANDS (paths separated by ':') and the project's
version in MPROC_VERSION; a name pattern as argv[1] selects cases (tests/taprun.py)."""
import os
import subprocess
import sys
import unittest

import taprun  # tests/taprun.py: unittest cases as TAP

VERSION = os.environ.get("MPROC_VERSION", "")
COMMANDS = {os.path.basename(p): p for p in os.environ.get("MPROC_COMMANDS", "").split(":") if p}

# Per command: bad invocations, each with words its one line must hold (the problem named, the
# way out shown). Every command also gets an unknown option.
BAD = {
    "mproc-topo": [(["--xml"], ["--xml needs a FILE", "--json"]),
                   (["--json", "--json"], ["--json", "choose one"])],
    "mproc-manager": [([], ["--listen is required", "--help"]),
                      (["--listen"], ["needs a value", "--listen", "--help"]),
                      (["--listen", "nowhere:1", "--key-file", "/nonexistent"],
                       ["bad address", "unix:PATH"]),
                      (["--listen", "tcp:127.0.0.1:0", "--key-file", "/nonexistent/key"],
                       ["no such key file", "/nonexistent/key", "--key-file"]),
                      (["--key", "secret"], ["--key-file"])],
    "mproc-floor": [([], ["wrong number of arguments", "usage:"]),
                    (["nope", "0", "0"], ["unknown probe", "cacheline_rtt"]),
                    (["pipe_rtt", "x", "0"], ["PU_A", "usage:"])],
    "mproc-devshm-probe": [(["--oversize", "abc"], ["bad size 'abc'", "bytes"])],
    "fork_steps": [(["-n", "0"], ["-n wants 1..100000"]),
                   (["nope"], ["unknown variant 'nope'", "variants:", "raw"])],
    "pipe_floor": [(["x"], ["bad arguments", "usage:"])],
}


def run(argv):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=taprun.scaled(60),
                          env=dict(os.environ, MPROC_KEY_FILE=""))


class Commands(unittest.TestCase):
    def setUp(self):
        if not COMMANDS or not VERSION:
            self.skipTest("MPROC_COMMANDS and MPROC_VERSION not set (run by meson test)")

    def test_version(self):
        for name, path in COMMANDS.items():
            with self.subTest(name):
                r = run([path, "--version"])
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr, "")
                want = ("%s %s\n" if name.startswith("mproc-") else "%s (mproc) %s\n") % (
                    name, VERSION)
                self.assertEqual(r.stdout, want)

    def one_line_exit_2(self, argv, words):
        r = run(argv)
        self.assertEqual(r.returncode, 2, "%s: %r %r" % (argv, r.stdout, r.stderr))
        self.assertEqual(r.stdout, "", argv)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, "%s: %r" % (argv, r.stderr))
        for w in words:
            self.assertIn(w, lines[0], argv)

    def test_unknown_option(self):
        for name, path in COMMANDS.items():
            with self.subTest(name):
                # Each names the bad option, or the argument it could not take, and the way
                # out: --help or the usage in the same line.
                r = run([path, "--bogus-option"])
                self.one_line_exit_2([path, "--bogus-option"], [])
                self.assertTrue("--help" in r.stderr or "usage:" in r.stderr, r.stderr)
                self.assertTrue("--bogus-option" in r.stderr or "-b" in r.stderr
                                or "arguments" in r.stderr, r.stderr)

    def test_bad_usage(self):
        for name, cases in BAD.items():
            if name not in COMMANDS:
                continue
            for argv, words in cases:
                with self.subTest("%s %s" % (name, " ".join(argv))):
                    self.one_line_exit_2([COMMANDS[name]] + argv, words)


if __name__ == "__main__":
    sys.exit(taprun.main(sys.modules[__name__], "commands", sys.argv[1:]))
