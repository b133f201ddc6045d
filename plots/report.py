#!/usr/bin/env python3
"""report - report.md, targets.md, answers.json and index.html of one mproc run
(plots/mproc_results/report.py); `make plots` and the driver run it.

    plots/report.py RUN_DIR [--stdout]
    plots/report.py --reference-index results/reference [--stdout]

Exit: 0 written; 1 cannot write; 2 bad usage, not a run directory (one line).
"""

import sys

from mproc_results import report    # plots/mproc_results/, beside this script

if __name__ == "__main__":
    sys.exit(report.main())
