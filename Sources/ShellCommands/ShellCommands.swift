// The command table: every engine command, registered over one shared Session.
import Foundation
import ShellLanguage

public enum ShellCommands {
    /// A registry with the language built-ins and every engine command bound to `session`.
    public static func makeRegistry(session s: Session) -> CommandRegistry {
        let registry = CommandRegistry(includeBuiltins: true)
        registry.register([
            dataCommand(s),
            modelCommand(s), quantizeCommand(s),
            trainCommand(s), stepCommand(s), evalCommand(s), resultsCommand(s), summaryCommand(s),
            disorderCommand(s), freezeCommand(s), unfreezeCommand(s), policyCommand(s),
            plotCommand(s), landscapeCommand(s),
            saveCommand(s), loadCommand(s), exportCommand(s),
            setCommand(s), showCommand(s), optionCommand(),
        ])
        s.applyThreads()
        return registry
    }
}
