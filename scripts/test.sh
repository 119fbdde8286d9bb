#!/usr/bin/env bash
# Runs the whole test suite: installs missing packages, builds, runs every XCTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests "$@"
# Smoke run of the benchmark (speed targets live there, not in the tests): it must run and report.
.build/debug/fqat-bench --quick --threads 1 --only sgemm,erm,fqat > /dev/null
swift test --skip-build "$@"
