// Plot module: see docs/architecture.md
