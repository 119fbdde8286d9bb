// The one escaping loop of the front end. Each caller states its rules as a table: gnuplot string
// literals and HTML text (Plot), the shell language's string literals (ShellLanguage). Pure Swift,
// so the modules that use it stay independent of each other.

/// `text`, read Unicode scalar by Unicode scalar: a scalar that `replacements` holds is written as its
/// replacement, a scalar that `drop` accepts is left out, every other scalar is kept as it is.
/// Scalars, not characters: a combining mark after a special scalar (`<` + U+0338) must not hide it.
public func escaped(_ text: String, replacing replacements: [Unicode.Scalar: String],
                    dropping drop: (Unicode.Scalar) -> Bool = { _ in false }) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        if let replacement = replacements[scalar] {
            out += replacement
        } else if !drop(scalar) {
            out.unicodeScalars.append(scalar)
        }
    }
    return out
}
