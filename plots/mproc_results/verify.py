#!/usr/bin/env python3
"""verify - do two runs give the same answers? (`make verify`, `mproc-bench --verify`)

    PYTHONPATH=plots python3 -m mproc_results.verify RUN_A RUN_B      (make verify runs it)

Prints, per answer (RUN/answers.json, written with report.md: {"answers": [{"question",
"answer", "why", "figures"}]}) and per deciding pair (the headline rows and the answers'
pairs: RUN/decide.json, or the main pass's intervals when a run has none), whether the two
runs agree, disagree, or are undecided:

  agree      the same answer / the same verdict (better, worse) in both
  undecided  one run (or both) says "undecided": not a contradiction, not a confirmation
  disagree   two different answers, or "better" in one run and "worse" in the other

A run without answers.json (older runs) says so and is compared on its pairs alone.
Exit: 0 no disagreement; 1 some disagreement; 2 bad usage or not a run directory.
Stdlib only; Python >= 3.8.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
from . import cli
from . import decide
from . import gbjson

PROG = "verify"


def load_answers(run_dir):
    """{question: answer} from answers.json, or None when it is absent or unreadable."""
    doc = gbjson.read_side(run_dir, "answers")
    if doc is None:
        return None
    out = {}
    for a in (doc.get("answers") if isinstance(doc, dict) else None) or []:
        if isinstance(a, dict) and isinstance(a.get("question"), str):
            out[a["question"]] = str(a.get("answer", "undecided"))
    return out


def load_verdicts(run_dir):
    """{pair id: (what, verdict)} from decide.json, else from the run's main pass."""
    doc = decide.load(run_dir)
    if doc is not None:
        return {p["id"]: (p.get("what", p["id"]), (p.get("final") or {}).get("verdict",
                                                                            "undecided"))
                for p in doc["pairs"] if isinstance(p, dict) and "id" in p}
    run = gbjson.load_run(run_dir)
    return {p.id: (p.what, p.summary()["verdict"]) for p in decide.deciding_pairs(run)}


def outcome(x, y):
    if x == y and x != "undecided":
        return "agree"
    if x == "undecided" or y == "undecided":
        return "undecided"
    return "disagree"


def compare(run_a, run_b):
    """(lines, counts {agree, undecided, disagree})."""
    lines = []
    counts = {"agree": 0, "undecided": 0, "disagree": 0}
    aa, ab = load_answers(run_a), load_answers(run_b)
    if aa is None or ab is None:
        missing = [r for r, a in ((run_a, aa), (run_b, ab)) if a is None]
        lines.append("answers: no answers.json in %s (an older run, or a report without "
                     "\"What to use\"): answers not compared" % ", ".join(missing))
    else:
        for q in list(aa) + [q for q in ab if q not in aa]:
            x, y = aa.get(q), ab.get(q)
            if x is None or y is None:
                lines.append("answer    only in one run: %s" % q)
                continue
            o = outcome(x.strip().lower(), y.strip().lower())
            counts[o] += 1
            lines.append("%-9s %s: %s | %s" % (o, q, x, y))
    va, vb = load_verdicts(run_a), load_verdicts(run_b)
    for pid in list(va) + [p for p in vb if p not in va]:
        if pid not in va or pid not in vb:
            lines.append("figure    only in one run: %s" % (va.get(pid) or vb.get(pid))[0])
            continue
        o = outcome(va[pid][1], vb[pid][1])
        counts[o] += 1
        lines.append("%-9s %s: %s | %s" % (o, va[pid][0], va[pid][1], vb[pid][1]))
    lines.append("verify: %d agree, %d undecided, %d disagree" % (
        counts["agree"], counts["undecided"], counts["disagree"]))
    return lines, counts


def main(argv=None):
    ap = cli.Parser(PROG, "PYTHONPATH=plots python3 -m mproc_results.verify",
                    description="Do two runs' answers and headline verdicts agree?")
    ap.add_argument("run_a", help="run directory")
    ap.add_argument("run_b", help="run directory")
    a = ap.parse_args(argv)
    argv = [a.run_a, a.run_b]
    for r in argv:
        if not gbjson.is_run_dir(r):
            print("%s: %s: not a run directory (no context.json)" % (PROG, r), file=sys.stderr)
            return 2
    try:
        lines, counts = compare(argv[0], argv[1])
    except gbjson.GBJsonError as e:
        print("%s: %s" % (PROG, e), file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 1 if counts["disagree"] else 0


if __name__ == "__main__":
    sys.exit(main())
