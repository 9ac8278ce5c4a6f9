"""report.html: the comparison as one self-contained HTML file (every image a base64 data URI).

A small inline script checks the page in a browser: after the window's load event it writes
``images-ok:N/M errors:K`` (N of the M images decoded, K script errors) into the hidden
``<div id="load-check">`` (the tab keeps the report's title), and every uncaught error, failed resource or
console.error call is written into ``<pre id="js-errors">``. Headless Chromium with --dump-dom can then verify
the file without any devtools protocol.
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
    var check = document.getElementById('load-check');
    if (check) { check.textContent = 'images-ok:' + ok + '/' + imgs.length + ' errors:' + errors.length; }
    var el = document.getElementById('js-errors');
    if (el) { el.textContent = errors.join('\\n'); }
  });
})();
</script>"""

STYLE = """<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 82em; padding: 0 1.5em; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2em; } p.meta { color: #666; font-size: 0.85em; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; font-variant-numeric: tabular-nums; }
th, td { padding: 0.3em 0.5em; text-align: right; border-bottom: 1px solid #ddd; }
table.metrics { font-size: 0.82em; } div.scroll { overflow-x: auto; }
thead th { border-bottom: 2px solid #555; vertical-align: bottom; font-weight: 600; max-width: 10.5em; }
td:first-child, th:first-child { text-align: left; white-space: nowrap; }
table.settings td:nth-child(2), table.settings th:nth-child(2) { text-align: left; }
tr.reference td { color: #555; font-style: italic; background: #f7f7f7; }
p.legend, p.same, ul.notes { font-size: 0.85em; color: #444; max-width: 70em; }
ul.notes { padding-left: 1.2em; } ul.notes li { margin: 0.15em 0; }
figure { margin: 1.5em 0; } figcaption { font-size: 0.9em; color: #444; max-width: 60em; }
img { max-width: 100%; image-rendering: pixelated; }
pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; max-height: 30em; font-size: 0.8em; }
#js-errors:empty { display: none; } #js-errors { color: #a00; }
</style>"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _img(png: bytes, alt: str) -> str:
    return f'<img src="{data_uri(png)}" alt="{html.escape(alt)}">'


def _keep_arrow(header: str) -> str:
    """A header's trailing arrow stays on the line of its last word."""
    return header.replace(" \u2193", "&nbsp;\u2193").replace(" \u2191", "&nbsp;\u2191")


def html_table(headers: list[str], rows: list[list[str]], css: str = "", marked: list[bool] | None = None) -> str:
    """A table; rows where ``marked`` is true get class "reference"."""
    head = "".join(f"<th>{_keep_arrow(html.escape(h))}</th>" for h in headers)
    marked = marked or [False] * len(rows)
    body = "".join(("<tr class=\"reference\">" if m else "<tr>") + "".join(f"<td>{html.escape(c)}</td>" for c in row)
                   + "</tr>" for row, m in zip(rows, marked))
    cls = f' class="{css}"' if css else ""
    return f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _same(table) -> list[str]:
    if not table.constant:
        return []
    return ['<p class="same">Same in every row: ' + "; ".join(html.escape(c) for c in table.constant) + ".</p>"]


def _tables(report) -> list[str]:
    e = html.escape
    parts = ["<h2>Metrics</h2>", html_table(report.headers, report.rows, "metrics", report.reference),
             f'<p class="legend">{e(report.legend)}</p>'] + _same(report.table)
    if report.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in report.notes) + "</ul>")
    parts += ["<h3>Rows</h3>", html_table(report.settings.headers, report.settings.rows, "settings",
                                          report.reference)] + _same(report.settings)
    parts.append("<h3>Protocol</h3><ul>" + "".join(f"<li>{e(line)}</li>" for line in report.protocol) + "</ul>")
    return parts


def render_html(report) -> str:
    """The whole page for a translab.report.compare.Report."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(report.title)}</title>",
             CHECK_SCRIPT, STYLE, "</head><body>", '<pre id="js-errors"></pre>', '<div id="load-check" hidden></div>',
             f"<h1>{e(report.title)}</h1>",
             f'<p class="meta">Created {e(report.created)} from: '
             + ", ".join(f"<code>{e(r)}</code>" for r in report.runs) + "</p>"]
    parts += _tables(report)
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
