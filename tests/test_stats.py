#!/usr/bin/env python3
"""mproc_results/stats.py: median intervals from order statistics, paired and bootstrap ratio
intervals, the three-way verdict (issue 17). TAP output for meson; a name pattern as argv[1]
selects. Pure computation on fixed numbers: nothing here measures anything."""
import math
import os
import random
import sys
import unittest

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
from mproc_results import stats  # noqa: E402  (PYTHONPATH: plots/, tests/meson.build)

import taprun  # tests/taprun.py: unittest cases as TAP


class Coverage(unittest.TestCase):
    def test_table(self):
        # statistics.md's table: n -> (k, coverage)
        for n, k, cov in ((3, 1, 0.75), (5, 1, 0.9375), (6, 1, 0.96875), (9, 2, 0.9609),
                          (15, 4, 0.9648), (20, 6, 0.9586)):
            self.assertAlmostEqual(stats.coverage(n, k), cov, places=3, msg=(n, k))
            self.assertEqual(stats._order_k(n, 0.95), k if cov >= 0.95 else 0, msg=n)

    def test_out_of_range(self):
        self.assertEqual(stats.coverage(0, 1), 0.0)
        self.assertEqual(stats.coverage(5, 0), 0.0)
        self.assertEqual(stats.coverage(5, 4), 0.0)

    def test_min_repetitions(self):
        self.assertEqual(stats.min_repetitions(0.95), 6)
        self.assertEqual(stats.min_repetitions(0.90), 5)
        self.assertEqual(stats.min_repetitions(0.99), 8)

    def test_bad_level(self):
        for bad in (0, 1, 1.5, -0.1, float("nan"), None):
            with self.assertRaises(ValueError):
                stats.median_ci([1, 2, 3, 4, 5, 6], bad)


class MedianCI(unittest.TestCase):
    def test_too_few(self):
        self.assertIsNone(stats.median_ci([]))
        self.assertIsNone(stats.median_ci([1.0, 2.0, 3.0]))        # quick's old 3 repetitions
        self.assertIsNone(stats.median_ci([5, 4, 3, 2, 1]))        # 93.75 % < 95 %
        self.assertEqual(stats.median_ci([5, 4, 3, 2, 1], level=0.9), (1, 5))

    def test_six_is_min_max(self):
        self.assertEqual(stats.median_ci([6, 1, 5, 2, 4, 3]), (1, 6))

    def test_nine_drops_the_extremes(self):
        self.assertEqual(stats.median_ci([9, 1, 8, 2, 7, 3, 6, 4, 5]), (2, 8))

    def test_twenty(self):
        self.assertEqual(stats.median_ci(list(range(1, 21))), (6, 15))

    def test_nonfinite_left_out(self):
        vals = [1, 2, 3, 4, 5, float("nan"), float("inf")]
        self.assertIsNone(stats.median_ci(vals))                    # 5 finite values
        self.assertEqual(stats.median_ci(vals + [6]), (1, 6))

    def test_covers_median_about_as_promised(self):
        # A skewed (lognormal) distribution: the interval of 9 draws covers the true median
        # (1.0) in about 96 % of trials; a fixed seed keeps this deterministic.
        rng = random.Random(3)
        hit = 0
        trials = 2000
        for _ in range(trials):
            ci = stats.median_ci([rng.lognormvariate(0.0, 0.5) for _ in range(9)])
            hit += ci[0] <= 1.0 <= ci[1]
        self.assertGreater(hit / trials, 0.94)
        self.assertLess(hit / trials, 0.98)

    def test_median(self):
        self.assertEqual(stats.median([3, 1, 2]), 2)
        self.assertEqual(stats.median([4, 1, 2, 3]), 2.5)
        self.assertTrue(math.isnan(stats.median([])))
        self.assertTrue(math.isnan(stats.median([float("nan")])))


