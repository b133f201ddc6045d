"""stats - intervals and verdicts for mproc's figures. Stdlib only; Python >= 3.8.

    import stats
    stats.median_ci([9.8, 10.1, 10.0, 10.3, 9.9, 10.2])     # (9.8, 10.3): 96.9 % coverage
    r, lo, hi = stats.ratio_ci(a_reps, b_reps, paired=True)  # a/b with a 95 % interval
    stats.verdict(lo, hi, threshold=1.0)                     # "better" | "worse" | "undecided"

Why these methods (results/README.md says the same for users):
  - A median's interval comes from order statistics: for n repetitions, [x(k), x(n-k+1)]
    covers the true median with probability 1 - 2 P(Binomial(n, 1/2) < k), whatever the
    distribution. Timings on a shared machine are skewed (noise adds delay) and often
    bimodal, so an interval that assumes normality would lie; this one does not. The price:
    it needs n >= 6 for 95 % (n = 5 gives 93.75 %), so median_ci says None below that, and
    the figure is "too few repetitions", never "stable".
  - A ratio of two figures measured back to back in pairs (the decider's A/B, B/A rounds)
    pairs round i of A with round i of B: both saw the same machine state, so the per-pair
    ratios a_i/b_i cancel the slow drift that moves both. The estimate is their median, and
    its order-statistics interval the ratio's interval.
  - Figures that were not measured in pairs cannot be paired: run A against run B in
    compare.md, and also two figures of one harness whose repetitions Google Benchmark
    shuffled (random interleaving spreads both over the same period, but repetition i of A
    and repetition i of B were not measured together). The interval of the ratio of medians
    comes from a percentile bootstrap (resampling each side independently), with a fixed
    seed so a report is reproducible.

A verdict has three outcomes: the interval lies wholly above the threshold, wholly below it,
or straddles (or touches) it: "undecided". No interval (too few repetitions) is undecided.
"""

import math
import random

__all__ = ["median", "coverage", "min_repetitions", "median_ci", "ratio_ci", "verdict",
           "half_width", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED"]

# Percentile bootstrap of an unpaired ratio: resamples per call, and the seed (fixed so that
# the same two runs always give the same interval).
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 17


def _finite(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _clean(values):
    return sorted(float(v) for v in (values or ()) if _finite(v))


def median(values):
    """Median of the finite values; NaN when there are none."""
    v = _clean(values)
    if not v:
        return math.nan
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2.0


def coverage(n, k):
    """Probability that [x(k), x(n-k+1)] (1-based order statistics of n values) covers the
    median of the distribution: 1 - 2 P(Binomial(n, 1/2) < k). 0 when k is out of range."""
    if n < 1 or k < 1 or 2 * k > n + 1:
        return 0.0
    below = sum(math.comb(n, i) for i in range(k)) / 2.0 ** n
    return max(0.0, 1.0 - 2.0 * below)


def _order_k(n, level):
    """The largest k whose interval [x(k), x(n-k+1)] still covers at least `level`; 0 if none."""
    best = 0
    for k in range(1, (n + 1) // 2 + 1):
        if coverage(n, k) >= level:
            best = k
        else:
            break
    return best


def min_repetitions(level=0.95):
    """The fewest repetitions for which median_ci can give an interval at `level` (6 at 95 %)."""
    _check_level(level)
    n = 1
    while _order_k(n, level) == 0:
        n += 1
    return n


def _check_level(level):
    if not (_finite(level) and 0.0 < level < 1.0):
        raise ValueError("level must be in (0, 1), got %r" % (level,))


def median_ci(values, level=0.95):
    """Distribution-free interval (lo, hi) for the median of `values` (non-finite values are
    left out), from order statistics; None when there are too few for `level`
    (n < 6 at 95 %)."""
    _check_level(level)
    v = _clean(values)
    k = _order_k(len(v), level)
    if k == 0:
        return None
    return (v[k - 1], v[len(v) - k])


def _ratio(a, b):
    if not (_finite(a) and _finite(b)) or b == 0:
        return math.nan
    return a / b


def ratio_ci(a_values, b_values, paired=True, level=0.95, resamples=None, seed=None):
    """Ratio of a to b with an interval at `level`.

    paired=True: a_values[i] and b_values[i] were measured together (round i of back-to-back
    runs); the ratio is the median of the per-pair ratios a_i/b_i and the interval its
    median_ci, so the estimate always lies in its interval (pairs with a non-finite value or
    b_i == 0 are left out, and so are the extra values on the longer side).
    paired=False: the ratio of medians median(a)/median(b), with a percentile bootstrap
    interval, each side resampled on its
    own, `resamples` times (BOOTSTRAP_RESAMPLES) with a fixed `seed` (BOOTSTRAP_SEED); it
    needs min_repetitions(level) finite values on each side.

    Returns (ratio, lo, hi), or (ratio, None, None) when there are too few values for an
    interval; ratio is NaN when either median is missing or median(b) is 0.
    """
    _check_level(level)
    if paired:
        pairs = [x for x in (_ratio(a, b) for a, b in zip(a_values or (), b_values or ()))
                 if _finite(x)]
        r = median(pairs) if pairs else math.nan
        ci = median_ci(pairs, level)
        if ci is None or not _finite(r):
            return (r, None, None)
        return (r, ci[0], ci[1])
    r = _ratio(median(a_values), median(b_values))
    a, b = _clean(a_values), _clean(b_values)
    need = min_repetitions(level)
    if len(a) < need or len(b) < need or not _finite(r):
        return (r, None, None)
    rng = random.Random(BOOTSTRAP_SEED if seed is None else seed)
    n_res = BOOTSTRAP_RESAMPLES if resamples is None else int(resamples)
    if n_res < 100:
        raise ValueError("resamples must be >= 100, got %r" % (resamples,))
    boots = []
    for _ in range(n_res):
        mb = median(rng.choices(b, k=len(b)))
        ma = median(rng.choices(a, k=len(a)))
        x = _ratio(ma, mb)
        if _finite(x):
            boots.append(x)
    if len(boots) < n_res // 2:
        return (r, None, None)
    boots.sort()
    tail = (1.0 - level) / 2.0
    lo = boots[max(0, int(math.floor(tail * len(boots))))]
    hi = boots[min(len(boots) - 1, int(math.ceil((1.0 - tail) * len(boots))) - 1)]
    return (r, lo, hi)


def verdict(lo, hi, threshold=1.0, higher_is_better=True):
    """'better' when the whole interval lies above `threshold` (below it when lower is
    better), 'worse' when it lies wholly on the other side, 'undecided' when it straddles or
    touches the threshold or there is no interval (lo or hi None or not finite)."""
    if not (_finite(lo) and _finite(hi)):
        return "undecided"
    if lo > hi:
        lo, hi = hi, lo
    if lo > threshold:
        return "better" if higher_is_better else "worse"
    if hi < threshold:
        return "worse" if higher_is_better else "better"
    return "undecided"


def half_width(estimate, lo, hi):
    """The interval's larger distance from the estimate, as a fraction of it (0.05 = +-5 %);
    None without an interval or with a zero or non-finite estimate."""
    if not (_finite(estimate) and _finite(lo) and _finite(hi)) or estimate == 0:
        return None
    return max(abs(estimate - lo), abs(hi - estimate)) / abs(estimate)
