"""report.html: the comparison as one self-contained HTML file (every image a base64 data URI).

A small inline script checks the page in a browser: after the window's load event it sets
``document.title`` to ``images-ok:N/M errors:K`` (N of the M images decoded, K script errors), and every
uncaught error, failed resource or console.error call is written into ``<pre id="js-errors">``. Headless
Chromium with --dump-dom can then verify the file without any devtools protocol.
"""
from __future__ import annotations

import base64
import html

CHECK_SCRIPT = """<script>
(function () {
  var errors = [];
  function note(msg) {
    errors.push(String(msg));
    var el = document.getElementById('js-errors');
    if (el) { el.textContent = errors.join('\\n'); }
  }
  window.addEventListener('error', function (e) {
    var t = e.target;
    if (t && t !== window && t.tagName) {
      note('failed to load ' + t.tagName + ' ' + String(t.src || '').slice(0, 60));
    }
    else { note('error: ' + e.message); }
  }, true);
  var consoleError = console.error;
  console.error = function () {
    note('console.error: ' + Array.prototype.join.call(arguments, ' '));
    return consoleError.apply(console, arguments);
  };
  window.addEventListener('load', function () {
    var imgs = document.images, ok = 0;
    for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; } }
    document.title = 'images-ok:' + ok + '/' + imgs.length + ' errors:' + errors.length;
    var el = document.getElementById('js-errors');
    if (el) { el.textContent = errors.join('\\n'); }
  });
})();
</script>"""

STYLE = """<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.5em; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5em 0; } figcaption { font-size: 0.9em; color: #444; max-width: 60em; }
img { max-width: 100%; image-rendering: pixelated; }
pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; max-height: 30em; font-size: 0.8em; }
#js-errors:empty { display: none; } #js-errors { color: #a00; }
</style>"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _img(png: bytes, alt: str) -> str:
    return f'<img src="{data_uri(png)}" alt="{html.escape(alt)}">'


def html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report) -> str:
    """The whole page for a translab.report.compare.Report."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(report.title)}</title>",
             CHECK_SCRIPT, STYLE, "</head><body>", '<pre id="js-errors"></pre>', f"<h1>{e(report.title)}</h1>",
             f"<p>Created {e(report.created)} from: " + ", ".join(f"<code>{e(r)}</code>" for r in report.runs) + "</p>",
             "<h2>Metrics</h2>", html_table(report.headers, report.rows), "<h3>Protocol</h3><ul>"]
    parts += [f"<li>{e(line)}</li>" for line in report.protocol]
    parts.append("</ul>")
    if report.notes:
        parts.append("<h3>Not available</h3><ul>" + "".join(f"<li>{e(n)}</li>" for n in report.notes) + "</ul>")
    parts.append("<h2>Figures</h2>")
    for fig in report.figures:
        parts.append(f"<figure><h3>{e(fig.title)}</h3>{_img(fig.png, fig.title)}"
                     f"<figcaption>{e(fig.caption)}</figcaption></figure>")
    if report.analysis:
        parts.append("<h2>Analysis</h2>")
        for item in report.analysis:
            parts.append(f"<h3>{e(item.run)}: {e(item.name)}</h3>")
            if item.kind == "png":
                parts.append(_img(item.png, item.name))
            else:
                parts.append(f"<pre>{e(item.text)}</pre>" + ("<p>(truncated)</p>" if item.truncated else ""))
    parts.append("</body></html>")
    return "\n".join(parts)
