"""cli - the one way a Python command of mproc fails and says its version (plots/plot.py,
plots/report.py, plots/compare.py, bench/mproc-recommend, `make verify`, the decider and the
cross-checks): bad usage is ONE line on stderr naming the problem and the way out, exit 2
(not argparse's two-line usage); `--version` prints "PROG (mproc) X" from meson.build.

    ap = cli.Parser("compare", "plots/compare.py", description="...")
    ap.add_argument(...)
    a = ap.parse_args(argv)   # exits 2: "compare: <problem> (see plots/compare.py --help)"
    ...
    raise cli.Usage("not a run directory")    # or: return cli.fail("compare", "...")
"""

import argparse
import sys

from . import version as _version

__all__ = ["Parser", "Usage", "fail"]


class Usage(Exception):
    """Bad usage or input: one line for the user, exit 2."""


def fail(prog, message, status=2):
    """Print 'prog: message' on stderr and return status (2: bad usage or input)."""
    print("%s: %s" % (prog, message), file=sys.stderr)
    return status


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) and --version from meson.build."""

    def __init__(self, prog, command=None, **kw):
        """prog: the name messages start with; command: how a user runs it (the way out
        named in an error: "see plots/compare.py --help"), default prog."""
        super().__init__(prog=prog, **kw)
        self.command = command or prog
        self.add_argument("--version", action="version",
                          version="%s (mproc) %s" % (prog, _version.version()))

    def error(self, message):
        print("%s: %s (see %s --help)" % (self.prog, message, self.command), file=sys.stderr)
        sys.exit(2)
