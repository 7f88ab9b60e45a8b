#!/usr/bin/env bash
# Sets up everything on a fresh machine (run as root): the engines (installed and
# started), a virtualenv in .venv with enginekit, its adapters and the dev tools.
# Idempotent. Prints nothing but progress; sourced by demo.sh and test.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/setup-engines.sh"
PY=${PYTHON:-python3}
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  echo "[setup] creating .venv" >&2
  "$PY" -m venv "$ROOT/.venv"
fi
VPY="$ROOT/.venv/bin/python"
adapters=()
for a in docker podman lxc; do
  [ -f "$ROOT/adapters/$a/pyproject.toml" ] && adapters+=(-e "$ROOT/adapters/$a")
done
echo "[setup] installing enginekit and adapters into .venv" >&2
"$VPY" -m pip install -q --disable-pip-version-check -e "$ROOT[dev]" "${adapters[@]}"
