#!/usr/bin/env bash
# Starts (idempotently) a throwaway PostgreSQL 15 server for the tests on 127.0.0.1:$PORT and prints
#   export CONCLAVE_TEST_POSTGRES='Host=127.0.0.1;Port=...;Username=...;Password=...;Database=postgres'
# Tests create and drop their own databases. Data lives under /tmp; stop with: pg_ctl -D "$DATA" stop
set -euo pipefail
PORT="${CONCLAVE_TEST_POSTGRES_PORT:-55432}"
PASSWORD="conclave-test"
USER_NAME="conclave_test"
BIN=""
for v in 17 16 15 14; do
  if [ -x "/usr/lib/postgresql/$v/bin/initdb" ]; then BIN="/usr/lib/postgresql/$v/bin"; break; fi
done
[ -n "$BIN" ] || { echo "postgres.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then
  OS_USER=postgres
  run() { runuser -u postgres -- "$@"; }
else
  OS_USER="$(id -un)"
  run() { "$@"; }
fi
DATA="${CONCLAVE_TEST_POSTGRES_DIR:-/tmp/pgdata-conclave-tests-$OS_USER-$PORT}"
LOGFILE="$DATA.log"

if run "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" 2>/dev/null && [ ! -s "$DATA/PG_VERSION" ]; then
  echo "postgres.sh: a server answers on port $PORT but $DATA is gone; stop it or set CONCLAVE_TEST_POSTGRES_PORT" >&2
  exit 1
fi
if ! run "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; then
  if [ ! -s "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"
    mkdir -p "$DATA"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$DATA"
    PWFILE="$(mktemp)"; printf '%s\n' "$PASSWORD" > "$PWFILE"; chmod 644 "$PWFILE"
    run "$BIN/initdb" -D "$DATA" -U "$USER_NAME" --pwfile="$PWFILE" -A scram-sha-256 -E UTF8 --no-locale >/dev/null
    rm -f "$PWFILE"
    {
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $PORT"
      echo "unix_socket_directories = '$DATA'"
      echo "max_connections = 200"
      echo "fsync = on"
      echo "synchronous_commit = on"
      echo "shared_buffers = 64MB"
    } >> "$DATA/postgresql.conf"
  fi
  touch "$LOGFILE"; [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$LOGFILE"
  run "$BIN/pg_ctl" -D "$DATA" -l "$LOGFILE" -w -t 60 start >/dev/null
fi
for _ in $(seq 1 60); do
  run "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
  sleep 0.5
done
run "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" || { echo "postgres.sh: server did not start; see $LOGFILE" >&2; exit 1; }
echo "export CONCLAVE_TEST_POSTGRES='Host=127.0.0.1;Port=$PORT;Username=$USER_NAME;Password=$PASSWORD;Database=postgres'"
