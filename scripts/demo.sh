#!/usr/bin/env bash
# The main job: set-up (engines installed and started, .venv), then the same
# container on every reachable engine, side by side (`enginekit compare`).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/bootstrap.sh
# The same container on every reachable engine (or the engines named as arguments),
# side by side: `enginekit compare` exits 0 when all agree, 1 when they differ.
engines=()
for name in "$@"; do engines+=(--engine "$name"); done
cp -f "$(command -v busybox || echo /bin/busybox)" examples/hello/busybox
# First the lifecycle (build, run, pause, exec, stop, inspect) on each engine...
"$ROOT/.venv/bin/python" examples/demo.py "$@"
echo
# ...then one container on every engine, compared field by field.
exec "$ROOT/.venv/bin/enginekit" compare "${engines[@]}" --build examples/hello -- enginekit-hello:demo
