#!/usr/bin/env python3
"""The Python commands fail one way and say one version (mproc_results/cli.py): bad usage is
ONE line on stderr naming the problem and the way out, exit 2; --version prints the version
meson.build declares. The commands: plots/plot.py, plots/report.py, plots/compare.py,
bench/mproc-recommend and the package's tools the driver runs (verify, decide, crosscheck).
TAP output for meson; a name pattern as argv[1] selects."""

import os
import re
import subprocess
import sys
import unittest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
PY = sys.executable
COMMANDS = {          # name in messages -> argv prefix
    "plots": [os.path.join(ROOT, "plots", "plot.py")],
    "report": [os.path.join(ROOT, "plots", "report.py")],
    "compare": [os.path.join(ROOT, "plots", "compare.py")],
    "mproc-recommend": [os.path.join(ROOT, "bench", "mproc-recommend")],
    "verify": [PY, "-m", "mproc_results.verify"],
    "decide": [PY, "-m", "mproc_results.decide"],
    "crosscheck": [PY, "-m", "mproc_results.crosscheck"],
}


def meson_version():
    with open(os.path.join(ROOT, "meson.build"), encoding="utf-8") as f:
        return re.search(r"project\(.*?version:\s*'([^']+)'", f.read(), re.S).group(1)


def run(argv):
    if not argv[0].startswith(PY):
        argv = [PY] + argv
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, stdin=subprocess.DEVNULL, timeout=120)


class Commands(unittest.TestCase):
    def test_version_from_meson(self):
        v = meson_version()
        for name, argv in COMMANDS.items():
            with self.subTest(name):
                r = run(argv + ["--version"])
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout.strip(), "%s (mproc) %s" % (name, v))

    def test_unknown_option_is_one_line_exit_2(self):
        positional = {"compare": ["a", "b"], "verify": ["a", "b"]}
        for name, argv in COMMANDS.items():
            with self.subTest(name):
                r = run(argv + positional.get(name, ["a"]) + ["--bogus-option"])
                self.assertEqual(r.returncode, 2, r.stderr)
                lines = r.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertTrue(lines[0].startswith(name + ": "), lines[0])
                self.assertIn("--bogus-option", lines[0])
                self.assertIn("--help)", lines[0])          # the way out
                self.assertNotIn("usage:", r.stderr)

    def test_missing_argument_is_one_line_exit_2(self):
        for name in ("plots", "report", "compare", "verify", "decide", "crosscheck"):
            with self.subTest(name):
                r = run(COMMANDS[name])
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
                self.assertTrue(r.stderr.startswith(name + ": "), r.stderr)

    def test_compare_one_run_names_the_way_out(self):
        r = run(COMMANDS["compare"] + [ROOT])
        self.assertEqual(r.returncode, 2)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("RUN_A RUN_B", r.stderr)

    def test_commands_are_executable(self):
        for rel in ("plots/plot.py", "plots/report.py", "plots/compare.py",
                    "bench/mproc-recommend", "bench/mproc-bench"):
            with self.subTest(rel):
                self.assertTrue(os.access(os.path.join(ROOT, rel), os.X_OK), rel)


class OneReader(unittest.TestCase):
    """No Python file reads a run's JSON except through the results package, and the package
    is found without sys.path edits outside bench/results_path.py."""

    def python_files(self):
        for top in ("bench", "plots", "tests", "tools"):
            for d, _, fs in os.walk(os.path.join(ROOT, top)):
                for f in fs:
                    p = os.path.join(d, f)
                    if f.endswith(".py") or f in ("mproc-bench", "mproc-recommend"):
                        yield p

    def test_one_sys_path_entry(self):
        found = []
        for p in self.python_files():
            with open(p, encoding="utf-8") as f:
                for i, line in enumerate(f, 1):
                    if re.search(r"sys\.path\.(insert|append)\(", line) and \
                            not line.lstrip().startswith("#"):
                        found.append("%s:%d" % (os.path.relpath(p, ROOT), i))
        self.assertEqual([x for x in found if not x.startswith("bench/results_path.py:")], [],
                         found)

    def test_side_files_read_through_the_package(self):
        """A side file of a run is named only in the package (its readers) or in tests."""
        pat = re.compile(r'"(noise|decide|recommendation|crosscheck|answers)\.json"')
        found = []
        pkg = os.path.join(ROOT, "plots", "mproc_results")
        for p in self.python_files():
            if p.startswith(pkg + os.sep) or p.startswith(os.path.join(ROOT, "tests")):
                continue
            with open(p, encoding="utf-8") as f:
                for i, line in enumerate(f, 1):
                    if pat.search(line) and re.search(r"\bopen\(|json\.load", line):
                        found.append("%s:%d" % (os.path.relpath(p, ROOT), i))
        self.assertEqual(found, [])


if __name__ == "__main__":
    import taprun  # tests/taprun.py: unittest cases as TAP
    sys.exit(taprun.main(sys.modules[__name__], "commands", sys.argv[1:]))
