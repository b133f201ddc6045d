"""registry - which plots a run gets, from which benchmark names, in which colours.

One entry per plot; a harness adds its plots by appending entries here (a few lines each).
tsv.py turns each entry into plots/data/<id>.tsv, plot.py draws it with gnuplot
(plots/<kind>.gp) and matplotlib into <run>/plots/<id>.{gnuplot,mpl}.{png,svg}.

Entry fields:
  id       file stem of the plot ("baseline_latency")
  harness  the harness whose JSON it reads (the plot is skipped when that file is absent)
  kind     "grouped_bars": one bar group per `group`, one bar per `series`, log y if logy
  pattern  regex (fullmatch) over stripped benchmark names with named groups `group` and
           `series`; names under "python/" (CPython comparators) match the same pattern with
           the prefix removed and become series "python:<series>"
  value    fields to try in order for the bar height (counters, or real_time in ns)
  whisker  field for the upper whisker (None: no whisker)
  scale    divide values by this for the axis (1e3: ns -> us)
  ylabel, title
"""

PLOTS = [
    {
        "id": "baseline_latency",
        "harness": "baseline",
        "kind": "grouped_bars",
        "pattern": r"baseline/(?P<group>[^/]+)/placement:(?P<series>same_core|cross_core)",
        "value": ["p50_ns", "real_time"],
        "whisker": "p99_ns",
        "scale": 1.0,
        "logy": True,
        "ylabel": "round trip (ns, log scale)",
        "title": "Baseline round trips: p50, whisker to p99",
    },
    # [spawn] [pipe] [queue] [latency] [shm] [manager] [pool]: add entries here.
    {
        # Start cost vs parent RSS: one group per RSS, one bar per method (CPython's beside).
        "id": "spawn_rss",
        "harness": "spawn",
        "kind": "grouped_bars",
        "pattern": r"spawn/(?P<series>fork|vfork|posix_spawn|spawn|forkserver|thread)"
                   r"/rss_mib:(?P<group>\d+)",
        "value": ["p50_ns", "real_time"],
        "whisker": "p99_ns",
        "scale": 1e3,
        "logy": True,
        "ylabel": "start -> reaped (us, log scale)",
        "title": "Process start cost vs parent RSS (MiB): p50, whisker to p99",
    },
]

# One colour per method/series across every plot (gnuplot and matplotlib alike). Colour-blind
# safe (Okabe-Ito first, then Tol's muted). "python:<x>" series use the same hue, drawn hatched
# or lighter by the plotters.
PALETTE = {
    "same_core": "#0072B2",
    "cross_core": "#D55E00",
    "fork": "#0072B2",
    "vfork": "#56B4E9",
    "posix_spawn": "#009E73",
    "spawn": "#E69F00",
    "forkserver": "#CC79A7",
    "thread": "#999999",
    "pipe": "#0072B2",
    "socketpair": "#009E73",
    "seqpacket": "#56B4E9",
    "ring": "#D55E00",
    "mqueue": "#CC79A7",
    "sysv": "#E69F00",
    "lock": "#D55E00",
    "atomic": "#009E73",
    "none": "#999999",
    "unix": "#0072B2",
    "tcp": "#D55E00",
}
_FALLBACK = ["#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677",
             "#882255", "#AA4499"]


def color(series):
    """The fixed colour of a series; unknown names get a stable colour from their text."""
    base = series.split(":", 1)[1] if series.startswith("python:") else series
    if base in PALETTE:
        return PALETTE[base]
    h = 0
    for ch in base:
        h = (h * 131 + ord(ch)) & 0xFFFFFFFF
    return _FALLBACK[h % len(_FALLBACK)]


def label(series):
    return series.replace("python:", "CPython ").replace("_", " ")


def plots_for(harnesses):
    """Registry entries whose harness is among `harnesses` (names of JSON files in a run)."""
    return [p for p in PLOTS if p["harness"] in harnesses]
