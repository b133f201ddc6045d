"""mproc_results - the reading side of mproc's benchmark suite: every Python program that reads
a run directory reads it through this package, and only through it.

Modules:
  gbjson      run loading: Google Benchmark JSON (harness files, python.json) and the side
              files (context, topology, noise, decide, recommendation, crosscheck, answers):
              load_run(dir), read_side(dir, name)
  fields      field metadata (unit, higher-is-better, unstable CV) and the formatters
  doc         the document model report.md and index.html are both rendered from; Markdown
              table helpers
  files       atomic writes (write_text, write_json)
  stats       95 % intervals of medians and ratios, verdicts
  tsv         the plots' data tables (plots/registry.py names the plots)
  cli, version  one way to fail (one line, exit 2) and --version from meson.build
  report      report.md, targets.md, answers.json, index.html of a run
  compare     compare.md and index.html across runs
  recommend   pool sizes (recommendation.json; bench/mproc-recommend is its command)
  decide, verify, crosscheck, noise   the driver's steps (bench/mproc-bench runs them)

How a program finds it (the one mechanism): the package lives in plots/, so plots/plot.py,
plots/report.py and plots/compare.py import it as it is (Python puts a script's own
directory first on sys.path); bench/mproc-bench and bench/mproc-recommend import
bench/results_path.py first, the one place that adds plots/ to sys.path; the driver runs the
package's tools as `python3 -m mproc_results.<tool>` with PYTHONPATH set to plots/
(paths.env_with_package), and meson's tests get the same PYTHONPATH from the top-level
meson.build (`results_env`). Stdlib only; Python >= 3.8.
"""
