// Landscape module: see docs/architecture.md