class RatioCI(unittest.TestCase):
    A = [10.0, 10.4, 9.8, 10.1, 10.2, 9.9, 10.0, 10.3, 10.1]

    def test_paired_cancels_shared_drift(self):
        # Both sides drift together by up to 2x; B is always 20 % slower than A in the same
        # pair: the paired ratio is exactly 1/1.2 with a tight interval.
        drift = [1.0, 1.5, 2.0, 1.2, 1.8, 1.1, 1.6, 1.3, 1.9]
        a = [10.0 * d for d in drift]
        b = [12.0 * d for d in drift]
        r, lo, hi = stats.ratio_ci(a, b, paired=True)
        self.assertAlmostEqual(r, 10.0 / 12.0, places=9)
        self.assertAlmostEqual(lo, 10.0 / 12.0, places=9)
        self.assertAlmostEqual(hi, 10.0 / 12.0, places=9)
        self.assertEqual(stats.verdict(lo, hi), "worse")
        # The same values unpaired: the drift dominates and the bootstrap cannot decide.
        r2, lo2, hi2 = stats.ratio_ci(a, b, paired=False)
        self.assertAlmostEqual(r2, r, places=9)
        self.assertLess(lo2, 1.0)
        self.assertEqual(stats.verdict(lo2, hi2), "undecided")

    def test_paired_order_statistics(self):
        a = [2, 4, 6, 8, 10, 12]
        b = [1, 1, 1, 1, 1, 1]
        self.assertEqual(stats.ratio_ci(a, b), (7.0, 2.0, 12.0))

    def test_paired_estimate_is_the_median_pair_ratio(self):
        # Per-pair ratios 2, 4, 6, 8, 10, 3: their median is 5, where the ratio of the
        # medians would say 7; the estimate is the statistic its interval is for.
        a = [2, 4, 6, 8, 10, 12]
        b = [1, 1, 1, 1, 1, 4]
        self.assertEqual(stats.ratio_ci(a, b), (5.0, 2.0, 10.0))

    def test_paired_too_few(self):
        r, lo, hi = stats.ratio_ci([1, 2, 3], [1, 1, 1])
        self.assertEqual((r, lo, hi), (2.0, None, None))
        # Extra unpaired values on one side do not make pairs.
        r, lo, hi = stats.ratio_ci([1, 2, 3, 4, 5, 6, 7], [1, 1, 1, 1, 1])
        self.assertEqual((lo, hi), (None, None))

    def test_paired_zero_and_nan(self):
        a = [1, 2, 3, 4, 5, 6, 7]
        b = [1, 1, 0, 1, 1, float("nan"), 1]
        self.assertEqual(stats.ratio_ci(a, b)[1:], (None, None))    # 5 usable pairs
        r, lo, hi = stats.ratio_ci(a + [8], b + [1])
        self.assertEqual((lo, hi), (1.0, 8.0))
        r, lo, hi = stats.ratio_ci(self.A, [0.0] * 9)
        self.assertTrue(math.isnan(r))
        self.assertEqual((lo, hi), (None, None))

    def test_unpaired_known_difference(self):
        b = [x * 2.0 for x in self.A]
        r, lo, hi = stats.ratio_ci(self.A, b, paired=False)
        self.assertAlmostEqual(r, 0.5)
        self.assertLessEqual(lo, r)
        self.assertGreaterEqual(hi, r)
        self.assertLess(hi, 0.6)
        self.assertEqual(stats.verdict(lo, hi), "worse")

    def test_unpaired_reproducible(self):
        b = [x * 1.01 for x in reversed(self.A)]
        one = stats.ratio_ci(self.A, b, paired=False)
        two = stats.ratio_ci(self.A, b, paired=False)
        self.assertEqual(one, two)
        self.assertNotEqual(one, stats.ratio_ci(self.A, b, paired=False, seed=99))
        self.assertEqual(stats.verdict(one[1], one[2]), "undecided")

    def test_unpaired_too_few(self):
        self.assertEqual(stats.ratio_ci(self.A, [1, 2, 3, 4, 5], paired=False)[1:],
                         (None, None))
        self.assertEqual(stats.ratio_ci([1.0], [2.0], paired=False), (0.5, None, None))

    def test_unpaired_bad_resamples(self):
        with self.assertRaises(ValueError):
            stats.ratio_ci(self.A, self.A, paired=False, resamples=10)


class Verdict(unittest.TestCase):
    def test_three_outcomes(self):
        self.assertEqual(stats.verdict(1.1, 1.3), "better")
        self.assertEqual(stats.verdict(0.7, 0.9), "worse")
        self.assertEqual(stats.verdict(0.9, 1.1), "undecided")

    def test_touching_is_undecided(self):
        self.assertEqual(stats.verdict(1.0, 1.2), "undecided")
        self.assertEqual(stats.verdict(0.8, 1.0), "undecided")

    def test_lower_is_better(self):
        self.assertEqual(stats.verdict(1.1, 1.3, higher_is_better=False), "worse")
        self.assertEqual(stats.verdict(0.7, 0.9, higher_is_better=False), "better")

    def test_threshold(self):
        self.assertEqual(stats.verdict(0.96, 0.99, threshold=0.95), "better")
        self.assertEqual(stats.verdict(0.90, 0.94, threshold=0.95), "worse")
        self.assertEqual(stats.verdict(0.2, 0.3, threshold=0.25), "undecided")

    def test_no_interval(self):
        self.assertEqual(stats.verdict(None, None), "undecided")
        self.assertEqual(stats.verdict(1.2, None), "undecided")
        self.assertEqual(stats.verdict(float("nan"), 2.0), "undecided")

    def test_swapped_bounds(self):
        self.assertEqual(stats.verdict(1.3, 1.1), "better")

    def test_half_width(self):
        self.assertAlmostEqual(stats.half_width(1.0, 0.97, 1.04), 0.04)
        self.assertAlmostEqual(stats.half_width(2.0, 1.0, 2.2), 0.5)
        self.assertIsNone(stats.half_width(1.0, None, 1.1))
        self.assertIsNone(stats.half_width(0.0, -1.0, 1.0))


def main():
    return taprun.main(sys.modules[__name__], "stats", sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
