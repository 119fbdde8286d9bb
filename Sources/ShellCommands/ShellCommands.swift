// ShellCommands module: see docs/architecture.md
