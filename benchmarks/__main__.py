"""``python -m benchmarks``: the benchmark harness CLI (same as ``mtf-bench``)."""

from benchmarks.harness.cli import main

raise SystemExit(main())
