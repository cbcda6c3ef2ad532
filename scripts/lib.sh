# Shared by run.sh and test.sh: install what is missing, through the system package manager.
# Sourced, not executed.

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

_apt_updated=0
apt_install() {
  # apt_install PKG... : installs the Debian/Ubuntu packages that are not installed yet.
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "missing packages: ${missing[*]}; this script knows apt-get only (see README.md for other systems)"
  log "installing ${missing[*]}"
  if [ $_apt_updated -eq 0 ]; then
    $SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

ensure_runtime() {
  # Native libraries Conclave loads at run time. libsodium ships inside its NuGet package.
  apt_install libsecp256k1-1 ca-certificates
  # ICU: BIP-39 needs Unicode NFKD, which .NET performs only with ICU (docs/WALLETS.md). The package name
  # carries the ICU version (libicu72 on Debian 12, libicu74 on Ubuntu 24.04).
  if ! ldconfig -p 2>/dev/null | grep -q 'libicuuc\.so'; then
    [ $_apt_updated -eq 1 ] || { $SUDO apt-get update -qq >/dev/null; _apt_updated=1; }
    local icu
    icu=$(apt-cache search --names-only '^libicu[0-9]+$' 2>/dev/null | awk '{print $1}' | sort -V | tail -1)
    [ -n "$icu" ] && apt_install "$icu"
  fi
}

ensure_dotnet() {
  if ! command -v dotnet >/dev/null 2>&1; then
    apt_install dotnet-sdk-10.0 2>/dev/null || true
  fi
  command -v dotnet >/dev/null 2>&1 || die "the .NET 10 SDK is required: install it (https://learn.microsoft.com/dotnet/core/install/linux) and rerun"
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
}

ensure_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
}
