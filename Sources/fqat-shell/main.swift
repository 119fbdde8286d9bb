// fqat-shell: the REPL (libedit on a terminal, plain lines otherwise), `.fqs` scripts, and -c.
//   fqat-shell                       interactive shell (or reads a script from stdin when it is not a terminal)
//   fqat-shell script.fqs [args…]    run a script; exit status 0, 65 (syntax/check), 66 (unreadable), 70 (runtime), 130 (Ctrl-C), 143 (SIGTERM)
//   fqat-shell -c "commands"         run commands given on the command line
//   fqat-shell --check script.fqs    check a script without running it
//   fqat-shell --notebook DIR script.fqs   also write DIR/notebook.md and DIR/notebook.html (commands, output, figures)
//   fqat-shell sweep create|list|run|task|collect …   sweeps: a grid as a task list (docs/sweeps.md)
import Foundation
import ShellCommands
import ShellLanguage

let version = "fqat-shell 0.1.0"
let usage = """
usage: fqat-shell [options] [script.fqs [args…]]
       fqat-shell -c "commands"
options:
  -c TEXT          run TEXT as a script
  --check          check the script (syntax, commands, arguments) without running it
  --notebook DIR   write a notebook transcript (Markdown and HTML, figures inline) of the script to DIR
  --commands-markdown   print the command reference (docs/commands.md)
  --threads N      start with `set threads=N`
  --records FILE   also append every run's records to FILE (DomainBed's results.jsonl; sweep tasks)
  --record-arg K=V add or replace an args key of every record (V is JSON, else text; a replaced
                   `dataset` is kept as `benchmark`)
  --autosave PATH  where SIGTERM saves the session (default <out>/autosave.fqsession)
  --resume-from F  a session saved when this script was stopped: the run it was in continues from it
  sweep …          sweeps over a script's options: `fqat-shell sweep --help` (docs/sweeps.md)
  -h, --help       this help;  --version  the version
Inside the shell: `help`, `help train`, `train?`. Exit codes: 0 ok, 65 static error, 66 no input,
70 runtime error, 130 interrupted, 143 terminated (SIGTERM), or the status given to `exit`.
"""

var argv = Array(CommandLine.arguments.dropFirst())

func failUsage(_ message: String) -> Never {
    FileHandle.standardError.write(Data("fqat-shell: \(message)\n".utf8))
    exit(64)
}

