#!/usr/bin/env bash
# Quick start, step 2: install test prerequisites, build, run every test, and end with
#   N passed, N failed[, N skipped]
# Exit code is non-zero on any failure. `./test.sh --long` also runs the long soak and chaos tests.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
. scripts/lib.sh

LONG=0
for arg in "$@"; do
  case "$arg" in
    --long) LONG=1 ;;
    *) die "unknown argument $arg (expected --long)" ;;
  esac
done

ensure_runtime
ensure_dotnet
ensure_node
# Test prerequisites: a real SoftHSM2 token and a real PostgreSQL server.
apt_install softhsm2 postgresql

log "installing the interop verifiers (tests/interop)"
(cd tests/interop && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci in tests/interop failed"

# Services the tests use. Each script prints the environment variables the tests read.
for svc in scripts/test-services/*.sh; do
  [ -e "$svc" ] || continue
  log "starting $(basename "$svc" .sh)"
  eval "$(bash "$svc")" || die "$(basename "$svc") failed to start"
done

export CONCLAVE_LONG_TESTS=$LONG
RESULTS=TestResults
rm -rf "$RESULTS"

log "building (Release)"
if ! dotnet build Conclave.slnx -c Release -v quiet --nologo -clp:ErrorsOnly; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

log "running tests"
dotnet test Conclave.slnx -c Release --no-build --nologo -v quiet \
  --logger "trx" --logger "console;verbosity=minimal" --results-directory "$RESULTS"
rc=$?

passed=0; failed=0; skipped=0
for trx in "$RESULTS"/*.trx; do
  [ -e "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(printf '%s' "$counters" | sed -n 's/.* passed="\([0-9]*\)".*/\1/p')
  f=$(printf '%s' "$counters" | sed -n 's/.* failed="\([0-9]*\)".*/\1/p')
  e=$(printf '%s' "$counters" | sed -n 's/.* error="\([0-9]*\)".*/\1/p')
  t=$(printf '%s' "$counters" | sed -n 's/.* total="\([0-9]*\)".*/\1/p')
  x=$(printf '%s' "$counters" | sed -n 's/.* executed="\([0-9]*\)".*/\1/p')
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0}))
  skipped=$((skipped + ${t:-0} - ${x:-0}))
done

if [ $rc -ne 0 ] && [ $failed -eq 0 ]; then
  echo "the test run failed outside any test (exit $rc)"
  failed=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] && [ $rc -eq 0 ]
