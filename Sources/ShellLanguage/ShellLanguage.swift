// ShellLanguage module: see docs/architecture.md
