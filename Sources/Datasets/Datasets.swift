// Datasets module: see docs/architecture.md
