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

/// `set progress=`: how long commands show progress.
enum ProgressSetting: String, ChoiceArgument { case auto, bar, lines, off }

/// `set plot=` and `plot … format=`: where plots go.
enum PlotSetting: String, ChoiceArgument { case auto, png, svg, text, sixel, none }
