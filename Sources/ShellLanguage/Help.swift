// Help rendering: usage lines, `help`, `help name` / `name?`, and the Markdown reference
// (docs/commands.md), all from the same `CommandSpec`s.

public enum Help {
    /// `train <method> [steps=<int>] [lr=<number>]`
    public static func usage(_ spec: CommandSpec, path: [String]) -> String {
        if let usage = spec.usageOverride { return usage }
        var parts = [path.joined(separator: " ")]
        if !spec.subcommands.isEmpty {
            parts.append(spec.subcommands.map(\.name).joined(separator: "|"))
            parts.append("…")
            return parts.joined(separator: " ")
        }
        for argument in spec.positionals {
            parts.append(argument.required ? "<\(argument.name)>" : "[<\(argument.name)>]")
        }
        if let variadic = spec.variadic { parts.append("[<\(variadic.name)>…]") }
        for argument in spec.keywords {
            let text = "\(argument.name)=\(argument.kind.placeholder)"
            parts.append(argument.required ? text : "[\(text)]")
        }
        return parts.joined(separator: " ")
    }

    /// The list shown by a bare `help`.
    public static func overview(_ registry: CommandRegistry) -> String {
        var text = "Commands (type 'help <command>' or '<command>?' for details):\n"
        let width = (registry.names.map(\.count).max() ?? 0) + 2
        for group in registry.groups {
            text += "\n\(group):\n"
            for spec in registry.commands where spec.group == group {
                text += "  " + spec.name.padding(toLength: width, withPad: " ", startingAt: 0) + spec.summary + "\n"
            }
        }
        return text
    }

    /// `help train` / `train?` / `help data pacs`; nil if there is no such topic.
    public static func text(for topic: [String], in registry: CommandRegistry) -> String? {
        guard let first = topic.first, var spec = registry.spec(named: first) else { return nil }
        var path = [first]
        for name in topic.dropFirst() {
            guard let sub = spec.subcommand(named: name) else { return nil }
            spec = sub
            path.append(name)
        }
        return text(for: spec, path: path)
    }

    static func text(for spec: CommandSpec, path: [String]) -> String {
        var text = "usage: \(usage(spec, path: path))\n\n"
        text += path.joined(separator: " ") + " — " + spec.summary + "\n"
        if !spec.discussion.isEmpty { text += "\n" + wrap(spec.discussion, width: 76, indent: "") + "\n" }
        if !spec.subcommands.isEmpty {
            text += "\nSubcommands (type 'help \(path.joined(separator: " ")) <subcommand>'):\n"
            let width = (spec.subcommands.map(\.name.count).max() ?? 0) + 2
            for sub in spec.subcommands {
                text += "  " + sub.name.padding(toLength: width, withPad: " ", startingAt: 0) + sub.summary + "\n"
            }
        }
        let rows = argumentRows(spec)
        if !rows.isEmpty {
            text += "\nArguments:\n"
            let width = max(12, (rows.map(\.label.count).max() ?? 0) + 2)
            for row in rows {
                text += "  " + row.label.padding(toLength: width, withPad: " ", startingAt: 0) + row.type + "\n"
                if !row.help.isEmpty {
                    text += wrap(row.help, width: 76, indent: String(repeating: " ", count: width + 2)) + "\n"
                }
            }
        }
        if !spec.examples.isEmpty {
            text += "\nExamples:\n"
            for example in spec.examples {
                text += example.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n") + "\n"
            }
        }
        return text
    }

    struct Row {
        var label: String
        var type: String
        var help: String
    }

    /// One row per argument: `method` / `steps=`, then type, "required" or the default, then help.
    static func argumentRows(_ spec: CommandSpec) -> [Row] {
        func row(_ argument: ArgSpec, label: String, variadic: Bool = false) -> Row {
            var type = argument.kind.helpDescription
            if argument.required {
                type += " (required)"
            } else if let value = argument.defaultValue {
                // Choices are words: show them as typed, without quotes.
                if case .choice = argument.kind { type += " (default: \(value.inlineString))" } else {
                    type += " (default: \(value.description))"
                }
            } else if variadic {
                type += " (any number)"
            } else {
                type += " (optional)"
            }
            return Row(label: label, type: type, help: argument.help)
        }
        var rows = spec.positionals.map { row($0, label: $0.name) }
        if let variadic = spec.variadic { rows.append(row(variadic, label: variadic.name + "…", variadic: true)) }
        rows += spec.keywords.map { row($0, label: $0.name + "=") }
        return rows
    }

