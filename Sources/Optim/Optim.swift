// Optim module: see docs/architecture.md
