#!/usr/bin/env bash
# The test command: set-up (engines, .venv), lint and type checks, then the core
# tests and the contract suite on the engines in ENGINEKIT_TEST_ENGINES
# (default: docker,podman,lxc).
# Extra arguments go to pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/bootstrap.sh
VPY="$ROOT/.venv/bin/python"
export ENGINEKIT_TEST_ENGINES=${ENGINEKIT_TEST_ENGINES:-docker,podman,lxc}
echo "[test] ruff" >&2
"$VPY" -m ruff check enginekit adapters tests
echo "[test] mypy" >&2
"$VPY" -m mypy --strict enginekit $(for a in adapters/*/; do [ -d "$a" ] && ls -d "$a"enginekit_* ; done)
echo "[test] pytest on engines: $ENGINEKIT_TEST_ENGINES" >&2
# Each chosen engine's adapter tests too, in their own pytest run (their
# test_contract.py is the same suite as tests/test_contract.py, run once below).
status=0
IFS=',' read -ra chosen <<<"$ENGINEKIT_TEST_ENGINES"
for e in "${chosen[@]}"; do
  e=${e%%+*}; e=${e%%:*}
  if [ -d "adapters/$e/tests" ]; then
    echo "[test] adapters/$e/tests" >&2
    "$VPY" -m pytest -q -p no:cacheprovider --ignore="adapters/$e/tests/test_contract.py" \
      "adapters/$e/tests" || status=1
  fi
done
echo "[test] core tests and the contract suite" >&2
"$VPY" -m pytest -q -p no:cacheprovider tests "$@" || status=1
exit $status
