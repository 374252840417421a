"""A report as a document: sections of text, tables and images, written as markdown, self-contained HTML (images
embedded) and one CSV per table. Knows nothing of experiments: report.py decides what the sections hold."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tuner import storage


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)  # ("text", str) | ("table", name, DataFrame) | ("image", file, caption)

    def text(self, value: str) -> None:
        self.blocks.append(("text", value))

    def table(self, name: str, frame: pd.DataFrame) -> None:
        self.blocks.append(("table", name, frame))

    def image(self, file: str, caption: str) -> None:
        self.blocks.append(("image", file, caption))


def write_document(title: str, sections: list[Section], out: Path) -> None:
    """out/report.md, out/report.html and out/tables/<name>.csv; the images must be in `out` already."""
    _write_tables(sections, out)
    _write(out / "report.md", _markdown(title, sections))
    _write(out / "report.html", _html(title, sections, out))


def _write_tables(sections: list[Section], out: Path) -> None:
    for section in sections:
        for block in section.blocks:
            if block[0] == "table":
                _write(out / "tables" / f"{block[1]}.csv", block[2].to_csv(index=False, lineterminator="\n"))


def _markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if block[0] == "text":
                lines += [block[1], ""]
            elif block[0] == "table":
                lines += [_markdown_table(block[2]), "", f"(CSV: `tables/{block[1]}.csv`)", ""]
            else:
                lines += [f"![{block[2]}]({block[1]})", ""]
    return "\n".join(lines)


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
.table { overflow-x: auto; margin: 1em 0 0.2em; }  /* a wide table scrolls on its own, not the whole page */
.csv { color: #555; font-size: 12px; margin-top: 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td:first-child, td:last-child { text-align: left; }
td:last-child { white-space: normal; min-width: 12em; }
img { max-width: 100%; display: block; margin: 1em 0; } figcaption { color: #555; font-size: 13px; }
"""


def _html(title: str, sections: list[Section], out: Path) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            if block[0] == "text":
                parts.append(f"<p>{_inline(block[1])}</p>")
            elif block[0] == "table":
                parts.append(f"<div class='table'>{block[2].to_html(index=False, escape=True, border=0)}</div>"
                             f"<p class='csv'>CSV: <code>tables/{html.escape(block[1])}.csv</code></p>")
            else:
                data = base64.b64encode((out / block[1]).read_bytes()).decode()
                parts.append(f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(block[2])}'>"
                             f"<figcaption>{html.escape(block[2])}</figcaption></figure>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _inline(text: str) -> str:
    """The little markdown the texts use: `code`, **bold** and *italic*."""
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    escaped = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"\*([^*]+)\*", r"<i>\1</i>", escaped)


def _write(path: Path, text: str) -> None:
    storage.write_text(str(path), text)  # atomic, and as readable as any new file (the umask decides)
