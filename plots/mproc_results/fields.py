"""fields - what the project knows about a figure's fields, and how each is written: the unit,
the direction (higher is better, or lower), what counts as unstable, and the formatters every
report uses (report.md, targets.md, compare.md, crosscheck lines, index.html). One copy each.

    fields.fmt_value("p50_ns", 283000.0)           # '283 µs'
    fields.fmt_value("msgs_per_second", 2.5e6)     # '2.5 M/s'
    fields.higher_is_better("speedup")             # True
    fields.unstable(stats)                         # CV over UNSTABLE_CV

Units are written one way everywhere: ns, µs, ms, s for times; B, KiB, MiB, GiB for sizes.
"""

import math

__all__ = ["UNSTABLE_CV", "HIGHER_IS_BETTER", "is_time", "higher_is_better", "unit",
           "comparable", "unstable", "fmt_ns", "fmt_num", "fmt_bytes", "fmt_value", "fmt_cv"]

# A figure whose repetitions' coefficient of variation exceeds this is flagged "unstable".
UNSTABLE_CV = 0.05

# Fields where a larger figure is better (rates, speedup); times and sizes are lower-better.
HIGHER_IS_BETTER = frozenset({"bytes_per_second", "msgs_per_second", "updates_per_second",
                              "tasks_per_second", "ops_per_second", "speedup", "efficiency"})


def _finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def is_time(field):
    """A duration in ns: real_time, cpu_time, *_ns, ns_* (Google Benchmark times are read in ns)."""
    return field is not None and (field.endswith("_ns") or field.startswith("ns_")
                                  or field in ("real_time", "cpu_time"))


def higher_is_better(field):
    return field in HIGHER_IS_BETTER or (field is not None and field.endswith("_per_second"))


def unit(field):
    """The unit a field is measured in, as reports write it ('ns', 'B/s', '/s', 'MiB', '')."""
    if is_time(field):
        return "ns"
    if field == "bytes_per_second":
        return "B/s"
    if field is not None and field.endswith("_per_second"):
        return "/s"
    if field is not None and field.endswith("_mib"):
        return "MiB"
    return ""


def comparable(f1, f2):
    """Two fields whose ratio means something: the same one, or two times in ns."""
    return f1 is not None and f2 is not None and (f1 == f2 or (is_time(f1) and is_time(f2)))


def unstable(st):
    """True when a Stats' CV over its repetitions exceeds UNSTABLE_CV (None: unknown)."""
    if st is None or st.cv is None:
        return None
    return st.cv > UNSTABLE_CV


def fmt_ns(v):
    """A duration in ns, in the unit that reads best: '283 µs'; '—' when unknown."""
    if not _finite(v):
        return "—"
    a = abs(v)
    for div, u in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if a >= div:
            return "%.3g %s" % (v / div, u)
    return "%.3g ns" % v


def fmt_num(v, unit_=""):
    """A count or rate with an SI prefix: '2.5 M/s', '48', '1.2 k'."""
    if not _finite(v):
        return "—"
    for div, suf in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return "%.3g %s%s" % (v / div, suf, unit_)
    return "%.3g %s" % (v, unit_) if unit_ else "%.3g" % v


def fmt_bytes(v):
    """A size in bytes with a binary prefix: '4 KiB', '64 MiB'."""
    if not _finite(v) or v < 0:
        return "—"
    for div, suf in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if v >= div:
            return "%.3g %s" % (v / div, suf)
    return "%d B" % v


def fmt_value(field, v):
    """A figure of a field in its unit: times as fmt_ns, rates with '/s', sizes in MiB."""
    if not _finite(v):
        return "—"
    if is_time(field):
        return fmt_ns(v)
    u = unit(field)
    if u in ("B/s", "/s"):
        return fmt_num(v, u)
    if u == "MiB":
        return "%.3g MiB" % v
    return "%.3g" % v


def fmt_cv(st):
    """(CV as a percentage plus the unstable flag, flagged); 'n/a' below two repetitions."""
    if st is None or st.cv is None:
        return "n/a", False
    flag = st.cv > UNSTABLE_CV
    return ("%.1f %%" % (st.cv * 100)) + (" **unstable**" if flag else ""), flag
