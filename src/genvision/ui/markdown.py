"""The Markdown of genvision's own reports as HTML: headings, pipe tables, images, links, lists,
code, bold and paragraphs. Everything is escaped first; relative image and link targets are
served from the run's folder (``base``), other schemes are dropped."""

from __future__ import annotations

import html
import re

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _target(url: str, base: str) -> str | None:
    """A relative target under ``base``; ``#anchors`` kept; anything with a scheme or ``..`` dropped."""
    if url.startswith("#"):
        return url
    if ":" in url or url.startswith(("/", "\\")) or ".." in url.split("/"):
        return None
    return base + url


def inline(text: str, base: str) -> str:
    codes: list[str] = []

    def keep_code(m):
        codes.append(f"<code>{m.group(1)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    out = _CODE.sub(keep_code, html.escape(text, quote=True))

    def image(m):
        src = _target(html.unescape(m.group(2)), base)
        return f'<img alt="{m.group(1)}" src="{html.escape(src)}">' if src else m.group(1)

    def link(m):
        href = _target(html.unescape(m.group(2)), base)
        return f'<a href="{html.escape(href)}">{m.group(1)}</a>' if href else m.group(1)

    out = _IMAGE.sub(image, out)
    out = _LINK.sub(link, out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def render(text: str, base: str = "") -> str:
    lines = text.splitlines()
    out: list[str] = []
    para: list[str] = []
    i = 0

    def flush():
        if para:
            out.append("<p>" + " ".join(inline(p, base) for p in para) + "</p>")
            para.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(html.escape(lines[i]))
                i += 1
            out.append("<pre><code>" + "\n".join(block) + "</code></pre>")
        elif m := re.match(r"^(#{1,6})\s+(.*)$", stripped):
            flush()
            level = len(m.group(1))
            out.append(f"<h{level}>{inline(m.group(2), base)}</h{level}>")
        elif (
            stripped.startswith("|")
            and i + 1 < len(lines)
            and re.match(r"^\|[\s:|-]+\|$", lines[i + 1].strip())
        ):
            flush()
            head = _cells(stripped)
            rows = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            i -= 1
            th = "".join(f"<th>{inline(c, base)}</th>" for c in head)
            body = "".join("<tr>" + "".join(f"<td>{inline(c, base)}</td>" for c in r) + "</tr>" for r in rows)
            out.append(f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>")
        elif re.match(r"^[-*]\s+", stripped):
            flush()
            items = []
            while i < len(lines) and re.match(r"^[-*]\s+", lines[i].strip()):
                item = re.sub(r"^[-*]\s+", "", lines[i].strip())
                items.append(f"<li>{inline(item, base)}</li>")
                i += 1
            i -= 1
            out.append("<ul>" + "".join(items) + "</ul>")
        elif not stripped:
            flush()
        else:
            para.append(stripped)
        i += 1
    flush()
    return "\n".join(out)
