// Notebook transcripts: `fqat-shell --notebook DIR script.fqs` writes DIR/notebook.md and a
// self-contained DIR/notebook.html holding each top-level command, what it printed, and the
// figures it drew, in order. Output still goes to the terminal as usual.
import Foundation
import Plot
import ShellLanguage

public final class NotebookRecorder: Output, @unchecked Sendable {
    let directory: String
    unowned let session: Session
    let passthrough = StandardOutput()
    public var title = "fqat-shell session"
    var cells: [(command: String, output: String, figures: [String])] = []
    let lock = NSLock()

    public init(directory: String, session: Session) {
        self.directory = directory
        self.session = session
    }

    public func write(_ text: String, to channel: OutputChannel) {
        passthrough.write(text, to: channel)
        lock.lock(); defer { lock.unlock() }
        guard !cells.isEmpty else { return }
        // Progress bars redraw with carriage returns: keep only what a reader would see last.
        var clean = text
        if clean.contains("\r") {
            clean = clean.split(separator: "\r", omittingEmptySubsequences: false).last.map(String.init) ?? ""
            clean = clean.replacingOccurrences(of: "\u{1B}[K", with: "")
        }
        cells[cells.count - 1].output += strippingTerminalEscapes(clean)
    }

    public func attach(to interpreter: Interpreter) {
        interpreter.topLevelStatementWillRun = { [weak self] text in
            guard let self else { return }
            self.lock.lock(); defer { self.lock.unlock() }
            self.flushFigure()
            self.cells.append((text, "", []))
            self.session.lastFigure = nil
        }
    }

    private func flushFigure() {
        if let f = session.lastFigure, !cells.isEmpty, !cells[cells.count - 1].figures.contains(f) {
            cells[cells.count - 1].figures.append(f)
        }
    }

    /// Writes notebook.md and notebook.html; figure paths are made relative to the notebook.
    public func write() {
        lock.lock(); flushFigure(); let cells = self.cells; lock.unlock()
        var nb = Notebook(title: title)
        for c in cells { nb.append(command: c.command, output: c.output, figures: c.figures) }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let md = (directory as NSString).appendingPathComponent("notebook.md")
            let html = (directory as NSString).appendingPathComponent("notebook.html")
            try nb.write(markdownTo: md, htmlTo: html, timestamp: Date())
            passthrough.write("notebook: \(md), \(html)\n", to: .error)
        } catch {
            passthrough.write("fqat-shell: could not write the notebook to \(directory): \(error)\n", to: .error)
        }
    }
}

/// Saves the session when the process is asked to stop (SIGTERM), so a killed batch job can resume
/// with `load session <out>/autosave.fqsession`. The handler asks the running command to stop at its
/// next step boundary; the main thread saves as it finishes (`saveIfTerminating`). If the main thread
/// is idle (a REPL waiting for input) the handler saves itself after a grace period.
public enum SessionGuard {
    nonisolated(unsafe) static var session: Session?
    nonisolated(unsafe) static var source: DispatchSourceSignal?
    nonisolated(unsafe) static var terminating = false
    static let lock = NSLock()
    nonisolated(unsafe) static var saved = false

    public static func install(session: Session) {
        SessionGuard.session = session
        signal(SIGTERM, SIG_IGN)
        let src = DispatchSource.makeSignalSource(signal: SIGTERM, queue: DispatchQueue(label: "fqat.sigterm"))
        src.setEventHandler {
            terminating = true
            Interrupt.shared.request()
            Thread.sleep(forTimeInterval: 10)
            saveIfTerminating()
            exit(143)
        }
        src.resume()
        source = src
    }

    /// Saves once, if SIGTERM was received; returns whether the process should exit with 143.
    @discardableResult
    public static func saveIfTerminating() -> Bool {
        guard terminating else { return false }
        lock.lock(); defer { lock.unlock() }
        if saved { return true }
        saved = true
        if let s = session {
            let path = s.autosavePath ?? (s.settings.out as NSString).appendingPathComponent("autosave.fqsession")
            do {
                try SessionFile.save(s, to: path)
                FileHandle.standardError.write(Data("fqat-shell: terminated; session saved to \(path) (`load session \(path)` resumes)\n".utf8))
            } catch {
                FileHandle.standardError.write(Data("fqat-shell: terminated; could not save the session: \(error)\n".utf8))
            }
        }
        return true
    }
}
