#!/usr/bin/env bash
# The main job: set-up (engines installed and started, .venv), then the same
# program on every reachable engine, side by side.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/bootstrap.sh
exec "$ROOT/.venv/bin/python" examples/demo.py "$@"
