"""The benchmark harness: presets, the job grid, executors, evaluation-driven reports (``mtf-bench``).

``benchmarks.harness.cli`` is the command line; ``runner.run_preset`` the programmatic entry point. Policy
evaluation itself lives in :mod:`mtf_gym.evaluation`, metrics in :mod:`mtf_gym.metrics`.
"""
