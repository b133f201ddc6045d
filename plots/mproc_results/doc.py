"""doc - the document model report.md and index.html are both rendered from (and compare.md
with its index.html): a Doc of Sections, each a heading, a body and the plots that belong to
it. Neither renderer parses the other's output.

    d = doc.Doc("mproc run: host, 2026-12-07T03:00:00Z")
    d.intro += ["Machine: **quiet**.", ""]
    s = d.section("Machine")
    s.body += doc.table(["key", "value"], [["CPU", "EPYC"]])
    s.plots.append(doc.Plot("baseline_latency.gnuplot", "plots/x.png", "plots/x.svg"))
    doc.render_md(d)                  # report.md
    doc.render_html(d)                # index.html: no server, no JavaScript, no network

A body is a list of items: a str is a line of a paragraph (inline Markdown: `code`, **bold**,
[text](href), ![alt](src); "" ends the paragraph), or a block: Table, Bullets, Code, Details,
Plot. Helpers (table, bullets, code, details) return one-block lists so that
`lines += table(...)` reads as it did when sections were lines of Markdown.
Stdlib only; Python >= 3.8.
"""

import html
import os
import re

__all__ = ["Doc", "Section", "Table", "Bullets", "Code", "Details", "Plot", "table", "bullets",
           "code", "details", "md_escape", "render_md", "render_md_items", "render_html",
           "plot_files", "inline_html"]


def md_escape(s):
    """A table cell's text with its pipes escaped."""
    return str(s).replace("|", "\\|")


class Table:
    """header: [str]; rows: [[str]] (inline Markdown; pipes escaped when written)."""

    def __init__(self, header, rows, escape_header=False):
        self.header = [str(h) for h in header]
        self.rows = [[str(c) for c in r] for r in rows]
        self.escape_header = escape_header


class Bullets:
    """items: [str or (str, [str])] (an item with sub-items)."""

    def __init__(self, items):
        self.items = list(items)


class Code:
    def __init__(self, lines):
        self.lines = list(lines)


class Details:
    """A collapsed part: summary line and a body (items, as a section's)."""

    def __init__(self, summary, body):
        self.summary = summary
        self.body = list(body)


class Plot:
    """One drawn plot: stem ("pool_cpu_speedup.gnuplot"), png and svg paths relative to the
    document (either may be None)."""

    def __init__(self, stem, png, svg):
        self.stem, self.png, self.svg = stem, png, svg


class Section:
    def __init__(self, title, body=None, level=2, plots=None):
        self.title = title
        self.body = list(body or [])
        self.level = level
        self.plots = list(plots or [])
        self.subsections = []

    def section(self, title, body=None):
        s = Section(title, body, self.level + 1)
        self.subsections.append(s)
        return s


class Doc:
    def __init__(self, title):
        self.title = title
        self.intro = []
        self.sections = []

    def section(self, title, body=None, plots=None):
        s = Section(title, body, plots=plots)
        self.sections.append(s)
        return s


def table(header, rows, escape_header=False):
    return [Table(header, rows, escape_header)]


def bullets(items):
    return [Bullets(items)] if items else []


def code(lines):
    return [Code(lines)]


def details(summary, body):
    return [Details(summary, body)]


# ------------------------------------------------------------------------------------------
# Markdown

def _md_block(b):
    if isinstance(b, Table):
        head = [md_escape(h) for h in b.header] if b.escape_header else b.header
        out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in b.header) + "|"]
        return out + ["| " + " | ".join(md_escape(c) for c in r) + " |" for r in b.rows]
    if isinstance(b, Bullets):
        out = []
        for it in b.items:
            text, subs = (it, []) if isinstance(it, str) else it
            out.append("- " + text)
            out += ["  - " + s for s in subs]
        return out
    if isinstance(b, Code):
        return ["```"] + b.lines + ["```"]
    if isinstance(b, Details):
        return ["<details><summary>%s</summary>" % html.escape(b.summary, quote=False), ""] + \
            render_md_items(b.body) + ["", "</details>"]
    if isinstance(b, Plot):
        links = ", ".join("[%s](%s)" % (os.path.basename(p), p) for p in (b.png, b.svg) if p)
        out = ["- **%s**: %s" % (b.stem, links)]
        return out
    raise TypeError("not a block: %r" % (b,))


def render_md_items(items):
    """A body as Markdown lines."""
    out = []
    for it in items:
        out += [it] if isinstance(it, str) else _md_block(it)
    return out


def _md_plots(plots):
    if not plots:
        return []
    out = [""]
    for p in plots:
        out += _md_block(p)
    pngs = [p for p in plots if p.png]
    if pngs:
        out += [""] + ["![%s](%s)" % (os.path.basename(p.png), p.png) for p in pngs]
    return out + [""]


def _md_section(s):
    out = ["#" * s.level + " " + s.title, ""] + render_md_items(s.body)
    out += _md_plots(s.plots)
    for sub in s.subsections:
        out += _md_section(sub)
    if out[-1] != "":
        out.append("")
    return out


def render_md(d):
    out = ["# " + d.title, ""] + render_md_items(d.intro)
    if out[-1] != "":
        out.append("")
    for s in d.sections:
        out += _md_section(s)
    return "\n".join(out)


# ------------------------------------------------------------------------------------------
# HTML

_INLINE = re.compile(
    r"(?P<code>`[^`]+`)"
    r"|(?P<img>!\[(?P<ialt>[^\]]*)\]\((?P<isrc>[^)\s]+)\))"
    r"|(?P<link>\[(?P<ltext>[^\]]+)\]\((?P<lhref>[^)\s]+)\))"
    r"|(?P<bold>\*\*(?P<btext>.+?)\*\*)")
_SAFE_URL = re.compile(r"^(?![a-zA-Z][a-zA-Z0-9+.-]*:)|^https?://")


