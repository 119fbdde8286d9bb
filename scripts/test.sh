#!/usr/bin/env bash
# Runs the whole test suite: installs missing packages, builds, runs every XCTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests "$@"
swift test --skip-build "$@"
