// Engine enums that commands take as arguments: their raw values are the words a script writes, so one
// declaration gives the checker's choices, help, completion and docs/commands.md (ShellLanguage's
// `ChoiceArgument`). The conformances live here because the engine knows nothing of the language.
import Landscape
import NN
import Optim
import Quant
import ShellLanguage
import TensorCore
import Training

extension TrainingMethod: ChoiceArgument {}
extension FreezePolicy: ChoiceArgument {}
extension QuantizationMethod: ChoiceArgument {}
extension RangeInitMethod: ChoiceArgument {}
extension ResidualShortcut: ChoiceArgument {}
extension ComputeBackend: ChoiceArgument {}
extension PerturbationTarget: ChoiceArgument {}
extension ScaleDirection: ChoiceArgument {}

/// `set progress=`: how long commands show progress. auto: a bar in a terminal (not under CI),
/// else lines; bar; lines (about ten per command); off.
public enum ProgressSetting: String, ChoiceArgument, Codable, Sendable {
    case auto, bar, lines, off
    public init(from decoder: Decoder) throws { self = try decodeSetting(decoder, "settings.progress", command: "set progress") }
}

/// `set plot=` and `plot … format=`: where plots go. auto: a PNG under <out>/plots, and a terminal
/// view in a terminal; png; svg; text (a terminal view); sixel; none (the CSV data only).
public enum PlotSetting: String, ChoiceArgument, Codable, Sendable {
    case auto, png, svg, text, sixel, none
    public init(from decoder: Decoder) throws { self = try decodeSetting(decoder, "settings.plot", command: "set plot") }
}

/// A setting read from a session file: a word that is no case is an error that names the setting,
/// the word and the choices (the file was edited or damaged), never a trap.
private func decodeSetting<T: ChoiceArgument>(_ decoder: Decoder, _ name: String, command: String) throws -> T {
    let container = try decoder.singleValueContainer()
    let word = try container.decode(String.self)
    guard let value = T(rawValue: word) else {
        throw DecodingError.dataCorruptedError(in: container, debugDescription:
            "\(name) '\(word)' is not one of \(T.allCases.map(\.rawValue).joined(separator: ", ")) (`\(command)`)")
    }
    return value
}
