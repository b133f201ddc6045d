"""files - the one way this package writes a file: atomically (a `.tmp-<pid>` beside it, then
os.replace), so a reader never sees half a report and a killed writer leaves the old file.

    files.write_text(path, text)
    files.write_json(path, doc)            # indent=1, a newline at the end

Raises OSError (the temporary file removed); callers say what failed in one line.
"""

import json
import os

__all__ = ["write_text", "write_json"]


def write_text(path, text):
    """Write text to path atomically; returns path."""
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_json(path, doc, allow_nan=True):
    """Write doc as JSON (indent 1, newline-terminated) to path atomically; returns path.
    allow_nan=False for files whose readers want strict JSON (answers.json,
    recommendation.json); Google Benchmark's own files hold NaN, which `json` reads."""
    return write_text(path, json.dumps(doc, indent=1, allow_nan=allow_nan) + "\n")
