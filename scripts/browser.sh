#!/usr/bin/env bash
# Headless Chromium for the HTML timeline's browser test, from Debian's
# packages (no browser is downloaded from anywhere else).
#
#   scripts/browser.sh install
#       Installs `chromium` (and `fonts-liberation`, so text renders with real
#       metrics) when the browser is missing: as root through apt-get, without
#       recommended packages; otherwise it names the packages and fails.
#       Returns at once when Chromium is already installed.
#   scripts/browser.sh path
#       Prints the Chromium binary on stdout, or fails naming the command that
#       installs it. $CHROMIUM, when set, names the binary to use instead.
set -euo pipefail

PACKAGES=(chromium fonts-liberation)

log() { echo "browser: $*" >&2; }
die() { log "$*"; exit 1; }

find_chromium() {
  if [[ -n ${CHROMIUM:-} ]]; then
    [[ -x $CHROMIUM ]] || command -v "$CHROMIUM" >/dev/null || return 1
    command -v "$CHROMIUM"
    return 0
  fi
  command -v chromium || command -v chromium-browser
}

install() {
  if bin=$(find_chromium); then
    log "chromium is installed ($bin)"
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    die "missing Debian packages: ${PACKAGES[*]} (run as root: scripts/browser.sh install, or apt-get install ${PACKAGES[*]})"
  fi
  log "installing ${PACKAGES[*]}"
  # Another apt-get may hold the lock (e.g. scripts/test-db.sh): wait for it.
  local apt=(apt-get -o DPkg::Lock::Timeout=600)
  { "${apt[@]}" update -qq \
    && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends "${PACKAGES[@]}"; } >&2
  bin=$(find_chromium) || die "chromium is still missing after apt-get install"
  log "installed $("$bin" --version 2>/dev/null || echo "$bin")"
}

path() {
  find_chromium || die "Chromium is not installed: run scripts/browser.sh install (as root), or set CHROMIUM to a Chromium binary"
}

case ${1:-} in
  install) install ;;
  path) path ;;
  *) die "usage: $0 install | path" ;;
esac
