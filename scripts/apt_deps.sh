#!/usr/bin/env bash
# Install the Debian packages listed in requirements/apt.txt that are missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
missing=()
for pkg in $(grep -v '^#' "$ROOT/requirements/apt.txt"); do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "[apt] installing: ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
