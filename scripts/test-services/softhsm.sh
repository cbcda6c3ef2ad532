#!/usr/bin/env bash
# Test service: a SoftHSM2 token for the Conclave.Hsm tests and benchmarks.
# Idempotent: creates (once) a SoftHSM2 configuration and token directory under $CONCLAVE_SOFTHSM_DIR
# (default /tmp/conclave-softhsm), initialises a token labelled conclave-test with a random user PIN
# written to a 0600 file, and prints the `export VAR=...` lines the tests read:
#   SOFTHSM2_CONF, CONCLAVE_TEST_HSM_MODULE, CONCLAVE_TEST_HSM_TOKEN, CONCLAVE_TEST_HSM_PIN_FILE
# Use: eval "$(bash scripts/test-services/softhsm.sh)"
# The PINs are test-only values; nothing here is meant for a real HSM.
set -euo pipefail

err() { printf 'softhsm.sh: %s\n' "$*" >&2; }

DIR="${CONCLAVE_SOFTHSM_DIR:-/tmp/conclave-softhsm}"
LABEL="conclave-test"

MODULE=""
for candidate in "${CONCLAVE_SOFTHSM_MODULE:-}" /usr/lib/softhsm/libsofthsm2.so \
    /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/local/lib/softhsm/libsofthsm2.so; do
  if [ -n "$candidate" ] && [ -f "$candidate" ]; then MODULE="$candidate"; break; fi
done
[ -n "$MODULE" ] || { err "libsofthsm2.so not found: install SoftHSM2 (apt-get install softhsm2)"; exit 1; }
command -v softhsm2-util >/dev/null 2>&1 || { err "softhsm2-util not found: install SoftHSM2 (apt-get install softhsm2)"; exit 1; }

umask 077
mkdir -p "$DIR/tokens"
chmod 700 "$DIR" "$DIR/tokens"
CONF="$DIR/softhsm2.conf"
if [ ! -f "$CONF" ]; then
  cat >"$CONF" <<CONFEOF
directories.tokendir = $DIR/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
slots.mechanisms = ALL
library.reset_on_fork = false
CONFEOF
fi
export SOFTHSM2_CONF="$CONF"

PIN_FILE="$DIR/user.pin"
SO_PIN_FILE="$DIR/so.pin"
random_pin() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }

if ! softhsm2-util --show-slots 2>/dev/null | grep -Eq "^[[:space:]]*Label:[[:space:]]+$LABEL[[:space:]]*$"; then
  random_pin >"$PIN_FILE"
  random_pin >"$SO_PIN_FILE"
  chmod 600 "$PIN_FILE" "$SO_PIN_FILE"
  softhsm2-util --init-token --free --label "$LABEL" \
    --so-pin "$(cat "$SO_PIN_FILE")" --pin "$(cat "$PIN_FILE")" >/dev/null \
    || { err "softhsm2-util --init-token failed"; exit 1; }
  err "initialised SoftHSM2 token '$LABEL' in $DIR/tokens"
elif [ ! -s "$PIN_FILE" ]; then
  err "token '$LABEL' exists in $DIR/tokens but its PIN file $PIN_FILE is missing: remove $DIR and rerun"
  exit 1
fi
chmod 600 "$PIN_FILE"

# Tests create throw-away tokens labelled conclave-tmp-*; remove any a previous run left behind.
softhsm2-util --show-slots 2>/dev/null | sed -n 's/^[[:space:]]*Label:[[:space:]]*\(conclave-tmp-[^[:space:]]*\)[[:space:]]*$/\1/p' | sort -u |
  while read -r tmp; do softhsm2-util --delete-token --token "$tmp" >/dev/null 2>&1 || true; done

printf 'export SOFTHSM2_CONF=%q\n' "$CONF"
printf 'export CONCLAVE_TEST_HSM_MODULE=%q\n' "$MODULE"
printf 'export CONCLAVE_TEST_HSM_TOKEN=%q\n' "$LABEL"
printf 'export CONCLAVE_TEST_HSM_PIN_FILE=%q\n' "$PIN_FILE"
