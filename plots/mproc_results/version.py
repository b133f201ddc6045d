"""version - mproc's version, for every Python command's --version: read from the one place
it is declared, meson.build's `project(..., version: 'X')` at the tree's root. An installed
copy of this package without the tree reads $MPROC_VERSION (the installer sets it), else
says "unknown"."""

import os
import re

from . import paths

_PROJECT_VERSION = re.compile(r"project\s*\((?:[^()]|\([^()]*\))*?\bversion\s*:\s*'([^']+)'",
                              re.S)


def version(meson_build=None):
    """'0.1.0' from meson.build; $MPROC_VERSION or 'unknown' without one."""
    path = meson_build or os.path.join(paths.ROOT, "meson.build")
    try:
        with open(path, encoding="utf-8") as f:
            m = _PROJECT_VERSION.search(f.read())
    except OSError:
        m = None
    if m:
        return m.group(1)
    return os.environ.get("MPROC_VERSION") or "unknown"
