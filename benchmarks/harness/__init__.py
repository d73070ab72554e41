"""The benchmark harness: presets, the job grid, executors, evaluation-driven reports (``mtf-bench``).

``mtf_bench.harness.cli`` is the command line; ``runner.run_preset`` the programmatic entry point. A run goes
presets -> grid (the jobs) -> runner (scheduling, resume) -> jobs (collect, tune, train + evaluate: curves, FQE via
``ope``, saturation) -> report, itself in stages: ``results`` (loading) -> ``aggregate`` (lifts, ``stats``: rliable
statistics; ``curves``: convergence) -> ``claims`` (one rule per claim) -> ``figures`` / ``render`` (plots, tables,
markdown). Policy evaluation itself lives in :mod:`mtf_gym.evaluation`, metrics in :mod:`mtf_gym.metrics`.
"""
