#!/usr/bin/env python3
"""What `meson install` installs works from the installed prefix alone (issue 20): the build is
installed with --destdir into a temporary directory, then

- the layout is what README.md says: libmproc, its public headers, mproc.pc, and only the
  commands that run on their own (mproc-topo, mproc-manager) -- no harness, no mproc-bench;
- README.md's inline example and examples/queue.c (spawn: a fresh image of the program, which
  must find the installed library again) compile with the README's own line,
  `cc X.c $(pkg-config --cflags --libs mproc)`, against the installed mproc.pc
  (PKG_CONFIG_SYSROOT_DIR = the destdir), and run;
- the installed commands answer --version.

meson passes MESON, MPROC_BUILD_DIR, MPROC_SOURCE_DIR, MPROC_VERSION and CC in the environment;
a name pattern as argv[1] selects cases (tests/taprun.py)."""
import atexit
import glob
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

import taprun  # tests/taprun.py: unittest cases as TAP

TESTS = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("MPROC_SOURCE_DIR") or os.path.dirname(TESTS)
BUILD = os.environ.get("MPROC_BUILD_DIR", "")
MESON = os.environ.get("MESON", "")
VERSION = os.environ.get("MPROC_VERSION", "")
CC = shlex.split(os.environ.get("CC") or "cc")
_installed = {}


def installed():
    """{'dest', 'bin', 'libdir', 'pc', 'include'}: the build installed once, removed at exit."""
    if _installed:
        return _installed
    dest = tempfile.mkdtemp(prefix="mproc-install-test.")
    atexit.register(shutil.rmtree, dest, True)
    r = subprocess.run([MESON, "install", "-C", BUILD, "--no-rebuild", "--destdir", dest],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=taprun.scaled(120))
    if r.returncode != 0:
        raise AssertionError("meson install failed:\n" + r.stdout)
    pcs = glob.glob(os.path.join(dest, "**", "pkgconfig", "mproc.pc"), recursive=True)
    libs = glob.glob(os.path.join(dest, "**", "libmproc.so"), recursive=True)
    heads = glob.glob(os.path.join(dest, "**", "include", "mproc.h"), recursive=True)
    tops = glob.glob(os.path.join(dest, "**", "bin", "mproc-topo"), recursive=True)
    if not (len(pcs) == len(libs) == len(heads) == len(tops) == 1):
        raise AssertionError("unexpected layout: pc %s, lib %s, header %s, bin %s"
                             % (pcs, libs, heads, tops))
    _installed.update(dest=dest, pc=pcs[0], libdir=os.path.dirname(libs[0]),
                      include=os.path.dirname(heads[0]), bin=os.path.dirname(tops[0]))
    return _installed


def env_for(inst):
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(inst["pc"]),
               PKG_CONFIG_SYSROOT_DIR=inst["dest"], LD_LIBRARY_PATH=inst["libdir"])
    env.pop("PKG_CONFIG_LIBDIR", None)
    return env


def run(argv, env):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=env, timeout=taprun.scaled(120))


class Install(unittest.TestCase):
    def setUp(self):
        if not (BUILD and MESON and VERSION):
            self.skipTest("MESON, MPROC_BUILD_DIR and MPROC_VERSION not set (run by meson test)")
        if not shutil.which("pkg-config"):
            self.skipTest("pkg-config not installed")
        self.inst = installed()
        self.env = env_for(self.inst)
        self.tmp = tempfile.mkdtemp(prefix="mproc-install-cc.")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_layout(self):
        self.assertEqual(sorted(os.listdir(self.inst["bin"])), ["mproc-manager", "mproc-topo"])
        # Every public header of lib/mproc/, the generated ones (NAME.h.in) under their name.
        want = sorted({f[:-3] if f.endswith(".h.in") else f
                       for f in os.listdir(os.path.join(SRC, "lib", "mproc"))
                       if f.endswith((".h", ".h.in"))})
        self.assertEqual(sorted(os.listdir(os.path.join(self.inst["include"], "mproc"))), want)
        every = [os.path.relpath(os.path.join(d, f), self.inst["dest"])
                 for d, _, fs in os.walk(self.inst["dest"]) for f in fs]
        for f in every:
            name = os.path.basename(f)
            self.assertFalse(name.startswith("bench_") or name == "mproc-bench"
                             or name.endswith(".a"), "installed but cannot run alone: " + f)
        r = run(["pkg-config", "--modversion", "mproc"], self.env)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, VERSION), r.stderr)

    def compile_and_run(self, source, args=()):
        exe = os.path.join(self.tmp, os.path.splitext(os.path.basename(source))[0])
        # README.md's line, as a user types it.
        r = run(["sh", "-c", '%s "$0" -o "$1" $(pkg-config --cflags --libs mproc)'
                 % " ".join(shlex.quote(c) for c in CC), source, exe], self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = run(["ldd", exe], self.env)
        self.assertIn(self.inst["libdir"], r.stdout, "not linked to the installed libmproc")
        r = run([exe] + list(args), self.env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_readme_example(self):
        block = os.path.join(self.tmp, "readme.c")
        r = run([sys.executable, os.path.join(SRC, "examples", "readme_block.py"),
                 os.path.join(SRC, "README.md"), block], self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("[42, None, 'hello']", self.compile_and_run(block))

    def test_example_spawn(self):
        out = self.compile_and_run(os.path.join(SRC, "examples", "queue.c"), ["spawn"])
        self.assertIn("spawn child, exit code 0", out)

    def test_commands_version(self):
        for name in ("mproc-topo", "mproc-manager"):
            r = run([os.path.join(self.inst["bin"], name), "--version"], self.env)
            self.assertEqual((r.returncode, r.stdout, r.stderr),
                             (0, "%s %s\n" % (name, VERSION), ""))
        r = run([os.path.join(self.inst["bin"], "mproc-topo")], self.env)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    sys.exit(taprun.main(sys.modules[__name__], "install", sys.argv[1:]))
