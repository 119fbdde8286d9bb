#!/usr/bin/env bash
# Runs the whole test suite: installs missing packages, builds, runs every XCTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The Slurm sweep test starts its own one-node cluster as root (CI runs as root): install Slurm and
# munge there. Elsewhere that test is skipped with the reason printed.
if [ "$(id -u)" -eq 0 ]; then scripts/slurm-cluster.sh install; fi
swift build --build-tests "$@"
# Smoke run of the benchmark (speed targets live there, not in the tests): it must run and report.
.build/debug/fqat-bench --quick --threads 1 --only sgemm,erm,fqat > /dev/null
# The checkpoint converter's tests and the ONNX Runtime checks of `export onnx` (a venv of the project's own).
scripts/python_checks.sh
# A watchdog: a hung test fails the run with a message instead of stalling CI until its limit.
# stdbuf keeps XCTest's output line-buffered, so a log shows the last test that started.
limit="${FQAT_TEST_TIMEOUT:-2400}"
status=0
timeout --kill-after=30 "$limit" stdbuf -oL -eL swift test --skip-build "$@" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "scripts/test.sh: the tests did not finish within ${limit} s; the last test started above hung" >&2
fi
exit "$status"
