"""registry - which plots a run gets, from which benchmark names, in which colours.

One entry per plot; a harness adds its plots by appending entries here (a few lines each).
tsv.py turns each entry into plots/data/<id>.tsv, plot.py draws it with gnuplot
(plots/<kind>.gp) and matplotlib into <run>/plots/<id>.{gnuplot,mpl}.{png,svg}.

Entry fields:
  id       file stem of the plot ("baseline_latency")
  harness  the harness (or list of harnesses) whose JSON may hold its names; the plot is
           made when any of them is in the run (names are then taken from every file)
  kind     "grouped_bars": one bar group per `group`, one bar per `series`;
           "lines": x from the named group `x` (a number), one line per `series`
  pattern  regex (fullmatch) over stripped benchmark names with named groups `series` and
           `group` (grouped_bars) or `x` (lines), and optionally `pick` (a number: each series
           keeps only its figures with the largest one); names under "python/" (CPython
           comparators) match the same pattern with the prefix removed and become series
           "python:<series>"
  value    fields to try in order for the bar height / y (counters, or real_time in ns)
  whisker  field for the upper whisker (None: no whisker; grouped_bars only)
  scale    divide values by this for the axis (1e3: ns -> µs, 1e6: B/s -> MB/s)
  ideal    (lines, speedup plots) draw the ideal speedup min(x, usable CPUs), mark the run's
           usable CPU budget, and explain points above ideal in a note under the plot
  logx, logy, xlabel, ylabel, title
           Units are spelled one way in every plot: "µs" (never "us"), sizes in B, KiB, MiB
           (plot.size_label; a log-x plot's ticks are its measured sizes so labelled), counts
           as integer ticks.
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
    {
        "id": "latency_rtt",
        "harness": ["latency", "queue"],
        "kind": "grouped_bars",
        "pattern": r"latency/(?P<group>[^/]+)/placement:(?P<series>same_core|cross_core)",
        "value": ["p50_ns", "real_time"],
        "whisker": "p99_ns",
        "scale": 1.0,
        "logy": True,
        "ylabel": "round trip (ns, log scale)",
        "title": "Round trip between two processes: p50, whisker to p99",
    },
    {
        "id": "pipe_throughput",
        "harness": "pipe",
        "kind": "lines",
        "pattern": r"pipe/(?P<series>[^/]+)/bytes:(?!65528/)(?P<x>\d+)/placement:cross_core",
        "value": ["bytes_per_second"],
        "whisker": None,
        "scale": 1e6,
        "logx": True,
        "logy": True,
        "xlabel": "message size",
        "ylabel": "one-way throughput (MB/s, cross core)",
        "title": "Pipe and connection throughput by message size",
    },
    {
        "id": "queue_throughput",
        "harness": "queue",
        "kind": "lines",
        "pattern": r"queue/(?P<series>[^/]+)/bytes:(?P<x>\d+)/producers:1/consumers:1",
        "value": ["msgs_per_second"],
        "whisker": None,
        "scale": 1.0,
        "logx": True,
        "logy": True,
        "xlabel": "item size",
        "ylabel": "items per second (1 producer, 1 consumer)",
        "title": "Queue throughput by back end and item size",
    },
    # [spawn] [shm] [manager] [pool]: add entries here.
    {
        # One group per proxy call, raw_rtt (the bare socket round trip of the same sizes, at
        # the same placement) beside them as the yardstick; CPython's Manager hatched.
        "id": "manager_rtt",
        "harness": "manager",
        "kind": "grouped_bars",
        "pattern": r"manager/(?P<group>connect|dict_set|dict_get|list_append|value_get"
                   r"|queue_put_get|lock_acquire_release|raw_rtt)/transport:(?P<series>unix|tcp)",
        "value": ["p50_ns", "real_time"],
        "whisker": "p99_ns",
        "scale": 1e3,
        "logy": True,
        "ylabel": "round trip, p50 (µs, log scale)",
        "title": "Manager proxy calls vs the raw socket round trip: p50, whisker to p99",
    },
    {
        # Start cost vs parent RSS: one line per start method (CPython's beside), log y.
        "id": "spawn_rss",
        "harness": "spawn",
        "kind": "lines",
        # fork_raw: a bare fork + _exit + waitpid in the same harness process, the floor.
        "pattern": r"spawn/(?P<series>fork|fork_raw|vfork|posix_spawn|spawn|forkserver|thread)"
                   r"/rss_mib:(?P<x>\d+)",
        "value": ["p50_ns", "real_time"],
        "whisker": None,
        "scale": 1e3,
        "logx": False,
        "logy": True,
        "xlabel": "parent RSS (MiB, touched)",
        "ylabel": "start → reaped, p50 (µs, log scale)",
        "title": "Process start cost vs parent RSS, per start method",
    },
    {
        # The exec-based methods running the lean child image (mproc-spawn-child, set with
        # mproc_set_executable) beside the same methods exec'ing the C++ harness itself
        # ("_self"): what the size of the exec'd image costs.
        "id": "spawn_image",
        "harness": "spawn",
        "kind": "lines",
        "pattern": r"spawn/(?P<series>(?:vfork|posix_spawn|spawn|forkserver)(?:_self)?)"
                   r"/rss_mib:(?P<x>\d+)",
        "value": ["p50_ns", "real_time"],
        "whisker": None,
        "scale": 1e3,
        "logx": False,
        "logy": True,
        "xlabel": "parent RSS (MiB, touched)",
        "ylabel": "start → reaped, p50 (µs, log scale)",
        "title": "Exec-based starts: lean child image vs the harness's own image (_self)",
    },
    {
        # Shared counter under contention: Value with a lock, atomic, and unsynchronised.
        "id": "shm_value",
        "harness": "shm",
        "kind": "grouped_bars",
        "pattern": r"shm/value/(?P<series>lock|atomic|none)/(?P<group>procs:\d+)",
        "value": ["updates_per_second"],
        "whisker": None,
        "scale": 1e6,
        "logy": True,
        "ylabel": "updates per second (millions, log scale)",
        "title": "Shared Value: counter updates per second by number of processes",
    },
    {
        # One proxy call round trip per operation, over a Unix socket and over TCP.
        "id": "manager_ops",
        "harness": "manager",
        "kind": "grouped_bars",
        "pattern": r"manager/(?P<group>[a-z_]+)/transport:(?P<series>unix|tcp)",
        "value": ["p50_ns", "real_time"],
        "whisker": "p99_ns",
        "scale": 1e3,
        "logy": True,
        "ylabel": "round trip (µs, log scale)",
        "title": "Manager proxy calls: p50, whisker to p99",
    },
    {
        # CPU-bound scaling: speedup over one worker against workers (the longest tasks each
        # series has: 20 ms in quick/full, 1 ms in smoke).
        "id": "pool_cpu_speedup",
        "harness": "pool",
        "kind": "lines",
        "pattern": r"pool/(?P<series>cpu|cpu_pinned)/workers:(?P<x>\d+)/task_ms:(?P<pick>\d+)",
        "value": ["speedup"],
        "whisker": None,
        "scale": 1.0,
        "logx": False,
        "logy": False,
        "xlabel": "workers",
        "ideal": True,
        "ylabel": "speedup over 1 worker (longest CPU tasks in the run)",
        "title": "Pool: CPU-bound speedup by number of workers",
    },
    {
        # Cost per task of each pool API, per chunksize.
        "id": "pool_overhead",
        "harness": "pool",
        "kind": "grouped_bars",
        "pattern": r"pool_overhead/(?P<series>[a-z_]+)/(?P<group>chunksize:\d+)",
        "value": ["ns_per_task"],
        "whisker": None,
        "scale": 1e3,
        "logy": True,
        "ylabel": "cost per task (µs, log scale)",
        "title": "Pool overhead per task, by API and chunksize",
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
    "fork_raw": "#000000",
    "vfork_self": "#1F4E79",
    "posix_spawn_self": "#005A3C",
    "spawn_self": "#8C5A00",
    "forkserver_self": "#7A3B62",
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
    "raw_pipe": "#999999",
    "framed_pipe": "#000000",
    "conn_pipe": "#0072B2",
    "conn_stream": "#009E73",
    "conn_seqpacket": "#56B4E9",
    "pipe_queue": "#0072B2",
    "ring_spin": "#E69F00",
    "ring_futex": "#D55E00",
    "mq": "#CC79A7",
    "cpu": "#0072B2",
    "cpu_pinned": "#009E73",
    "map": "#0072B2",
    "imap": "#56B4E9",
    "imap_unordered": "#88CCEE",
    "starmap": "#332288",
    "apply": "#999933",
    "apply_async": "#E69F00",
    "submit": "#D55E00",
    "executor_map": "#CC79A7",
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
    """Registry entries with a harness among `harnesses` (names of JSON files in a run), or
    every entry when the run has the CPython comparators' python.json (empty ones are skipped
    by the caller)."""
    out = []
    for p in PLOTS:
        hs = [p["harness"]] if isinstance(p["harness"], str) else p["harness"]
        # The CPython comparators' file holds twins of every harness's names.
        if "python" in harnesses or any(h in harnesses for h in hs):
            out.append(p)
    return out
