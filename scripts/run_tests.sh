#!/usr/bin/env bash
# Set up from nothing (if needed) and run the default test suite (slow tests excluded: `pytest -m slow` runs them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/python -m pytest -m "not slow" "$@"
