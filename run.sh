#!/usr/bin/env bash
# Quick start, step 1: install what is missing, build Release, run `conclave` with the given arguments.
# With no arguments it runs Conclave's main job. The build is skipped when nothing under src/ changed since the
# last one, and its output goes to artifacts/build.log (shown only if the build fails). Afterwards ./conclave runs
# the built CLI directly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
. scripts/lib.sh

ensure_runtime
ensure_dotnet

dll=artifacts/cli/conclave.dll
if [ ! -f "$dll" ] || [ -n "$(find src Directory.Build.props Directory.Packages.props \( -name obj -o -name bin \) -prune -o \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' \) -newer "$dll" -print -quit 2>/dev/null)" ]; then
  log "building Conclave (Release)"
  mkdir -p artifacts
  if ! dotnet build src/Conclave.Cli/Conclave.Cli.csproj -c Release -v quiet --nologo -tl:off -clp:ErrorsOnly -o artifacts/cli >artifacts/build.log 2>&1; then
    grep -E 'error|Error' artifacts/build.log | sort -u | head -40 >&2 || tail -40 artifacts/build.log >&2
    die "build failed (full output in artifacts/build.log)"
  fi
  touch "$dll"
fi

if [ "${CONCLAVE_BUILD_ONLY:-}" = 1 ]; then
  exit 0
fi

if [ $# -eq 0 ]; then
  # The main job: a local cluster (signer nodes + server) on loopback, data in ./.data. Ctrl-C stops it.
  set -- up
fi
exec dotnet "$dll" "$@"
