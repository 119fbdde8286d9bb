#!/usr/bin/env bash
# Renders the example figures of docs/plots.md into docs/img from the synthetic data in
# Tests/PlotTests/Examples.swift (GnuplotRenderTests.testRenderDocumentationImages), then, when
# ImageMagick's `convert` is present, reduces the ones over 90 KB (noisy gradients, meshed surfaces) to
# 256-colour PNGs without dithering so each stays under 100 KB.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="$PWD/docs/img"
FQAT_PLOT_DOCS_IMG="$out" swift test --filter GnuplotRenderTests/testRenderDocumentationImages >&2
if command -v convert >/dev/null 2>&1; then
    for image in "$out"/*.png; do
        if [ "$(stat -c %s "$image")" -gt 90000 ]; then convert "$image" +dither -colors 256 "PNG8:$image"; fi
    done
fi
ls -l "$out"/*.png
