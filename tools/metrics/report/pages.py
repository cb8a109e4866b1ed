"""What the static pages share: PNG saving, HTML tables, the style sheet and the
navigation between pages. Every page opens from disk with no server and no
remote asset."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

BLUE = "#4C72B0"
ORANGE = "#DD8452"
GREEN = "#55A868"
RED = "#C44E52"
PURPLE = "#8172B3"
GREY = "#8C8C8C"
_DPI = 100

#: Where the build dashboard's navigation takes links to further pages.
NAV_MARK = "<!-- pages -->"

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
nav{margin:.5em 0 1em}nav a{margin-right:1.2em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td,th:first-child{text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:0 2em}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}
.muted{color:#666;font-size:.9em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:10px;margin:.6em 0}
.card{border:1px solid #ddd;border-left:6px solid #8C8C8C;border-radius:6px;padding:8px 10px;background:#fafafa}
.card h3{margin:0 0 .3em;font-size:1em}.card dl{margin:0;display:grid;grid-template-columns:auto auto;gap:1px 8px}
.card dt{color:#666;font-size:.85em}.card dd{margin:0;text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;border-radius:4px;padding:0 6px;color:#fff;font-size:.8em;background:#8C8C8C}
.success,.PROMOTE{border-left-color:#55A868}.badge.success,.badge.PROMOTE{background:#55A868}
.failed,.ROLL_BACK,.FAILED{border-left-color:#C44E52}.badge.failed,.badge.ROLL_BACK,.badge.FAILED{background:#C44E52}
.missing,.INCONCLUSIVE{border-left-color:#DD8452}.badge.missing,.badge.INCONCLUSIVE{background:#DD8452}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:.6em 0}.tile{border:1px solid #ddd;border-radius:6px;padding:6px 12px;min-width:130px}
.tile b{display:block;font-size:1.4em;font-variant-numeric:tabular-nums}.tile span{color:#666;font-size:.85em}"""


def save_png(fig: Any, path: Path) -> str:
    """Writes the figure without a timestamp (same data, same bytes); returns its file name."""
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI, metadata={"Software": None})
    plt.close(fig)
    return path.name


def fmt(value: Any) -> str:
    """A figure as shown: four significant digits for floats, integers as they are."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in sorted(value.items())) or "-"
    return str(value)


def cell(value: Any, key: str = "") -> str:
    """A table cell; `key` (the value's dotted path in the source JSON) lets tests
    compare what is shown with the data."""
    attr = f' data-key="{html.escape(key)}"' if key else ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        attr += ' class="num"'
    return f"<td{attr}>{html.escape(fmt(value))}</td>"


def table(headers: list[str], rows: list[list[Any]], table_id: str = "") -> str:
    """Rows of plain values, or of already rendered `<td>` strings (from `cell`)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(c if isinstance(c, str) and c.startswith("<td") else cell(c) for c in row) + "</tr>"
        for row in rows
    )
    attr = f' id="{html.escape(table_id)}"' if table_id else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figures(images: list[tuple[str, str]], level: int = 2) -> str:
    """Each (title, PNG file name) under a heading of `level`."""
    return "".join(
        f'<h{level}>{html.escape(title)}</h{level}><img src="{html.escape(name)}" alt="{html.escape(title)}">'
        for title, name in images
    )


def tiles(figures: list[tuple[str, str]]) -> str:
    """Headline figures, (what, value as shown), in large type."""
    return '<div class="tiles">' + "".join(
        f'<div class="tile"><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>' for k, v in figures) + "</div>"


def seconds(value: float) -> str:
    """A duration with a unit that keeps two digits or more: "12.3 s", "45 ms"."""
    return f"{value:.1f} s" if value >= 0.1 or value == 0 else f"{1000 * value:.0f} ms"


def percent(fraction: float | None, signed: bool = False) -> str:
    if fraction is None or (isinstance(fraction, float) and math.isnan(fraction)):
        return "-"
    return f"{100 * fraction:{'+' if signed else ''}.1f} %"


def document(title: str, nav: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{CSS}</style></head>
<body><h1>{html.escape(title)}</h1>
<nav>{nav}</nav>
{body}
</body></html>
"""


def link(href: str, text: str) -> str:
    return f'<a href="{html.escape(href)}">{html.escape(text)}</a>'


def add_nav_link(index: Path, href: str, text: str) -> bool:
    """Adds a link to `href` to the navigation of the page `index` (once); False when
    `index` does not exist or has no navigation."""
    if not index.is_file():
        return False
    page = index.read_text()
    anchor = f'href="{html.escape(href)}"'
    if anchor in page:
        return True
    if NAV_MARK not in page:
        return False
    index.write_text(page.replace(NAV_MARK, link(href, text) + NAV_MARK, 1))
    return True
