#!/usr/bin/env bash
# The test command: set-up (engines, .venv), lint and type checks, then the core
# tests and the contract suite on the engines in ENGINEKIT_TEST_ENGINES
# (default: docker,podman,lxc).
# Extra arguments go to pytest.
# ENGINEKIT_SKIP_SETUP=1 skips the set-up (engines and .venv made by someone else,
# e.g. scripts/testhost.sh inside the test host); ENGINEKIT_SKIP_LINT=1 skips ruff and mypy.
# The suite's fault scenarios kill -9 and restart those engines' daemons (scripts/faults.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ "${ENGINEKIT_SKIP_SETUP:-0}" != 1 ]; then
  bash scripts/bootstrap.sh
fi
VPY="$ROOT/.venv/bin/python"
export ENGINEKIT_TEST_ENGINES=${ENGINEKIT_TEST_ENGINES:-docker,podman,lxc}
# The fault scenarios kill and restart the engines' daemons through this program
# (the engines this set-up started; ENGINEKIT_TEST_FAULTS= turns them off).
export ENGINEKIT_TEST_FAULTS=${ENGINEKIT_TEST_FAULTS-$ROOT/scripts/faults.sh}
if [ "${ENGINEKIT_SKIP_LINT:-0}" != 1 ]; then
  echo "[test] ruff" >&2
  "$VPY" -m ruff check enginekit adapters tests
  echo "[test] mypy" >&2
  "$VPY" -m mypy --strict enginekit $(for a in adapters/*/; do [ -d "$a" ] && ls -d "$a"enginekit_* ; done)
fi
echo "[test] pytest on engines: $ENGINEKIT_TEST_ENGINES" >&2
# Each chosen engine's adapter tests too, in their own pytest run (their
# test_contract.py is the same suite as tests/test_contract.py, run once below).
# ENGINEKIT_TEST_PARTS (comma-separated; default adapters,tests) chooses what runs:
# `adapters` (each engine's adapter tests), `tests` (the core tests and the
# contract suite, fault scenarios included), `faults` (the fault scenarios alone).
parts=",${ENGINEKIT_TEST_PARTS:-adapters,tests},"
status=0
IFS=',' read -ra chosen <<<"$ENGINEKIT_TEST_ENGINES"
[[ $parts == *,adapters,* ]] || chosen=()
for choice in "${chosen[@]}"; do
  e=${choice%%+*}; e=${e%%:*}
  # An engine given as a URL (docker+unix:///run/x.sock): its adapter's tests
  # talk to that address.
  where=()
  case "$choice" in
    docker+*) where=(env "DOCKER_HOST=${choice#docker+}") ;;
    podman+*) where=(env "ENGINEKIT_PODMAN_URL=${choice#podman+}") ;;
  esac
  if [ -d "adapters/$e/tests" ]; then
    echo "[test] adapters/$e/tests${where:+ (${where[*]:1})}" >&2
    "${where[@]}" "$VPY" -m pytest -q -p no:cacheprovider --ignore="adapters/$e/tests/test_contract.py" \
      "adapters/$e/tests" || status=1
  fi
done
if [[ $parts == *,faults,* ]]; then
  echo "[test] the contract suite's fault scenarios" >&2
  "$VPY" -m pytest -q -p no:cacheprovider -m faults tests/test_contract.py "$@" || status=1
fi
if [[ $parts == *,tests,* ]]; then
  echo "[test] core tests and the contract suite" >&2
  "$VPY" -m pytest -q -p no:cacheprovider tests "$@" || status=1
fi
exit $status
