#!/usr/bin/env bash
# The main job: installs missing packages, builds fqat-shell in release mode and runs
# examples/quickstart.fqs on the built-in style-shift benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product fqat-shell >&2
exec .build/release/fqat-shell examples/quickstart.fqs "$@"
