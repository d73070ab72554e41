"""``python -m mtf_bench``: the benchmark harness CLI (same as ``mtf-bench``)."""

from mtf_bench.harness.cli import main

raise SystemExit(main())
