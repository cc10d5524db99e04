#!/usr/bin/env bash
# The system programs the test suite drives for real: Debian's headless Chromium and its driver
# (dashboard browser test) and the mosquitto MQTT broker (live-monitoring alerts).
# Installs the missing ones with apt-get when this user may (root, or sudo without a password);
# otherwise stops with one line naming what to install. `make test` and `.ci/run` both call it.
#   scripts/system-deps.sh           install what is missing
#   scripts/system-deps.sh --check   only say what is missing (exit status 1 if anything is)
# The paths looked at can be overridden: CHROMIUM, CHROMEDRIVER, MOSQUITTO.
set -euo pipefail

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto || echo /usr/sbin/mosquitto)}

missing() {
  local pkgs=()
  [ -x "$CHROMIUM" ] || pkgs+=(chromium)
  [ -x "$CHROMEDRIVER" ] || pkgs+=(chromium-driver)
  [ -x "$MOSQUITTO" ] || pkgs+=(mosquitto)
  echo "${pkgs[@]}"
}

need=$(missing)
[ -z "$need" ] && exit 0
hint="missing system packages for the tests: $need (install them: sudo apt-get install -y $need)"
if [ "${1:-}" = "--check" ]; then
  echo "$hint" >&2
  exit 1
fi

if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
  as_root=(sudo -n)
else
  echo "$hint" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$hint; no apt-get on this machine: install them with its package manager" >&2
  exit 1
fi

echo "installing $need (Debian packages the tests use)" >&2
# shellcheck disable=SC2086 # one word per package
install() { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need; }
# package lists are often empty on a fresh machine: update them only when the install needs it
install >/dev/null 2>&1 || { "${as_root[@]}" apt-get update -qq >/dev/null && install >/dev/null; } || {
  echo "could not install $need with apt-get (see above); $hint" >&2
  exit 1
}
still=$(missing)
if [ -n "$still" ]; then
  echo "apt-get ran but these are still missing: $still ($CHROMIUM, $CHROMEDRIVER, $MOSQUITTO expected)" >&2
  exit 1
fi
