"""paths - where things lie in the source tree, from this package's own location
(plots/mproc_results/): the plots directory (gnuplot scripts, registry.py, plot.py), the
bench directory (the driver, bench/python/mp_bench.py) and the tree's root (meson.build)."""

import os

PKG = os.path.dirname(os.path.abspath(__file__))
PLOTS = os.path.dirname(PKG)
ROOT = os.path.dirname(PLOTS)
BENCH = os.path.join(ROOT, "bench")


def env_with_package(env=None):
    """A copy of env (default os.environ) whose PYTHONPATH starts with the directory holding
    this package, for a child run as `python3 -m mproc_results.<tool>`."""
    env = dict(os.environ if env is None else env)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = PLOTS + (os.pathsep + old if old else "")
    return env
