#!/usr/bin/env bash
# Set up from nothing (if needed) and run the default benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/python -m mtf_bench quick "$@"
