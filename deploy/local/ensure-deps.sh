#!/usr/bin/env bash
# Installs what is missing on a fresh Debian machine, and nothing that is already there:
#   - OS packages from Debian: ffmpeg (ffmpeg + ffprobe), nats-server, chromium (the browser tests drive it
#     with playwright-core; Playwright's own browser downloads are not used), coturn (the call tests start its
#     `turnserver` on 127.0.0.1 to check the TURN credentials the edge mints; its own system service is kept off)
#   - npm packages, including the `node` package that ships the Node 22 binary the project runs on
#     (the system Node may be older; npm scripts put node_modules/.bin first on PATH).
# Nothing is downloaded from anywhere but the Debian and npm registries.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
# CHROMIUM_PATH points the browser tests at another Chromium; otherwise Debian's package is needed.
if [ -z "${CHROMIUM_PATH:-}" ] && ! command -v chromium >/dev/null 2>&1; then missing+=(chromium); fi
command -v turnserver >/dev/null 2>&1 || missing+=(coturn)
# Debian's nodejs package does not bring npm; npm then installs the project's own Node 22.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "[ensure-deps] installing OS packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "[ensure-deps] these Debian packages are missing and this user is not root and has no sudo: ${missing[*]}" >&2
      echo "[ensure-deps] install them as root (apt-get install ${missing[*]}), then run this again" >&2
      exit 1
    fi
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # shellcheck disable=SC2046
  $sudo apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
  # The package enables a TURN server on every interface; the tests start their own on loopback instead.
  if printf '%s\n' "${missing[@]}" | grep -qx coturn && command -v systemctl >/dev/null 2>&1 && systemctl is-enabled coturn >/dev/null 2>&1; then
    echo "[ensure-deps] coturn: disabling the system service the package enabled (only the tests run turnserver, on 127.0.0.1)"
    $sudo systemctl disable --now coturn >/dev/null 2>&1 || true
  fi
fi

# npm install when node_modules is missing or older than package.json / the lockfile.
stamp=node_modules/.package-lock.json
if [ ! -x node_modules/.bin/node ] || [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || { [ -f package-lock.json ] && [ package-lock.json -nt "$stamp" ]; }; then
  echo "[ensure-deps] npm install"
  # `npm install` honours the lockfile and, unlike `npm ci`, does not fail when a registry lacks another
  # platform's optional package (workerd ships one per OS). Engine warnings come from running this one step under the system Node.
  npm install --no-audit --no-fund --loglevel=error
fi
