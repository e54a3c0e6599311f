#!/usr/bin/env bash
# Installs what openims needs from Debian when it is missing: qemu-img (qemu-utils) by default,
# or the packages named as arguments (e.g. `wrk` for the API benchmark, `chromium` for the console tests).
set -euo pipefail
PACKAGES=("$@")
if [ ${#PACKAGES[@]} -eq 0 ]; then
  command -v qemu-img >/dev/null 2>&1 && exit 0
  PACKAGES=(qemu-utils)
fi
echo "openims: installing Debian packages: ${PACKAGES[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "openims: cannot install ${PACKAGES[*]} (not root and no sudo): apt-get install ${PACKAGES[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "openims: no apt-get here; install ${PACKAGES[*]} with your package manager" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends "${PACKAGES[@]}" >/dev/null 2>&1 || {
  $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends "${PACKAGES[@]}" >/dev/null
}
