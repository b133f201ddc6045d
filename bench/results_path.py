"""results_path - the one place a command outside plots/ finds the results package
(plots/mproc_results/): bench/mproc-bench and bench/mproc-recommend `import results_path`
first (their own directory is on sys.path, so this module is found as they are). Scripts in
plots/ need nothing (the package lies beside them); tests get PYTHONPATH from meson
(`results_env` in the top-level meson.build). A relocated install changes PLOTS here only.

    import results_path                          # noqa: F401  (before mproc_results)
    from mproc_results import gbjson
"""

import os
import sys

PLOTS = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "plots")
if PLOTS not in sys.path:
    sys.path.insert(0, PLOTS)
