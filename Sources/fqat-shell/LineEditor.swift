// Line editing for the interactive shell through libedit's readline-compatible API: editing keys,
// persistent history (~/.fqat_shell_history, or $FQAT_SHELL_HISTORY), Ctrl-R reverse search
// (libedit's default binding) and Tab completion from the command registry via `Completer`.
//
// libedit's `el_set` is variadic and cannot be imported into Swift, so everything here goes through
// the readline wrappers (readline, add_history, read_history, write_history, history_truncate_file,
// rl_attempted_completion_function, rl_completion_matches).
@preconcurrency import CEditLine
import Foundation
import ShellCommands
import ShellLanguage

/// What the C completion callbacks need, which libedit gives them no context pointer to reach.
private struct LibeditContext {
    /// The editor the callbacks talk to (libedit has one global line editor).
    var editor: LineEditor?
    /// Candidates of the completion in progress, handed out one by one to `rl_completion_matches`.
    var completions: [String] = []
    /// C strings libedit keeps pointers to for the life of the process.
    var retained: [UnsafeMutablePointer<CChar>] = []
}
/// Audited unsafe global (docs/architecture.md, "Concurrency"): libedit's callbacks are plain C
/// function pointers without a context argument, so their state must be global. It is safe because
/// only the main thread touches it: the REPL calls readline() there, and libedit runs the callbacks
/// synchronously inside that call; no other thread reads or writes it.
nonisolated(unsafe) private var libedit = LibeditContext()

private func retainedCString(_ text: String) -> UnsafeMutablePointer<CChar> {
    let pointer = strdup(text)!
    libedit.retained.append(pointer)
    return pointer
}

/// `rl_compentry_func_t`: returns the `state`-th candidate (malloc'd; libedit frees it), then NULL.
private func completionGenerator(_ text: UnsafePointer<CChar>?, _ state: Int32) -> UnsafeMutablePointer<CChar>? {
    let index = Int(state)
    guard index < libedit.completions.count else { return nil }
    return strdup(libedit.completions[index])
}

/// `rl_completion_func_t`: computes the candidates for the word at the cursor.
private func attemptCompletion(_ text: UnsafePointer<CChar>?, _ start: Int32, _ end: Int32)
    -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
    // Never fall back to libedit's own file-name completion: the Completer decides.
    rl_attempted_completion_over = 1
    guard let editor = libedit.editor, let text, let buffer = rl_line_buffer else { return nil }
    let bytes = Array(String(cString: buffer).utf8)
    let cursorBytes = max(0, min(Int(rl_point), bytes.count))
    let line = String(decoding: bytes, as: UTF8.self)
    let cursor = String(decoding: bytes[..<cursorBytes], as: UTF8.self).count
    libedit.completions = editor.completer.complete(line: line, cursor: cursor, dynamic: editor.dynamicNames)
    guard !libedit.completions.isEmpty else { return nil }
    // `steps=` and `dir/` continue the same word: no space after them.
    let single = libedit.completions.count == 1 ? libedit.completions[0] : nil
    rl_completion_append_character = (single?.hasSuffix("=") == true || single?.hasSuffix("/") == true) ? 0 : 32
    return rl_completion_matches(text, completionGenerator)
}

/// A `LineReader` over libedit for an interactive terminal.
final class LineEditor: LineReader {
    let completer: Completer
    /// Names for dynamic completion sources ("layers", "scales", "domains", "variables", …).
    let dynamicNames: (String) -> [String]
    let historyPath: String
    let historyLimit: Int32

