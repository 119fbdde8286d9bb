// Notebook transcripts: `fqat-shell --notebook DIR script.fqs` writes DIR/notebook.md and a
// self-contained DIR/notebook.html holding each top-level command, what it printed, and the
// figures it drew, in order. Output still goes to the terminal as usual.
import Foundation
import Plot
import ShellLanguage
import Synchronization

public final class NotebookRecorder: Output {
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
/// with `load session <out>/autosave.fqsession`. The signal handler only sets a flag, asks the running
/// command to stop at its next step boundary and wakes a watcher thread. The session is saved only when
/// nothing is changing it: by the main thread once the command has stopped (`saveIfTerminating`), or by
/// the watcher while the REPL waits for input (`setIdle`). If the command does not reach a step boundary
/// within the grace period ($FQAT_TERM_GRACE seconds, default 20), the process exits 143 without saving:
/// a save then could hold a half-updated model, and the last saved session stays as it was.
public enum SessionGuard {
    /// Audited unsafe spot (docs/architecture.md, "Concurrency"): the session is not `Sendable`, yet the
    /// watcher thread saves it. It is written once, in `install`, before the watcher starts (Thread.start
    /// orders that write before the watcher's reads), and read only inside `saveLocked`, under `state`'s
    /// lock, while the main thread is either blocked reading a line (`idle`) or is the one saving; the
    /// main thread does not touch the session while it waits in `setIdle(false)` for that lock.
    nonisolated(unsafe) static var session: Session?
    /// Set by the signal handler. Lock-free atomics are async-signal-safe (a lock would not be); both are
    /// touched in `install` before the handler is installed, so their lazy initialisation never runs inside it.
    static let terminationFlag = Atomic<Bool>(false)
    static let wakeFD = Atomic<Int32>(-1)
    /// Whether the REPL waits for input (the watcher may save then) and whether the save has happened.
    struct State { var idle = false; var saved = false }
    static let state = Mutex(State())

    /// Whether SIGTERM has arrived (set inside the signal handler, so it is already true when a read the
    /// signal interrupted returns).
    public static var terminating: Bool { terminationFlag.load(ordering: .sequentiallyConsistent) }

    static var grace: Double {
        if let text = ProcessInfo.processInfo.environment["FQAT_TERM_GRACE"], let g = Double(text), g >= 0, g <= 3600 { return g }
        return 20
    }

    public static func install(session: Session) {
        SessionGuard.session = session
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        wakeFD.store(fds[1], ordering: .sequentiallyConsistent)
        _ = terminationFlag.load(ordering: .sequentiallyConsistent)
        let readFD = fds[0]
        let watcher = Thread {
            var byte: UInt8 = 0
            while read(readFD, &byte, 1) < 0 && errno == EINTR {}
            let deadline = Date().addingTimeInterval(grace)
            while Date() < deadline {
                let (done, waiting) = state.withLock { ($0.saved, $0.idle) }
                if done { return }  // the main thread saved and exits by itself
                if waiting {
                    // Main is blocked reading a line. Save and end here while holding the lock: should
                    // readline return meanwhile, main waits in setIdle(false) instead of running exit()
                    // beside this thread (two exit_group calls at once were seen in strace). _exit: no exit
                    // handlers run beside the main thread.
                    state.withLock { locked in
                        saveLocked(&locked)
                        fflush(nil)  // every stream (Swift 6 mode: stdout itself is not concurrency-safe)
                        _exit(143)
                    }
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
            state.withLock { locked in  // waits for a save the main thread may have begun
                if locked.saved { return }
                locked.saved = true
                FileHandle.standardError.write(Data("fqat-shell: terminated; the running command did not reach a step boundary within \(Int(grace)) s, so the session was not saved (a save now could hold a half-updated model); the last saved session is unchanged\n".utf8))
                fflush(nil)
                _exit(143)  // the main thread is mid-step: no exit handlers may run beside it
            }
        }
        watcher.name = "fqat.sigterm"
        watcher.start()
        signal(SIGTERM) { _ in
            SessionGuard.terminationFlag.store(true, ordering: .sequentiallyConsistent)
            Interrupt.shared.request()
            var byte: UInt8 = 1
            _ = write(SessionGuard.wakeFD.load(ordering: .sequentiallyConsistent), &byte, 1)
        }
    }

    /// The REPL calls this with true before it waits for a line and with false when one arrived: while
    /// idle, the watcher may save at once. Setting false waits for a save in progress.
    public static func setIdle(_ value: Bool) {
        state.withLock { $0.idle = value }
    }

    /// Saves once, if SIGTERM was received; returns whether the process should exit with 143.
    @discardableResult
    public static func saveIfTerminating() -> Bool {
        guard terminating else { return false }
        state.withLock { saveLocked(&$0) }
        return true
    }

    /// The save itself, once; the caller holds `state`'s lock and passes its value.
    static func saveLocked(_ locked: inout State) {
        if locked.saved { return }
        locked.saved = true
        if let s = session {
            let path = s.launch.autosavePath ?? (s.settings.out as NSString).appendingPathComponent("autosave.fqsession")
            do {
                try SessionFile.save(s, to: path)
                FileHandle.standardError.write(Data("fqat-shell: terminated; session saved to \(path) (`load session \(path)` resumes)\n".utf8))
            } catch {
                FileHandle.standardError.write(Data("fqat-shell: terminated; could not save the session: \(error)\n".utf8))
            }
        }
    }
}
