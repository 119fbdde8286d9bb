#!/usr/bin/env bash
# Installs the Debian packages fqat-shell needs, only when one is missing, then returns.
# Used by scripts/quickstart.sh, scripts/test.sh and .ci/run, so a fresh machine with only Swift works.
set -euo pipefail

PACKAGES=(libopenblas-dev libdnnl-dev libedit-dev zlib1g-dev libstb-dev gnuplot-nox dataset-fashion-mnist tmux)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
            echo "setup: need root (or sudo) to apt-get install: ${missing[*]}" >&2; exit 1; fi
    fi
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
