#!/usr/bin/env bash
# Quick start, step 2: install test prerequisites, build, run every test, and end with
#   N passed, N failed, N skipped
# Exit code is non-zero on any failure. `./test.sh --long` also runs the long soak and chaos tests.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
. scripts/lib.sh

# Stops the run before any test ran, keeping the last line in the usual form.
fail_run() { printf 'error: %s\n' "$*" >&2; echo "0 passed, 1 failed, 0 skipped"; exit 1; }

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
# The verifiers in tests/interop need what their packages declare: @noble/* 2.x ask for Node >= 20.19.0.
NODE_MIN=20.19.0
node_version=$(node -e 'process.stdout.write(process.versions.node)' 2>/dev/null) || fail_run "node does not run"
if [ "$(printf '%s\n%s\n' "$NODE_MIN" "$node_version" | sort -V | head -1)" != "$NODE_MIN" ]; then
  fail_run "Node $node_version is too old for tests/interop (need >= $NODE_MIN, as @noble/curves and @noble/hashes declare)"
fi
# Test prerequisites: a real SoftHSM2 token and a real PostgreSQL server.
apt_install softhsm2 postgresql

log "installing the interop verifiers (tests/interop)"
(cd tests/interop && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || fail_run "npm ci in tests/interop failed"

# Services the tests use. Each script prints the environment variables the tests read.
# A failing script stops the run with its name (its output is evaluated only when it succeeded).
for svc in scripts/test-services/*.sh; do
  [ -e "$svc" ] || continue
  name=$(basename "$svc" .sh)
  log "starting $name"
  svc_env=$(bash "$svc")
  svc_rc=$?
  [ $svc_rc -eq 0 ] || fail_run "test service '$name' ($svc) failed to start (exit $svc_rc); see its messages above"
  eval "$svc_env" || fail_run "test service '$name' ($svc) printed environment that does not evaluate"
done

export CONCLAVE_LONG_TESTS=$LONG
# Random test data derives from one seed per run (tests/Conclave.Testing/TestSeed.cs): printed here, so a failure can be
# replayed with CONCLAVE_TEST_SEED=<seed> ./test.sh (or the same variable on a single dotnet test).
if [ -z "${CONCLAVE_TEST_SEED:-}" ]; then
  CONCLAVE_TEST_SEED=$(od -An -N6 -tu8 /dev/urandom | tr -d ' ')
fi
export CONCLAVE_TEST_SEED
log "random test data seed: CONCLAVE_TEST_SEED=$CONCLAVE_TEST_SEED"
RESULTS=TestResults
rm -rf "$RESULTS"

log "building (Release)"
if ! dotnet build Conclave.slnx -c Release -v quiet --nologo -clp:ErrorsOnly; then
  fail_run "build failed"
fi

log "running tests"
# JIT policy for this run's processes (test hosts, and the signer nodes, CLI runs and crash children they start): most
# live seconds, so the tiered-PGO pass (instrumented code, then a second rejit) and early tier-up cost more CPU than they
# return; measured, node-process test classes use ~25 % less CPU with these (docs/PERFORMANCE.md, "The test suite's
# time 2"). The product keeps the runtime's defaults, which suit long-running servers. Behaviour is the same either way.
export DOTNET_TieredPGO=0 DOTNET_TC_CallCountThreshold=500
# --blame-hang-timeout: a test that hangs is named and its test host stopped after 5 minutes, instead of eating the budget.
dotnet test Conclave.slnx -c Release --no-build --nologo -v quiet \
  --blame-hang-timeout 5m --blame-hang-dump-type none \
  --logger "trx" --logger "console;verbosity=minimal" --results-directory "$RESULTS"
rc=$?

# Every test project must report, with at least the number of tests it had when this table was last raised; a project
# that discovers no tests (or whose results vanish) fails the run. New projects need at least one test.
declare -A MIN_TESTS=(
  [conclave.chains.tests]=30 [conclave.cli.tests]=27 [conclave.crypto.tests]=66 [conclave.hsm.tests]=49
  [conclave.node.tests]=32 [conclave.policy.tests]=386 [conclave.postquantum.tests]=28 [conclave.server.tests]=42 [conclave.storage.tests]=70
  [conclave.threshold.tests]=87 [conclave.wallets.tests]=125
)
declare -A PROJECT_TOTAL=()

passed=0; failed=0; skipped=0
for trx in "$RESULTS"/*.trx; do
  [ -e "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(printf '%s' "$counters" | sed -n 's/.* passed="\([0-9]*\)".*/\1/p')
  f=$(printf '%s' "$counters" | sed -n 's/.* failed="\([0-9]*\)".*/\1/p')
  e=$(printf '%s' "$counters" | sed -n 's/.* error="\([0-9]*\)".*/\1/p')
  t=$(printf '%s' "$counters" | sed -n 's/.* total="\([0-9]*\)".*/\1/p')
  x=$(printf '%s' "$counters" | sed -n 's/.* executed="\([0-9]*\)".*/\1/p')
  project=$(grep -o 'storage="[^"]*"' "$trx" | head -1 | sed 's#.*/##; s#\.dll"$##' | tr '[:upper:]' '[:lower:]')
  if [ -n "$project" ]; then
    PROJECT_TOTAL[$project]=$(( ${PROJECT_TOTAL[$project]:-0} + ${t:-0} ))
  fi
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0}))
  skipped=$((skipped + ${t:-0} - ${x:-0}))
done

for csproj in tests/*.Tests/*.Tests.csproj; do
  project=$(basename "$csproj" .csproj | tr '[:upper:]' '[:lower:]')
  min=${MIN_TESTS[$project]:-1}
  got=${PROJECT_TOTAL[$project]:-0}
  if [ "$got" -lt "$min" ]; then
    echo "$(basename "$csproj" .csproj): $got tests reported, expected at least $min (none discovered, a crash, or tests lost)"
    failed=$((failed + 1))
  fi
done

if [ $rc -ne 0 ] && [ $failed -eq 0 ]; then
  echo "the test run failed outside any test (exit $rc)"
  failed=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] && [ $rc -eq 0 ]
