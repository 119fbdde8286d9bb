// fqat-shell: the REPL (libedit on a terminal, plain lines otherwise), `.fqs` scripts, and -c.
//   fqat-shell                       interactive shell (or reads a script from stdin when it is not a terminal)
//   fqat-shell script.fqs [args…]    run a script; exit status 0, 65 (syntax/check), 66 (unreadable), 70 (runtime), 130 (Ctrl-C)
//   fqat-shell -c "commands"         run commands given on the command line
//   fqat-shell --check script.fqs    check a script without running it
//   fqat-shell --notebook DIR script.fqs   also write DIR/notebook.md and DIR/notebook.html (commands, output, figures)
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
  -h, --help       this help;  --version  the version
Inside the shell: `help`, `help train`, `train?`. Exit codes: 0 ok, 65 static error, 66 no input,
70 runtime error, 130 interrupted, or the status given to `exit`.
"""

var argv = Array(CommandLine.arguments.dropFirst())
var commandText: String?
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

let session = Session()
let registry = ShellCommands.makeRegistry(session: session)
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
