#!/usr/bin/env bash
# Quick start, step 1: install what is missing, build Release, run `conclave` with the given arguments.
# With no arguments it runs Conclave's main job.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
. scripts/lib.sh

ensure_runtime
ensure_dotnet

log "building Conclave (Release)"
dotnet build src/Conclave.Cli/Conclave.Cli.csproj -c Release -v quiet --nologo -clp:ErrorsOnly -o artifacts/cli >&2 \
  || die "build failed"

if [ $# -eq 0 ]; then
  # The main job: a local cluster (signer nodes + server) on loopback, data in ./.data. Ctrl-C stops it.
  set -- up
fi
exec dotnet artifacts/cli/conclave.dll "$@"
