// fqat-shell: the REPL (libedit on a terminal, plain lines otherwise), `.fqs` scripts, and -c.
//   fqat-shell                       interactive shell (or reads a script from stdin when it is not a terminal)
//   fqat-shell script.fqs [args…]    run a script; exit status 0, 65 (syntax/check), 66 (unreadable), 70 (runtime), 130 (Ctrl-C), 143 (SIGTERM)
//   fqat-shell -c "commands"         run commands given on the command line
//   fqat-shell --check script.fqs    check a script without running it
//   fqat-shell --notebook DIR script.fqs   also write DIR/notebook.md and DIR/notebook.html (commands, output, figures)
//   fqat-shell sweep create|list|run|task|collect …   sweeps: a grid as a task list (docs/sweeps.md)
import ArgumentParser
import Foundation
import ShellCommands
import ShellLanguage

let version = "fqat-shell 0.1.0"

/// fqat-shell's own flags, parsed by swift-argument-parser: the declarations below are also the
/// `--help` text, and a bad flag is a usage error (exit 64) with the usage line. A script's own
/// options (`--steps=20`) come after the script's path and are the script's (`option "steps" 600`).
struct ShellOptions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fqat-shell",
        abstract: "An interactive shell and batch runner for flatness-oriented quantization-aware training.",
        usage: """
        fqat-shell [options] [script.fqs [args…]]
        fqat-shell [options] -c "commands" [args…]
        fqat-shell sweep create|list|run|task|collect …
        """,
        discussion: """
        With no script, an interactive shell (or a script read from standard input when that is not a \
        terminal; `-` reads it from standard input too). `fqat-shell sweep --help` describes sweeps over a \
        script's options (docs/sweeps.md). Inside the shell: `help`, `help train`, `train?`.

        Exit codes: 0 ok, 64 usage error, 65 static error, 66 no input, 70 runtime error, 130 interrupted, \
        143 terminated (SIGTERM), or the status given to `exit`.
        """,
        helpNames: [.short, .long])

    @ArgumentParser.Option(name: .customShort("c"), help: ArgumentHelp("Run TEXT as a script.", valueName: "TEXT"))
    var commands: String?
    @Flag(help: "Check the script (syntax, commands, arguments) without running it.")
    var check = false
    @ArgumentParser.Option(help: ArgumentHelp("Write a notebook transcript (Markdown and HTML, figures inline) of the script to DIR.", valueName: "DIR"))
    var notebook: String?
    @Flag(name: .customLong("commands-markdown"), help: "Print the command reference (docs/commands.md).")
    var commandsMarkdown = false
    /// `--threads N`, declared once with `sweep task`'s (ShellCommands' SweepCLI).
    @OptionGroup var threads: ThreadsOption
    @ArgumentParser.Option(help: ArgumentHelp("Also append every run's records to FILE (DomainBed's results.jsonl; sweep tasks).", valueName: "FILE"))
    var records: String?
    @ArgumentParser.Option(name: .customLong("record-arg"),
            help: ArgumentHelp("Add or replace an args key of every record (V is JSON, else text; a replaced `dataset` is kept as `benchmark`); repeatable.", valueName: "K=V"))
    var recordArgs: [String] = []
    @ArgumentParser.Option(help: ArgumentHelp("Where SIGTERM saves the session (default <out>/autosave.fqsession).", valueName: "PATH"))
    var autosave: String?
    @ArgumentParser.Option(name: .customLong("resume-from"),
            help: ArgumentHelp("A session saved when this script was stopped: the run it was in continues from it.", valueName: "FILE"))
    var resumeFrom: String?
    @Flag(help: "Print the version and the compute path.")
    var version = false
    @ArgumentParser.Argument(help: ArgumentHelp("A script to run (`-`: read it from standard input).", valueName: "script.fqs"))
    var script: String?
    @ArgumentParser.Argument(parsing: .captureForPassthrough,
                             help: ArgumentHelp("The script's arguments ($1, $2, …) and options (--name=value), passed through.", valueName: "args"))
    var scriptArguments: [String] = []

    func validate() throws {
        for pair in recordArgs {
            guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                throw ValidationError("--record-arg needs KEY=VALUE, got '\(pair)'")
            }
        }
    }

    /// (key, value text) of each `--record-arg`.
    var recordArgPairs: [(String, String)] {
        recordArgs.compactMap { pair in
            pair.firstIndex(of: "=").map { (String(pair[..<$0]), String(pair[pair.index(after: $0)...])) }
        }
    }
}

var argv = Array(CommandLine.arguments.dropFirst())

// `fqat-shell sweep …`: a swift-argument-parser command group of its own (ShellCommands' SweepCLI).
if argv.first == "sweep" {
    exit(SweepCLI.main(Array(argv.dropFirst())))
}

// Everything else: fqat-shell's own flags. `--help` prints to standard output and exits 0; a bad flag
// prints the error and the usage to standard error and exits 64 (EX_USAGE).
let options: ShellOptions
do { options = try ShellOptions.parse(argv) } catch { ShellOptions.exit(withError: error) }
if options.version { print(version); print(SystemReport.computeLine()); exit(0) }
if options.commandsMarkdown {
    print(ShellCommands.makeRegistry(session: Session()).markdownReference(), terminator: "")
    exit(0)
}
let commandText = options.commands
let checkOnly = options.check
let notebookDir = options.notebook
argv = (options.script.map { [$0] } ?? []) + options.scriptArguments

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
if let threads = options.threads.threads { session.setThreads(threads) }
session.launch.autosavePath = options.autosave
session.launch.resumeFrom = options.resumeFrom
if let file = options.records {
    let dir = (file as NSString).deletingLastPathComponent
    if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
    session.launch.recordsFile = file
}
for (key, text) in options.recordArgPairs {
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

@MainActor func finish(_ status: Int32) -> Never {
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
