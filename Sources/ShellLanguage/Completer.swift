// Tab completion from the command registry: command names and keywords at the start of a
// statement, subcommands, `key=` names, choice values, file paths, and names the shell supplies at
// completion time (layers, scales, domains, variables) through a callback.
import Foundation

public struct Completer {
    public let registry: CommandRegistry
    /// Lists a directory (names and whether each is a directory); nil if it cannot be read.
    public var listDirectory: (String) -> [(name: String, isDirectory: Bool)]? = Completer.fileSystemListing

    /// Characters that end the word being completed. `=` is not one of them: `steps=` and
    /// `policy=ad` complete as a whole, so candidates carry their `key=` prefix.
    public static let wordBreakCharacters = " \t\n\"[](),;{}"

    public init(registry: CommandRegistry) { self.registry = registry }

    /// Where the word under the cursor starts (a character offset into `line`).
    public static func wordStart(in line: String, cursor: Int) -> Int {
        let characters = Array(line)
        var start = min(cursor, characters.count)
        while start > 0, !wordBreakCharacters.contains(characters[start - 1]) { start -= 1 }
        return start
    }

    /// Replacements for the word that ends at `cursor` (a character offset), sorted. `dynamic` supplies
    /// names for `CompletionSource.dynamic(name)` sources ("layers", "scales", "domains", …) and for
    /// "variables" (names of bound variables, offered after `for`/`if` and for `print` arguments).
    public func complete(line: String, cursor: Int, dynamic: (String) -> [String]) -> [String] {
        let characters = Array(line)
        let cursor = min(max(0, cursor), characters.count)
        let start = Completer.wordStart(in: line, cursor: cursor)
        let word = String(characters[start..<cursor])
        let before = String(characters[..<start])

        // The statement the cursor is in: after the last `;`, `{`, `}` or newline outside strings.
        var statement = ""
        var inString = false
        for c in before {
            if c == "\"" { inString.toggle() }
            if !inString, c == ";" || c == "{" || c == "}" || c == "\n" { statement = "" } else { statement.append(c) }
        }
        if inString {
            // Text inside quotes: file names are the only useful guess.
            return files(matching: word)
        }
        var parts = statement.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        if parts.first == "time" { parts.removeFirst() }
        if parts.first == "let", parts.count >= 3, parts[2] == "=" { parts.removeFirst(3) }
        else if parts.count >= 2, parts[1] == "=" { parts.removeFirst(2) }

        guard let commandName = parts.first else {
            let starters = registry.commandNames + ["let", "for", "if"]
            return filtered(starters, word)
        }
        if ["for", "if", "else", "in"].contains(commandName) || commandName.hasPrefix("(") {
            return filtered(dynamic("variables") + ["in", "and", "or", "not", "true", "false"], word)
        }
        guard var spec = registry.spec(named: commandName) else { return [] }
        var arguments = Array(parts.dropFirst())

        if spec.name == "help" {
            if arguments.isEmpty { return filtered(registry.names, word) }
            if arguments.count == 1, let topic = registry.spec(named: arguments[0]) {
                return filtered(topic.subcommands.map(\.name), word)
            }
            return []
        }
        if !spec.subcommands.isEmpty {
            guard let subName = arguments.first(where: { !$0.contains("=") }) else {
                return filtered(spec.subcommands.map(\.name), word)
            }
            guard let sub = spec.subcommand(named: subName) else { return [] }
            spec = sub
            arguments.removeAll { $0 == subName }
        }

        // Inside an open list `key=[a, b` the word is an element of that argument.
        if let owner = openListOwner(statement) {
            let argSpec = owner.isEmpty ? nextPositional(spec, arguments) : spec.argument(named: owner)
            guard let argSpec else { return [] }
            return values(for: argSpec, matching: word, dynamic: dynamic)
        }
        if let equals = word.firstIndex(of: "=") {
            let key = String(word[..<equals])
            let partial = String(word[word.index(after: equals)...])
            guard let argSpec = spec.argument(named: key) else { return [] }
            return values(for: argSpec, matching: partial, dynamic: dynamic).map { key + "=" + $0 }
        }
        var candidates: [String] = []
        if let argSpec = nextPositional(spec, arguments) {
            candidates += values(for: argSpec, matching: word, dynamic: dynamic)
        }
        let usedKeys = Set(arguments.compactMap { part -> String? in
            guard let equals = part.firstIndex(of: "=") else { return nil }
            return String(part[..<equals])
        })
        candidates += spec.keywords.map(\.name).filter { !usedKeys.contains($0) }.map { $0 + "=" }
        return filtered(candidates, word)
    }

    /// The positional the next bare value fills (the variadic one once the fixed ones are used).
    func nextPositional(_ spec: CommandSpec, _ arguments: [String]) -> ArgSpec? {
        let count = arguments.filter { !$0.contains("=") }.count
        if count < spec.positionals.count { return spec.positionals[count] }
        return spec.variadic
    }

    /// If the statement ends inside `[`, the key owning the list ("" for a positional list).
    func openListOwner(_ statement: String) -> String? {
        var depth = 0
        var openIndex: String.Index?
        for index in statement.indices {
            if statement[index] == "[" {
                depth += 1
                if depth == 1 { openIndex = index }
            } else if statement[index] == "]" {
                depth = max(0, depth - 1)
            }
        }
        guard depth > 0, let openIndex else { return nil }
        let head = statement[..<openIndex]
        let token = head.split(whereSeparator: { $0 == " " || $0 == "\t" }).last.map(String.init) ?? ""
        guard head.last != " ", let equals = token.firstIndex(of: "="), token.index(after: equals) == token.endIndex else {
            return ""
        }
        return String(token[..<equals])
    }

    func values(for argSpec: ArgSpec, matching partial: String, dynamic: (String) -> [String]) -> [String] {
        switch argSpec.completion {
        case .none: return []
        case .choices: return filtered(Completer.choices(argSpec.kind), partial)
        case .files: return files(matching: partial)
        case .dynamic(let name): return filtered(dynamic(name), partial)
        }
    }

    static func choices(_ kind: ArgKind) -> [String] {
        switch kind {
        case .choice(let choices): return choices
        case .bool: return ["true", "false"]
        case .list(let element): return choices(element)
        default: return []
        }
    }

    func filtered(_ candidates: [String], _ prefix: String) -> [String] {
        Array(Set(candidates.filter { $0.hasPrefix(prefix) })).sorted()
    }

    /// Paths starting with `partial`; directories end with `/`. Hidden entries only for a `.` prefix.
    func files(matching partial: String) -> [String] {
        let slash = partial.lastIndex(of: "/")
        let directoryPart = slash.map { String(partial[...$0]) } ?? ""
        let namePrefix = slash.map { String(partial[partial.index(after: $0)...]) } ?? partial
        var directory = directoryPart.isEmpty ? "." : directoryPart
        directory = HomePath.expand(directory)
        guard let entries = listDirectory(directory) else { return [] }
        return entries
            .filter { $0.name.hasPrefix(namePrefix) && (namePrefix.hasPrefix(".") || !$0.name.hasPrefix(".")) }
            .map { directoryPart + $0.name + ($0.isDirectory ? "/" : "") }
            .sorted()
    }

    public static func fileSystemListing(_ directory: String) -> [(name: String, isDirectory: Bool)]? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        return names.map { name in
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(name), isDirectory: &isDirectory)
            return (name, isDirectory.boolValue)
        }
    }
}
