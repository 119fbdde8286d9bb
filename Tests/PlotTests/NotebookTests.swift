// The notebook transcript: exact Markdown, escaped self-contained HTML, relative links, files on disk.
import Foundation
import XCTest
@testable import Plot

final class NotebookTests: XCTestCase {
    /// 2025-01-02T03:04:05Z.
    let timestamp = Date(timeIntervalSince1970: 1_735_787_045)

    func sample() -> Notebook {
        var notebook = Notebook(title: "Study <FQAT>")
        notebook.append(command: "train fqat steps=10", output: "\u{1B}[1mdone\u{1B}[0m\n", figures: ["/work/runs/plots/loss.png"])
        notebook.append(command: "echo \"```\"", output: "a < b && c\n")
        notebook.append(NotebookCell(command: "landscape", figures: ["/work/runs/fig (1).png", "/work/other/s.svg"]))
        return notebook
    }

    func testTimestampIsUTCISO8601() {
        XCTAssertEqual(Notebook.timestampText(timestamp), "2025-01-02T03:04:05Z")
    }

    func testMarkdownExactText() {
        XCTAssertEqual(sample().markdown(timestamp: timestamp, relativeTo: "/work/runs"), """
        # Study <FQAT>

        _Generated 2025-01-02T03:04:05Z_

        ## [1]

        ```fqs
        train fqat steps=10
        ```

        ```text
        done
        ```

        ![loss.png](plots/loss.png)

        ## [2]

        ````fqs
        echo "```"
        ````

        ```text
        a < b && c
        ```

        ## [3]

        ```fqs
        landscape
        ```

        ![fig (1).png](fig%20%281%29.png)

        ![s.svg](../other/s.svg)

        """)
    }

    func testHTMLInlinesFiguresAndEscapesText() {
        let html = sample().html(timestamp: timestamp) { path in
            if path.hasSuffix("loss.png") { return Data([0x89, 0x50]) }
            if path.hasSuffix("s.svg") { return Data("<svg/>".utf8) }
            throw CocoaError(.fileNoSuchFile)
        }
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Study &lt;FQAT&gt;</title>"), html)
        XCTAssertTrue(html.contains("<h1>Study &lt;FQAT&gt;</h1>\n<p class=\"timestamp\">Generated 2025-01-02T03:04:05Z</p>"))
        XCTAssertTrue(html.contains("<pre class=\"command\">train fqat steps=10</pre>\n<pre class=\"output\">done</pre>"), html)
        XCTAssertTrue(html.contains("<img src=\"data:image/png;base64,iVA=\" alt=\"loss.png\"><figcaption>loss.png</figcaption>"), html)
        XCTAssertTrue(html.contains("<img src=\"data:image/svg+xml;base64,\(Data("<svg/>".utf8).base64EncodedString())\" alt=\"s.svg\">"))
        XCTAssertTrue(html.contains("<pre class=\"command\">echo &quot;```&quot;</pre>\n<pre class=\"output\">a &lt; b &amp;&amp; c</pre>"), html)
        XCTAssertTrue(html.contains("<p class=\"missing\">figure not found: /work/runs/fig (1).png</p>"), html)
        XCTAssertFalse(html.contains("\u{1B}"), "terminal escapes are removed")
        XCTAssertTrue(html.hasSuffix("</section>\n</body>\n</html>\n"))
        XCTAssertEqual(html.components(separatedBy: "<section class=\"cell\">").count - 1, 3)
    }

    /// Escaping works on Unicode scalars: a combining mark after `<` or `*` (one Character with it) must
    /// not let the special scalar through raw (it did while the loops went by Character).
    func testEscapingSeesSpecialScalarsUnderCombiningMarks() {
        XCTAssertEqual(Notebook.escapeHTML("a <\u{338}b> & 'c'"), "a &lt;\u{338}b&gt; &amp; &#39;c&#39;")
        XCTAssertEqual(Notebook.escapeMarkdownText("*\u{301}x_[1]\\`"), "\\*\u{301}x\\_\\[1\\]\\\\\\`")
    }

    func testRelativePaths() {
        XCTAssertEqual(relativePath(from: "/a/b", to: "/a/b/c.png"), "c.png")
        XCTAssertEqual(relativePath(from: "/a/b", to: "/a/c/d.png"), "../c/d.png")
        XCTAssertEqual(relativePath(from: "/a/b/", to: "/x.png"), "../../x.png")
        XCTAssertEqual(relativePath(from: "/a/./b", to: "/a/b/../b/c.png"), "c.png")
    }

    func testWritesBothPagesNextToTheirFigures() throws {
        let folder = (NSTemporaryDirectory() as NSString).appendingPathComponent("fqat-notebook-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: "\(folder)/plots", withIntermediateDirectories: true)
        let png = Data(GnuplotRenderTests.pngSignature + [0, 0, 0, 0])
        try png.write(to: URL(fileURLWithPath: "\(folder)/plots/a.png"))
        var notebook = Notebook(title: "T")
        notebook.append(command: "plot a", output: "ok", figures: ["\(folder)/plots/a.png"])
        try notebook.write(markdownTo: "\(folder)/notes/page.md", htmlTo: "\(folder)/page.html", timestamp: timestamp)
        let markdown = try String(contentsOfFile: "\(folder)/notes/page.md", encoding: .utf8)
        XCTAssertTrue(markdown.contains("![a.png](../plots/a.png)"), markdown)
        let html = try String(contentsOfFile: "\(folder)/page.html", encoding: .utf8)
        XCTAssertTrue(html.contains("data:image/png;base64,\(png.base64EncodedString())"), html)
    }
}
