#!/usr/bin/env python3
"""compare - two or more mproc runs side by side: compare.md, compare.tsv, side-by-side plots,
Google Benchmark's U-test where installed, and index.html (plots/mproc_results/compare.py).

    plots/compare.py RUN_A RUN_B [RUN_C ...] [--out DIR] [--force]    (make compare A=.. B=..)

Exit: 0 written; 1 a plot or a file failed; 2 bad usage or input (one line).
"""

import sys

from mproc_results import compare   # plots/mproc_results/, beside this script

if __name__ == "__main__":
    sys.exit(compare.main())
