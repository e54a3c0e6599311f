#!/usr/bin/env bash
# Installs what openims needs from Debian when it is missing: qemu-img (qemu-utils).
set -euo pipefail
if command -v qemu-img >/dev/null 2>&1; then
  exit 0
fi
echo "openims: qemu-img is missing; installing Debian's qemu-utils" >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "openims: cannot install qemu-utils (not root and no sudo). Install it: apt-get install qemu-utils" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "openims: no apt-get here; install qemu-img (package qemu-utils or qemu-img) with your package manager" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends qemu-utils >/dev/null 2>&1 || {
  $SUDO apt-get update >/dev/null && $SUDO apt-get install -y --no-install-recommends qemu-utils >/dev/null
}
command -v qemu-img >/dev/null || { echo "openims: qemu-utils installation failed" >&2; exit 1; }
