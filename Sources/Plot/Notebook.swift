// A transcript of a session as a notebook page: cells of (command, printed output, figures), written as
// Markdown (figures as relative image links, for a repository or a results folder) and as one
// self-contained HTML file (figures inlined as base64 data: URIs, so it can be mailed or archived alone).
// The title and timestamp are passed in, so the same cells always give the same bytes.
import Foundation
import TextEscaping

/// One command and what it produced.
public struct NotebookCell: Equatable, Sendable {
    public var command: String
    public var output: String
    /// Image files the command wrote (PNG, SVG, ...), paths as the shell knows them.
    public var figures: [String]

    public init(command: String, output: String = "", figures: [String] = []) {
        self.command = command; self.output = output; self.figures = figures
    }
}

/// The cells of a session, in order.
public struct Notebook: Equatable, Sendable {
    public var title: String
    public private(set) var cells: [NotebookCell]

    public init(title: String, cells: [NotebookCell] = []) {
        self.title = title
        self.cells = cells
    }

    public mutating func append(_ cell: NotebookCell) { cells.append(cell) }

    public mutating func append(command: String, output: String = "", figures: [String] = []) {
        cells.append(NotebookCell(command: command, output: output, figures: figures))
    }

    /// `2025-01-31T12:00:00Z`: ISO 8601 in UTC.
    public static func timestampText(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    // MARK: Markdown

    /// The page as Markdown. Commands go in ```` ```fqs ```` blocks, output in ```` ```text ```` blocks
    /// (terminal escapes removed; the fence grows if the text holds backticks), figures as image links
    /// relative to `folder` (where the Markdown file will live).
    public func markdown(timestamp: Date, relativeTo folder: String) -> String {
        var text = "# \(title)\n\n_Generated \(Self.timestampText(timestamp))_\n"
        for (index, cell) in cells.enumerated() {
            text += "\n## [\(index + 1)]\n\n"
            text += Self.fenced(cell.command, language: "fqs")
            let output = strippingTerminalEscapes(cell.output)
            if !output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                text += "\n" + Self.fenced(output, language: "text")
            }
            for figure in cell.figures {
                let link = relativePath(from: folder, to: figure)
                let name = URL(fileURLWithPath: figure).lastPathComponent
                text += "\n![\(Self.escapeMarkdownText(name))](\(Self.escapeLink(link)))\n"
            }
        }
        return text
    }

    static func fenced(_ body: String, language: String) -> String {
        var longestRun = 0, run = 0
        for character in body {
            run = character == "`" ? run + 1 : 0
            longestRun = max(longestRun, run)
        }
        let fence = String(repeating: "`", count: max(3, longestRun + 1))
        var body = body
        while body.hasSuffix("\n") { body.removeLast() }
        return "\(fence)\(language)\n\(body)\n\(fence)\n"
    }

    static func escapeMarkdownText(_ text: String) -> String {
        escaped(text, replacing: ["\\": "\\\\", "[": "\\[", "]": "\\]", "*": "\\*", "_": "\\_", "`": "\\`"])
    }

    static func escapeLink(_ link: String) -> String {
        link.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: " ", with: "%20")
            .replacingOccurrences(of: "(", with: "%28").replacingOccurrences(of: ")", with: "%29")
            .replacingOccurrences(of: "<", with: "%3C").replacingOccurrences(of: ">", with: "%3E")
    }

    // MARK: HTML

    /// The page as one HTML file. Figures are read with `loadFigure` and inlined as base64 `data:` URIs;
    /// a figure that cannot be read is named in a visible note instead (the page is still written).
    public func html(timestamp: Date,
                     loadFigure: (String) throws -> Data = { try Data(contentsOf: URL(fileURLWithPath: $0)) }) -> String {
        var page = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>\(Self.escapeHTML(title))</title>
        <style>
        body { font-family: sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
        .timestamp { color: #666; }
        .cell { border-top: 1px solid #ddd; padding: 0.5rem 0; }
        .number { color: #888; font-size: 0.85rem; }
        pre { padding: 0.5rem; overflow-x: auto; }
        pre.command { background: #eef3f8; }
        pre.output { background: #f6f6f6; }
        figure { margin: 0.5rem 0; }
        figure img { max-width: 100%; }
        figcaption, .missing { color: #666; font-size: 0.85rem; }
        </style>
        </head>
        <body>
        <h1>\(Self.escapeHTML(title))</h1>
        <p class="timestamp">Generated \(Self.timestampText(timestamp))</p>

        """
        for (index, cell) in cells.enumerated() {
            page += "<section class=\"cell\">\n<div class=\"number\">[\(index + 1)]</div>\n"
            page += "<pre class=\"command\">\(Self.escapeHTML(cell.command))</pre>\n"
            let output = strippingTerminalEscapes(cell.output)
            if !output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                var body = output
                while body.hasSuffix("\n") { body.removeLast() }
                page += "<pre class=\"output\">\(Self.escapeHTML(body))</pre>\n"
            }
            for figure in cell.figures {
                let name = Self.escapeHTML(URL(fileURLWithPath: figure).lastPathComponent)
                if let data = try? loadFigure(figure) {
                    page += "<figure><img src=\"data:\(Self.mimeType(of: figure));base64,\(data.base64EncodedString())\" alt=\"\(name)\">"
                    page += "<figcaption>\(name)</figcaption></figure>\n"
                } else {
                    page += "<p class=\"missing\">figure not found: \(Self.escapeHTML(figure))</p>\n"
                }
            }
            page += "</section>\n"
        }
        page += "</body>\n</html>\n"
        return page
    }

    static func escapeHTML(_ text: String) -> String {
        escaped(text, replacing: ["&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"])
    }

    static func mimeType(of path: String) -> String {
        switch URL(fileURLWithPath: path).pathExtension.lowercased() {
        case "png": return "image/png"
        case "svg": return "image/svg+xml"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        default: return "application/octet-stream"
        }
    }

    // MARK: Files

    /// Writes the Markdown page and/or the HTML page (either may be nil), creating their folders.
    public func write(markdownTo markdownPath: String?, htmlTo htmlPath: String?, timestamp: Date) throws {
        var files: [DataFile] = []
        if let markdownPath {
            let folder = URL(fileURLWithPath: markdownPath).deletingLastPathComponent().path
            files.append(DataFile(path: markdownPath, contents: markdown(timestamp: timestamp, relativeTo: folder)))
        }
        if let htmlPath { files.append(DataFile(path: htmlPath, contents: html(timestamp: timestamp))) }
        try writeFiles(files)
    }
}

/// `file` relative to `folder`, both resolved against the current folder when relative
/// (`relativePath(from: "/a/b", to: "/a/c/d.png")` is `../c/d.png`).
public func relativePath(from folder: String, to file: String) -> String {
    let base = URL(fileURLWithPath: folder, isDirectory: true).standardizedFileURL.pathComponents
    let target = URL(fileURLWithPath: file).standardizedFileURL.pathComponents
    var common = 0
    while common < base.count, common < target.count - 1, base[common] == target[common] { common += 1 }
    let ups = Array(repeating: "..", count: base.count - common)
    return (ups + target[common...]).joined(separator: "/")
}