    /// - Parameters:
    ///   - dynamicNames: supplies names for `CompletionSource.dynamic` at Tab time.
    ///   - historyPath: defaults to $FQAT_SHELL_HISTORY, else ~/.fqat_shell_history.
    ///   - historyLimit: entries kept in memory and in the file.
    init(completer: Completer, dynamicNames: @escaping (String) -> [String], historyPath: String? = nil,
         historyLimit: Int32 = 5000) {
        self.completer = completer
        self.dynamicNames = dynamicNames
        self.historyPath = historyPath ?? LineEditor.defaultHistoryPath()
        self.historyLimit = historyLimit

        rl_readline_name = UnsafePointer(retainedCString("fqat-shell"))  // ~/.editrc sections
        // libedit's rl_complete splits words with the *basic* set; set both so they agree with Completer.
        rl_completer_word_break_characters = retainedCString(Completer.wordBreakCharacters)
        rl_basic_word_break_characters = UnsafePointer(retainedCString(Completer.wordBreakCharacters))
        rl_attempted_completion_function = attemptCompletion
        using_history()
        stifle_history(historyLimit)
        _ = read_history(self.historyPath)  // a missing file is fine on first use
        libedit.editor = self
    }

    static func defaultHistoryPath() -> String {
        if let path = ProcessInfo.processInfo.environment["FQAT_SHELL_HISTORY"], !path.isEmpty { return path }
        // $HOME first (as every shell does); the password database's home only when HOME is unset.
        let home = ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".fqat_shell_history")
    }

    func readLine(prompt: String) -> LineInput {
        Interrupt.shared.clear()
        // While the prompt waits, SIGTERM may save the session at once (nothing is running); libedit's own
        // handler re-raises the signal, and readline then returns NULL: that is termination, not Ctrl-D.
        if SessionGuard.terminating { return .endOfInput }  // SIGTERM during the last command: finish saves
        SessionGuard.setIdle(true)
        let line = readline(prompt)
        SessionGuard.setIdle(false)
        if SessionGuard.terminating {
            if let line { free(line) }
            return .endOfInput
        }
        guard let pointer = line else {
            // libedit returns NULL both for Ctrl-D and when Ctrl-C interrupts the read.
            if Interrupt.shared.isRequested {
                Interrupt.shared.clear()
                fputs("\n", stdout)
                return .interrupted
            }
            fputs("\n", stdout)
            return .endOfInput
        }
        defer { free(pointer) }
        if Interrupt.shared.isRequested {
            // Ctrl-C arrived while the line was being edited: discard it.
            Interrupt.shared.clear()
            return .interrupted
        }
        return .line(String(cString: pointer))
    }

    /// Adds each line of the entry (libedit recalls lines, not multi-line blocks) and saves the
    /// file at once, so a crash loses nothing. The file is truncated to `historyLimit` lines.
    func addHistory(_ entry: String) {
        for line in entry.split(separator: "\n") where !line.allSatisfy({ $0 == " " || $0 == "\t" }) {
            _ = add_history(String(line))
        }
        _ = write_history(historyPath)
        _ = history_truncate_file(historyPath, historyLimit)
    }

    var history: [String] {
        var entries: [String] = []
        let count = Int(history_length)
        for offset in 0..<count {
            if let entry = history_get(history_base + Int32(offset)), let line = entry.pointee.line {
                entries.append(String(cString: line))
            }
        }
        return entries
    }
}

/// The line reader for this process: libedit on a terminal, plain stdin otherwise (pipes, CI).
/// The integrator calls this from main.swift and passes the result to `Repl`. Completion sources
/// "variables" (bound names) and "commands" are answered here; every other dynamic source
/// ("layers", "scales", "domains", …) goes to `dynamicNames`.
func makeLineReader(interpreter: Interpreter, dynamicNames: @escaping (String) -> [String]) -> LineReader {
    guard isatty(STDIN_FILENO) != 0 else { return StdinLineReader() }
    let names: (String) -> [String] = { [weak interpreter] source in
        switch source {
        case "variables": return interpreter.map { $0.environment.names.sorted() } ?? []
        case "commands": return interpreter?.registry.names ?? []
        default: return dynamicNames(source)
        }
    }
    return LineEditor(completer: Completer(registry: interpreter.registry), dynamicNames: names)
}
