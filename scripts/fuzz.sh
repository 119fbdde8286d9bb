#!/usr/bin/env bash
# Fuzzes fqat-shell's input readers with libFuzzer (docs/reliability.md).
#   scripts/fuzz.sh [SECONDS] [HARNESS…]   each harness SECONDS long (default 60); default: all five
# Harnesses: language (lexer+parser+checker), safetensors, session, idx (IDX+gzip), image (PNG/JPEG/…).
# Builds .build-fuzz/ with -sanitize=fuzzer (SwiftPM; only the fqat-fuzz product links libFuzzer's main).
# Seeds are Tests/Fuzz/<harness>/ (read only); new coverage goes to .build-fuzz/corpus/<harness>/ and
# crashes to .build-fuzz/crashes/<harness>-*. A crash fails the script: minimise it, fix the bug, and
# commit the input to Tests/Fuzz/<harness>/ (FuzzCorpusTests replays it in every test run).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=(language safetensors session idx image)
scripts/setup.sh
swift build --scratch-path .build-fuzz --product fqat-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING
binary=.build-fuzz/debug/fqat-fuzz
status=0
for h in "${harnesses[@]}"; do
    mkdir -p ".build-fuzz/corpus/$h" ".build-fuzz/crashes"
    echo "== fuzzing $h for $seconds s"
    # Scripts are checked at ~30 inputs/s when 15 KB long; 4 KB keeps the language harness near 100/s.
    max_len=65536
    [ "$h" = language ] && max_len=4096
    # -rss_limit_mb: the harnesses refuse oversized inputs themselves; more than 2 GB is a finding.
    if ! FQAT_FUZZ_TARGET="$h" "$binary" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 -max_len="$max_len" \
            -print_final_stats=1 -artifact_prefix=".build-fuzz/crashes/$h-" ".build-fuzz/corpus/$h" "Tests/Fuzz/$h"; then
        echo "scripts/fuzz.sh: $h found a crash; see .build-fuzz/crashes/$h-*" >&2
        status=1
    fi
done
exit "$status"
