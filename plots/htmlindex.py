"""htmlindex - a static index.html for a run dir (report.md + every plot) or a compare dir
(compare.md + its plots). No server, no JavaScript, no network: open the file in a browser.

    import htmlindex
    htmlindex.write_index(run_dir, "report.md", title)       # -> run_dir/index.html

The markdown is rendered here, stdlib only, for the subset that report.py and compare.py
write: ATX headings, paragraphs, pipe tables, "- " lists, ``` fences, **bold**, `code`,
[links](x) and ![images](x), and <details>/<summary> lines. Everything else is escaped text.
Every plot under plots/ is shown as its PNG, linked to its SVG; plots the markdown already
shows inline are not repeated. Python >= 3.8.
"""

import html
import os
import re

__all__ = ["md_to_html", "write_index", "plot_files"]

_INLINE = re.compile(
    r"(?P<code>`[^`]+`)"
    r"|(?P<img>!\[(?P<ialt>[^\]]*)\]\((?P<isrc>[^)\s]+)\))"
    r"|(?P<link>\[(?P<ltext>[^\]]+)\]\((?P<lhref>[^)\s]+)\))"
    r"|(?P<bold>\*\*(?P<btext>.+?)\*\*)")
_DETAILS = re.compile(r"^\s*(<details>|</details>|<summary>[^<>]*</summary>)"
                      r"(?:\s*(<summary>[^<>]*</summary>))?\s*$")
_TABLE_SEP = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_SAFE_URL = re.compile(r"^(?![a-zA-Z][a-zA-Z0-9+.-]*:)|^https?://")


def _url(u):
    """A relative path or an http(s) URL, attribute-escaped; anything else (javascript:) '#'."""
    return html.escape(u if _SAFE_URL.match(u) else "#", quote=True)


def inline(text):
    """Markdown inline spans of one line -> HTML; the rest escaped."""
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos:m.start()], quote=False))
        if m.group("code"):
            out.append("<code>%s</code>" % html.escape(m.group("code")[1:-1], quote=False))
        elif m.group("img"):
            out.append('<img src="%s" alt="%s">' % (_url(m.group("isrc")),
                                                    html.escape(m.group("ialt"), quote=True)))
        elif m.group("link"):
            out.append('<a href="%s">%s</a>' % (_url(m.group("lhref")), inline(m.group("ltext"))))
        else:
            out.append("<strong>%s</strong>" % inline(m.group("btext")))
        pos = m.end()
    out.append(html.escape(text[pos:], quote=False))
    return "".join(out)


def _cells(line):
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    cells, cur, i = [], [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s) and s[i + 1] == "|":
            cur.append("|")
            i += 2
            continue
        if s[i] == "|":
            cells.append("".join(cur).strip())
            cur = []
        else:
            cur.append(s[i])
        i += 1
    cells.append("".join(cur).strip())
    return cells


