#!/usr/bin/env bash
# Checks the local EVM chain used by the venue tests (anvil, npm @foundry-rs/anvil, installed by npm ci in tests/interop)
# and prints
#   export CONCLAVE_TEST_ANVIL='/abs/path/to/anvil'
# It starts no chain: each test class that needs one starts its own anvil on a free port (fresh state, chain id 31337)
# and stops it when done (tests/Conclave.Server.Tests/Venue/AnvilChain.cs), so tests never share nonces or balances.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${CONCLAVE_TEST_ANVIL:-$ROOT/tests/interop/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil}"
[ -x "$BIN" ] || { echo "anvil.sh: anvil not found at $BIN (run: cd tests/interop && npm ci; it comes with @foundry-rs/anvil's optional dependency for linux-x64)" >&2; exit 1; }
VERSION="$("$BIN" --version 2>/dev/null | head -1)" || { echo "anvil.sh: $BIN does not run" >&2; exit 1; }
case "$VERSION" in
  *1.7.*) ;;
  *) echo "anvil.sh: $BIN reports '$VERSION', expected 1.7.x" >&2; exit 1 ;;
esac
echo "export CONCLAVE_TEST_ANVIL='$BIN'"
