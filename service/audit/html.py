"""HTML building blocks of the audit report page: escaped cells, tables, badges and SVG axes."""

from html import escape
from typing import Any

FAILED_ROW = ' class="failed"'


class Markup(str):
    """Already-escaped HTML that a table cell passes through unchanged."""


def num(value: Any, signed: bool = False) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:+d}" if signed else str(value)
    if isinstance(value, float):
        return f"{value:+.6g}" if signed else f"{value:.6g}"
    return str(value)


def code(value: Any) -> Markup:
    return Markup(f"<code>{escape(str(value))}</code>") if value else Markup("—")


def badge(passed: bool, text: str) -> Markup:
    return Markup(f'<span class="badge {"pass" if passed else "fail"}">{escape(text)}</span>')


def cell(value: Any) -> str:
    if isinstance(value, Markup):
        return f"<td>{value}</td>"
    css = ' class="num"' if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    return f"<td{css}>{escape(num(value))}</td>"


def table(headers: list[str], rows: list[list[Any]], failed: list[bool] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    marks = failed or [False] * len(rows)
    lines = [f"<tr{FAILED_ROW if bad else ''}>{''.join(cell(v) for v in row)}</tr>" for row, bad in zip(rows, marks)]
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(lines) + "\n</tbody>\n</table>"


def facts(rows: list[tuple[str, Any]]) -> str:
    lines = [f"<tr><th>{escape(name)}</th>{cell(value)}</tr>" for name, value in rows]
    return "<table>\n<tbody>\n" + "\n".join(lines) + "\n</tbody>\n</table>"


def section(title: str, content: str) -> str:
    return f"<section>\n<h2>{escape(title)}</h2>\n{content}\n</section>"


def scale(lo: float, hi: float, out_lo: float, out_hi: float):
    return lambda v: out_lo + (v - lo) / (hi - lo) * (out_hi - out_lo)


def svg(label: str, width: int, height: int, parts: list[str]) -> str:
    size = f'width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
    head = f'<svg xmlns="http://www.w3.org/2000/svg" {size} role="img" aria-label="{escape(label)}">'
    return f"{head}<title>{escape(label)}</title>\n" + "\n".join(parts) + "\n</svg>"


def y_axis(lo: float, hi: float, left: int, right: int, top: int, bottom: int):
    """A value axis with five gridlines; returns the value-to-pixel scale and the SVG parts."""
    hi = hi if hi > lo else lo + 1.0
    y = scale(lo, hi, bottom, top)
    parts = [f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#555" />']
    for v in (lo + (hi - lo) * i / 4 for i in range(5)):
        parts.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{right}" y2="{y(v):.1f}" stroke="#e3e6ea" />')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.3g}</text>')
    return y, parts


def legend(colours: dict[str, str], x: int, top: int) -> list[str]:
    parts = []
    for i, (name, colour) in enumerate(colours.items()):
        parts.append(f'<rect x="{x}" y="{top + 18 * i}" width="12" height="12" fill="{colour}" />')
        parts.append(f'<text x="{x + 18}" y="{top + 18 * i + 10}">{escape(name)}</text>')
    return parts