def _url(u):
    """A relative path or an http(s) URL, attribute-escaped; anything else (javascript:) '#'."""
    return html.escape(u if _SAFE_URL.match(u) else "#", quote=True)


def inline_html(text):
    """The inline spans of one text (`code`, **bold**, [link](x), ![img](x)) -> HTML; the rest
    escaped."""
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos:m.start()], quote=False))
        if m.group("code"):
            out.append("<code>%s</code>" % html.escape(m.group("code")[1:-1], quote=False))
        elif m.group("img"):
            out.append('<img src="%s" alt="%s">' % (_url(m.group("isrc")),
                                                    html.escape(m.group("ialt"), quote=True)))
        elif m.group("link"):
            out.append('<a href="%s">%s</a>' % (_url(m.group("lhref")),
                                                inline_html(m.group("ltext"))))
        else:
            out.append("<strong>%s</strong>" % inline_html(m.group("btext")))
        pos = m.end()
    out.append(html.escape(text[pos:], quote=False))
    return "".join(out)


def _anchor(title):
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _html_figure(p):
    """A plot: its PNG as a link to its SVG (the SVG alone where there is no PNG)."""
    if p.png:
        img = '<img src="%s" alt="%s">' % (_url(p.png), html.escape(p.stem, quote=True))
        inner = '<a href="%s">%s</a>' % (_url(p.svg), img) if p.svg else img
    else:
        inner = '<a href="%s">%s (SVG)</a>' % (_url(p.svg), html.escape(p.stem, quote=False))
    cap = html.escape(p.stem, quote=False)
    if p.svg:
        cap += ' — <a href="%s">SVG</a>' % _url(p.svg)
    return "<figure>%s<figcaption>%s</figcaption></figure>" % (inner, cap)


def _html_block(b):
    if isinstance(b, Table):
        out = ["<table>", "<thead><tr>%s</tr></thead>" % "".join(
            "<th>%s</th>" % inline_html(h) for h in b.header), "<tbody>"]
        for r in b.rows:
            cells = r + [""] * (len(b.header) - len(r))
            out.append("<tr>%s</tr>" % "".join("<td>%s</td>" % inline_html(c) for c in cells))
        return out + ["</tbody></table>"]
    if isinstance(b, Bullets):
        out = ["<ul>"]
        for it in b.items:
            text, subs = (it, []) if isinstance(it, str) else it
            sub = "<ul>%s</ul>" % "".join("<li>%s</li>" % inline_html(s) for s in subs) \
                if subs else ""
            out.append("<li>%s%s</li>" % (inline_html(text), sub))
        return out + ["</ul>"]
    if isinstance(b, Code):
        return ["<pre><code>%s</code></pre>" % html.escape("\n".join(b.lines), quote=False)]
    if isinstance(b, Details):
        return ["<details><summary>%s</summary>" % html.escape(b.summary, quote=False)] + \
            _html_items(b.body) + ["</details>"]
    if isinstance(b, Plot):
        return [_html_figure(b)]
    raise TypeError("not a block: %r" % (b,))


def _html_items(items):
    out, para = [], []

    def flush():
        if para:
            out.append("<p>%s</p>" % "<br>\n".join(inline_html(p) for p in para))
            para.clear()

    for it in items:
        if isinstance(it, str):
            if it.strip():
                para.append(it.strip())
            else:
                flush()
            continue
        flush()
        out += _html_block(it)
    flush()
    return out


def _html_section(s):
    out = ['<section id="%s">' % html.escape(_anchor(s.title), quote=True),
           "<h%d>%s</h%d>" % (s.level, inline_html(s.title), s.level)]
    out += _html_items(s.body)
    if s.plots:
        out += ['<div class="plots">'] + [_html_figure(p) for p in s.plots] + ["</div>"]
    for sub in s.subsections:
        out += _html_section(sub)
    return out + ["</section>"]


_STYLE = """body{font-family:sans-serif;max-width:72em;margin:1em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:90%}
th,td{border:1px solid #bbb;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#eee}code{background:#f4f4f4;padding:0 .2em}
pre{background:#f4f4f4;padding:.5em;overflow-x:auto}img{max-width:100%;height:auto}
.plots{display:flex;flex-wrap:wrap;gap:1em}.plots figure{flex:1 1 30em;max-width:48em}
figure{margin:1em 0}figcaption{font-size:90%}"""


def render_html(d, note=None):
    """The whole page: the same title, intro and sections as render_md, each section's plots
    beside it (PNG linked to its SVG); a table of contents after the intro."""
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             "<title>%s</title>" % html.escape(d.title, quote=False),
             "<style>%s</style>" % _STYLE, "</head>", "<body>",
             "<h1>%s</h1>" % inline_html(d.title)]
    if note:
        parts.append('<p class="note">%s</p>' % inline_html(note))
    parts += _html_items(d.intro)
    if d.sections:
        parts.append('<nav><ul>%s</ul></nav>' % "".join(
            '<li><a href="#%s">%s</a></li>' % (html.escape(_anchor(s.title), quote=True),
                                               inline_html(s.title)) for s in d.sections))
    for s in d.sections:
        parts += _html_section(s)
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def plot_files(root):
    """[Plot] of root/plots/*.{png,svg}, one per stem, paths relative to root, sorted."""
    pdir = os.path.join(root, "plots")
    try:
        names = sorted(os.listdir(pdir))
    except OSError:
        return []
    stems = {}
    for f in names:
        if f.endswith((".png", ".svg")) and os.path.isfile(os.path.join(pdir, f)):
            stems.setdefault(f[:-4], {})[f[-3:]] = "plots/" + f
    return [Plot(s, d.get("png"), d.get("svg")) for s, d in sorted(stems.items())]