/// A string literal of the shell language.
func quoted(_ s: String) -> String {
    "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}

// `fqat-shell sweep …`: everything but `collect` is answered by SweepCLI; `collect` is `summary`.
if argv.first == "sweep" {
    let rest = Array(argv.dropFirst())
    if rest.first == "collect" {
        guard rest.count >= 2 else { failUsage("sweep collect takes the sweep folder: fqat-shell sweep collect DIR [csv=FILE versus=LABEL oracle=true]") }
        guard SweepFolder.isSweep(rest[1]) else { failUsage("'\(rest[1])' is not a sweep (no \(SweepFolder.taskListName)); `summary` reads any folder of records") }
        let session = Session()
        let interpreter = Interpreter(registry: ShellCommands.makeRegistry(session: session), output: StandardOutput())
        interpreter.echoCommandResults = false
        let keywords = rest.dropFirst(2).map { arg -> String in
            guard let eq = arg.firstIndex(of: "=") else { failUsage("sweep collect: '\(arg)' is not a summary keyword NAME=VALUE (csv=, versus=, oracle=)") }
            let value = String(arg[arg.index(after: eq)...])
            let literal = value == "true" || value == "false" || Double(value) != nil
            return String(arg[...eq]) + (literal ? value : quoted(value))
        }
        let text = "summary \(quoted(rest[1])) " + keywords.joined(separator: " ")
        exit(interpreter.runScript(Source(name: "<sweep collect>", text: text), arguments: .parse(scriptName: "sweep", [])).status)
    }
    exit(SweepCLI.main(rest))
}

var commandText: String?
var threads: Int?
var recordsFile: String?
var recordArgs: [(String, String)] = []
var autosavePath: String?
var resumeFrom: String?
var checkOnly = false
var notebookDir: String?
while let first = argv.first, first.hasPrefix("-"), first != "-" {
    argv.removeFirst()
    switch first {
    case "-h", "--help": print(usage); exit(0)
    case "--version": print(version); print(SystemReport.computeLine()); exit(0)
    case "--check": checkOnly = true
    case "-c":
        guard !argv.isEmpty else { FileHandle.standardError.write(Data("fqat-shell: -c needs the commands to run\n".utf8)); exit(64) }
        commandText = argv.removeFirst()
    case "--notebook":
        guard !argv.isEmpty else { FileHandle.standardError.write(Data("fqat-shell: --notebook needs a folder\n".utf8)); exit(64) }
        notebookDir = argv.removeFirst()
    case "--threads":
        guard let v = argv.first.flatMap({ Int($0) }), (1...256).contains(v) else { failUsage("--threads needs a thread count from 1 to 256") }
        argv.removeFirst(); threads = v
    case "--records":
        guard let v = argv.first else { failUsage("--records needs a file") }
        argv.removeFirst(); recordsFile = v
    case "--record-arg":
        guard let v = argv.first, let eq = v.firstIndex(of: "="), eq != v.startIndex else { failUsage("--record-arg needs KEY=VALUE") }
        argv.removeFirst(); recordArgs.append((String(v[..<eq]), String(v[v.index(after: eq)...])))
    case "--resume-from":
        guard let v = argv.first else { failUsage("--resume-from needs a session file") }
        argv.removeFirst(); resumeFrom = v
    case "--autosave":
        guard let v = argv.first else { failUsage("--autosave needs a file") }
        argv.removeFirst(); autosavePath = v
    case "--commands-markdown":
        print(ShellCommands.makeRegistry(session: Session()).markdownReference(), terminator: "")
        exit(0)
    case "--": break
    default:
        FileHandle.standardError.write(Data("fqat-shell: unknown option '\(first)'\n\(usage)\n".utf8))
        exit(64)
    }
    if first == "--" { break }
}

// One warning at start of a REPL or batch run when OpenBLAS silently runs generic kernels on a CPU
// with AVX2/AVX-512 (docs/benchmarks.md, "Which kernels run"). Not for --check: nothing computes.
if !checkOnly, let warning = SystemReport.startupWarning() {
    FileHandle.standardError.write(Data((warning + "\n").utf8))
}
if !checkOnly, let warning = SystemReport.backendWarning() {
    FileHandle.standardError.write(Data((warning + "\n").utf8))
}

let session = Session()
let registry = ShellCommands.makeRegistry(session: session)
if let threads { ShellCommands.setThreads(threads, session: session) }
session.launch.autosavePath = autosavePath
session.launch.resumeFrom = resumeFrom
if let file = recordsFile {
    let dir = (file as NSString).deletingLastPathComponent
    if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
    session.launch.recordsFile = file
}
for (key, text) in recordArgs {
    session.launch.setRecordArg(key, text: text)
}
let output: Output
let notebook: NotebookRecorder?
if let dir = notebookDir {
    let recorder = NotebookRecorder(directory: dir, session: session)
    notebook = recorder
    output = recorder
} else {
    notebook = nil
    output = StandardOutput()
}
let interpreter = Interpreter(registry: registry, output: output)
interpreter.echoCommandResults = false
Interrupt.installSignalHandler()
SessionGuard.install(session: session)
if let nb = notebook { nb.attach(to: interpreter) }

func finish(_ status: Int32) -> Never {
    notebook?.write()
    if SessionGuard.saveIfTerminating() { exit(143) }
    exit(status)
}

if let text = commandText {
    let result = interpreter.runScript(Source(name: "<command line>", text: text), arguments: .parse(scriptName: "-c", argv))
    finish(result.status)
}

if let path = argv.first, path != "-" {
    let rest = Array(argv.dropFirst())
    if checkOnly {
        do {
            let source = try Source.file(atPath: path)
            let diagnostics = interpreter.check(source)
            for d in diagnostics { FileHandle.standardError.write(Data(d.rendered().utf8)) }
            exit(diagnostics.contains { $0.severity == .error } ? ExitStatus.staticError : 0)
        } catch {
            FileHandle.standardError.write(Data("fqat-shell: cannot read '\(path)': \(error.localizedDescription)\n".utf8))
            exit(ExitStatus.noInput)
        }
    }
    notebook?.title = path
    finish(interpreter.runScript(atPath: path, arguments: .parse(scriptName: path, rest)).status)
}

if isatty(STDIN_FILENO) == 0 || argv.first == "-" {
    // A script on standard input.
    var text = ""
    while let line = readLine(strippingNewline: false) { text += line }
    finish(interpreter.runScript(Source(name: "<stdin>", text: text), arguments: .parse(scriptName: "-", Array(argv.dropFirst()))).status)
}

let repl = Repl(interpreter: interpreter, lineReader: makeLineReader(interpreter: interpreter) { session.names(for: $0) })
repl.banner = "\(version) — flatness-oriented quantization-aware training. `help` lists commands; Tab completes; Ctrl-C stops a command; Ctrl-D exits."
finish(repl.run())
