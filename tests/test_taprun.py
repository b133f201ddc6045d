#!/usr/bin/python3
"""Tests of tests/taprun.py: scaled() widens the Python tests' time bounds and watchdogs by
TAP_TIMEOUT_MULT and by how loaded the machine is, as tap_timeout_mult() does in C (tap.h)."""
import os
import signal
import subprocess
import sys
import tempfile
import unittest

import taprun  # tests/taprun.py, beside this file


class Scaled(unittest.TestCase):
    def setUp(self):
        self.saved = {k: os.environ.get(k)
                      for k in ("TAP_LOADAVG_FILE", "TAP_LOAD_SCALE", "TAP_TIMEOUT_MULT")}
        for k in self.saved:
            os.environ.pop(k, None)

    def tearDown(self):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def loadavg(self, text):
        fd, path = tempfile.mkstemp(prefix="tap-loadavg-")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        os.environ["TAP_LOADAVG_FILE"] = path

    def test_idle_machine_is_factor_one(self):
        self.loadavg("0.00 0.00 0.00 1/300 1\n")
        self.assertEqual(taprun.load_factor(), 1.0)
        self.assertEqual(taprun.scaled(10), 10)

    def test_saturated_machine_widens_up_to_the_cap(self):
        self.loadavg("1000.00 1000.00 1000.00 2/300 1\n")
        self.assertEqual(taprun.load_factor(), taprun.LOAD_MAX)
        os.environ["TAP_TIMEOUT_MULT"] = "3"
        self.assertEqual(taprun.scaled(10), 10 * 3 * taprun.LOAD_MAX)

    def test_runnable_now_counts_per_usable_cpu(self):
        n = taprun.usable_cpus()
        self.assertGreaterEqual(n, 1)
        self.loadavg("0.00 0.00 0.00 %d/300 1\n" % (2 * n + 1))   # less the reader: 2 per CPU
        self.assertEqual(taprun.load_factor(), 2.0)

    def test_scale_off(self):
        self.loadavg("1000.00 1000.00 1000.00 2/300 1\n")
        os.environ["TAP_LOAD_SCALE"] = "0"
        self.assertEqual(taprun.load_factor(), 1.0)

    def test_unreadable_loadavg_is_factor_one(self):
        os.environ["TAP_LOADAVG_FILE"] = "/nonexistent/loadavg"
        self.assertEqual(taprun.load_factor(), 1.0)


class DefaultSignals(unittest.TestCase):
    def test_children_get_default_actions_even_if_started_ignoring(self):
        # A runner started as a background job (SIGINT, SIGQUIT, SIGHUP ignored) calls
        # default_signals(); the processes it starts then see the default action (SigIgn 0).
        # `python3 -c` imports from its working directory: tests/, where taprun.py is.
        code = ("import subprocess, sys; import taprun; "
                "taprun.default_signals(); "
                "print(subprocess.run(['grep', '^SigIgn', '/proc/self/status'], "
                "stdout=subprocess.PIPE, universal_newlines=True).stdout)")

        def ignore():
            for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT):
                signal.signal(sig, signal.SIG_IGN)
        r = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(taprun.__file__),
                           stdout=subprocess.PIPE, universal_newlines=True,
                           preexec_fn=ignore, timeout=taprun.scaled(60))
        ign = int(r.stdout.split()[1], 16)
        for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
            self.assertFalse(ign & (1 << (sig - 1)), "%s ignored: %s" % (sig.name, r.stdout))


if __name__ == "__main__":
    sys.exit(taprun.main(sys.modules[__name__], "taprun", sys.argv[1:]))
