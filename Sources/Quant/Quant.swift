// Quant module: see docs/architecture.md