def md_to_html(text):
    """The markdown subset described above -> an HTML fragment (a list of lines joined)."""
    lines = text.splitlines()
    out, para, i = [], [], 0

    def flush():
        if para:
            out.append("<p>%s</p>" % "<br>\n".join(inline(p) for p in para))
            para.clear()

    while i < len(lines):
        line = lines[i]
        st = line.strip()
        if st.startswith("```"):
            flush()
            j = i + 1
            body = []
            while j < len(lines) and not lines[j].strip().startswith("```"):
                body.append(lines[j])
                j += 1
            out.append("<pre><code>%s</code></pre>" % html.escape("\n".join(body), quote=False))
            i = j + 1
            continue
        if not st:
            flush()
            i += 1
            continue
        m = re.match(r"^(#{1,6})\s+(.*)$", st)
        if m:
            flush()
            n = len(m.group(1))
            anchor = re.sub(r"[^a-z0-9]+", "-", m.group(2).lower()).strip("-")
            out.append('<h%d id="%s">%s</h%d>' % (n, html.escape(anchor, quote=True),
                                                  inline(m.group(2)), n))
            i += 1
            continue
        m = _DETAILS.match(st)
        if m:
            flush()
            out.extend(g for g in m.groups() if g)
            i += 1
            continue
        if st.startswith("|") and i + 1 < len(lines) and _TABLE_SEP.match(lines[i + 1].strip()):
            flush()
            head = _cells(st)
            out.append("<table>")
            out.append("<thead><tr>%s</tr></thead>" % "".join("<th>%s</th>" % inline(c)
                                                              for c in head))
            out.append("<tbody>")
            j = i + 2
            while j < len(lines) and lines[j].strip().startswith("|"):
                cells = _cells(lines[j])
                cells += [""] * (len(head) - len(cells))
                out.append("<tr>%s</tr>" % "".join("<td>%s</td>" % inline(c) for c in cells))
                j += 1
            out.append("</tbody></table>")
            i = j
            continue
        if re.match(r"^[-*]\s+", st):
            flush()
            out.append("<ul>")
            j = i
            while j < len(lines) and re.match(r"^\s*[-*]\s+", lines[j]):
                out.append("<li>%s</li>" % inline(re.sub(r"^\s*[-*]\s+", "", lines[j])))
                j += 1
            out.append("</ul>")
            i = j
            continue
        para.append(st)
        i += 1
    flush()
    return "\n".join(out)


def plot_files(root):
    """[(stem, png or None, svg or None)] of root/plots/*.{png,svg}, paths relative to root."""
    pdir = os.path.join(root, "plots")
    try:
        names = sorted(os.listdir(pdir))
    except OSError:
        return []
    stems = {}
    for f in names:
        if f.endswith((".png", ".svg")) and os.path.isfile(os.path.join(pdir, f)):
            stems.setdefault(f[:-4], {})[f[-3:]] = "plots/" + f
    return [(s, d.get("png"), d.get("svg")) for s, d in sorted(stems.items())]


_STYLE = """body{font-family:sans-serif;max-width:72em;margin:1em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:90%}
th,td{border:1px solid #bbb;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#eee}code{background:#f4f4f4;padding:0 .2em}
pre{background:#f4f4f4;padding:.5em;overflow-x:auto}img{max-width:100%;height:auto}
figure{margin:1em 0}figcaption{font-size:90%}"""


def render(title, md_text, plots, note=None):
    """The whole page as a string: the markdown, then every plot not already shown inline."""
    body = md_to_html(md_text)
    shown = set(re.findall(r'<img src="([^"]+)"', body))
    figs = []
    for stem, png, svg in plots:
        if png and html.escape(png, quote=True) in shown:
            continue
        if png:
            img = '<img src="%s" alt="%s">' % (_url(png), html.escape(stem, quote=True))
            inner = '<a href="%s">%s</a>' % (_url(svg), img) if svg else img
        else:
            inner = '<a href="%s">%s (SVG)</a>' % (_url(svg), html.escape(stem, quote=False))
        cap = html.escape(stem, quote=False)
        if svg:
            cap += ' — <a href="%s">SVG</a>' % _url(svg)
        figs.append("<figure>%s<figcaption>%s</figcaption></figure>" % (inner, cap))
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             "<title>%s</title>" % html.escape(title, quote=False),
             "<style>%s</style>" % _STYLE, "</head>", "<body>"]
    if note:
        parts.append('<p class="note">%s</p>' % inline(note))
    parts.append(body)
    if figs:
        parts += ['<h2 id="all-plots">All plots</h2>'] + figs
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def write_index(root, md_name, title):
    """Write root/index.html from root/<md_name> and root/plots/; return its path.
    A missing markdown file gives a page that says so. Raises OSError when it cannot write."""
    try:
        with open(os.path.join(root, md_name), encoding="utf-8") as f:
            md_text = f.read()
        note = "Source: [%s](%s)." % (md_name, md_name)
    except OSError:
        md_text = ""
        note = "No %s in this directory." % md_name
    page = render(title, md_text, plot_files(root), note)
    path = os.path.join(root, "index.html")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(path + ".tmp", path)
    return path
