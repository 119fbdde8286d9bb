#!/usr/bin/env bash
# AddressSanitizer pass over fqat-shell's input readers (docs/reliability.md, "AddressSanitizer").
#   scripts/asan.sh            build .build-asan/ with -sanitize=address (Swift) and -fsanitize=address (C),
#                              replay every committed fuzz corpus (Tests/Fuzz/<harness>/) through fqat-fuzz,
#                              then run the language and reader tests under ASan
#   scripts/asan.sh replay     only the corpus replay (skips building and running the test targets)
# Any ASan report (heap/stack overflow, use after free, …) aborts the process that hit it and fails the
# script. Leak checking is off (detect_leaks=0): Swift's global caches and libraries' one-time allocations
# live until exit by design; this pass looks for memory errors. Not part of CI: the separate build of every
# module with ASan takes several minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-all}"
scripts/setup.sh
flags=(--scratch-path .build-asan -Xswiftc -sanitize=address -Xcc -fsanitize=address -Xcc -fno-omit-frame-pointer)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:halt_on_error=1}"
status=0

swift build "${flags[@]}" --product fqat-fuzz
binary=.build-asan/debug/fqat-fuzz
for h in language safetensors session idx image; do
    echo "== ASan replay of Tests/Fuzz/$h ($(ls "Tests/Fuzz/$h" | wc -l) inputs)"
    if ! "$binary" "$h" "Tests/Fuzz/$h"; then
        echo "scripts/asan.sh: replaying Tests/Fuzz/$h failed under AddressSanitizer (report above)" >&2
        status=1
    fi
done

if [ "$mode" != replay ]; then
    swift build "${flags[@]}" --build-tests
    # The language (lexer, parser, checker, interpreter) and the readers of every file format.
    filter='ShellLanguageTests|IDXTests|ImageFolderTests|SafeTensorsTests|HardeningTests'
    echo "== ASan: swift test --filter '$filter'"
    if ! swift test "${flags[@]}" --skip-build --filter "$filter"; then
        echo "scripts/asan.sh: tests failed under AddressSanitizer (report above)" >&2
        status=1
    fi
fi
exit "$status"