    /// Greedy word wrap; each line starts with `indent`. Existing newlines are kept.
    /// Wraps prose to `width`. Consecutive lines form one paragraph (blank lines separate paragraphs);
    /// lines that start with a space are preformatted (tables of choices) and kept as they are.
    static func wrap(_ text: String, width: Int, indent: String) -> String {
        var lines: [String] = []
        var paragraph: [Substring] = []
        func flush() {
            guard !paragraph.isEmpty else { return }
            var line = indent
            for word in paragraph.joined(separator: " ").split(separator: " ") {
                if line.count > indent.count, line.count + 1 + word.count > width {
                    lines.append(line)
                    line = indent
                }
                line += (line.count > indent.count ? " " : "") + word
            }
            lines.append(line)
            paragraph = []
        }
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if raw.trimmingCharacters(in: .whitespaces).isEmpty { flush(); lines.append(""); continue }
            if raw.first == " " { flush(); lines.append(indent + raw); continue }
            paragraph.append(raw)
        }
        flush()
        return lines.joined(separator: "\n")
    }

    /// Discussion text as Markdown: preformatted lines (leading space) become code blocks.
    static func markdownDiscussion(_ text: String) -> String {
        var out: [String] = []
        var inCode = false
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let pre = raw.first == " "
            if pre && !inCode { out.append("```"); inCode = true }
            if !pre && inCode { out.append("```"); inCode = false }
            out.append(String(raw))
        }
        if inCode { out.append("```") }
        return out.joined(separator: "\n")
    }

    // MARK: Markdown

    /// The text of docs/commands.md.
    public static func markdownReference(_ registry: CommandRegistry) -> String {
        var text = "# Command reference\n\n"
        text += "<!-- Generated by CommandRegistry.markdownReference(); do not edit by hand. -->\n\n"
        text += "Type `help <command>` or `<command>?` at the prompt for the same text. The language itself "
        text += "(values, variables, blocks, errors) is described in [language.md](language.md).\n\n"
        for group in registry.groups {
            let names = registry.commands.filter { $0.group == group }.map { "[`\($0.name)`](#\(anchor($0.name)))" }
            text += "- **\(group)**: " + names.joined(separator: ", ") + "\n"
        }
        for group in registry.groups {
            text += "\n## \(group)\n"
            for spec in registry.commands where spec.group == group {
                text += markdown(spec, path: [spec.name], level: 3)
            }
        }
        return text
    }

    static func anchor(_ name: String) -> String {
        name.lowercased().filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
    }

    static func markdown(_ spec: CommandSpec, path: [String], level: Int) -> String {
        let heading = String(repeating: "#", count: level)
        var text = "\n\(heading) \(path.joined(separator: " "))\n\n"
        text += spec.summary.prefix(1).uppercased() + spec.summary.dropFirst() + ".\n\n"
        text += "```\n\(usage(spec, path: path))\n```\n"
        if !spec.discussion.isEmpty { text += "\n\(markdownDiscussion(spec.discussion))\n" }
        let rows = argumentRows(spec)
        if !rows.isEmpty {
            text += "\n| argument | type | description |\n|---|---|---|\n"
            for row in rows {
                text += "| `\(cell(row.label))` | \(cell(row.type)) | \(cell(row.help)) |\n"
            }
        }
        if !spec.examples.isEmpty {
            text += "\nExamples:\n\n```\n" + spec.examples.joined(separator: "\n") + "\n```\n"
        }
        for sub in spec.subcommands {
            text += markdown(sub, path: path + [sub.name], level: min(level + 1, 6))
        }
        return text
    }

    static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}

extension CommandRegistry {
    /// The text of docs/commands.md (a test keeps the committed file equal to it).
    public func markdownReference() -> String { Help.markdownReference(self) }
    /// What `help` prints.
    public func helpOverview() -> String { Help.overview(self) }
    /// What `help name [sub]` prints, or nil for an unknown topic.
    public func helpText(for topic: [String]) -> String? { Help.text(for: topic, in: self) }
}
