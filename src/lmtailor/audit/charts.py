"""The report's drawing kit: escaping and number formats, notes, and SVG bar charts, histograms and scatter
plots drawn here, so a page (and every check's plots) stays one self-contained file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Any

BAR_ROWS = 20
SEVERITY_COLORS = {"info": "#64748b", "low": "#ca8a04", "medium": "#ea580c", "high": "#dc2626"}
PALETTE = ("#2563eb", "#16a34a", "#db2777", "#9333ea", "#0891b2", "#ea580c", "#65a30d", "#b45309", "#4f46e5", "#be123c")
OTHER_COLOR = "#94a3b8"
BAR_COLOR = "#3b82f6"


def esc(value: Any) -> str:
    return escape(str(value), quote=True)


def fmt_int(n: Any) -> str:
    return f"{int(n):,}"


def fmt_pct(x: float) -> str:
    return "<0.1%" if 0 < x < 0.001 else f"{x * 100:.1f}%"


def fmt_num(x: Any) -> str:
    """Whole and large numbers with thousands separators, small ones to 3 significant digits, the rest as is."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    return f"{x:,.0f}" if float(x).is_integer() or abs(x) >= 100 else f"{x:.3g}"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def _svg(width: int, height: int, body: str, label: str) -> str:
    return (
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{esc(label)}"><title>{esc(label)}</title>{body}</svg>'
    )


def bar_chart(
    rows: Sequence[tuple[str, Sequence[tuple[float, str]]]],
    fmt: Callable[[float], str],
    label: str,
    guide: tuple[float, str] | None = None,
    marks: Sequence[float | None] = (),
) -> str:
    """Horizontal bars of coloured segments; a guide line is one target for all rows, `marks` one per row."""
    left, bar_w, right, row_h, top = 190, 420, 110, 26, 22 if guide else 6
    totals = [sum(v for v, _ in segments) for _, segments in rows]
    targets = [m for m in marks if m is not None]
    vmax = max([*totals, *targets, guide[0] * 1.25 if guide else 0.0]) or 1.0
    parts = []
    for i, ((name, segments), total) in enumerate(zip(rows, totals, strict=True)):
        y = top + i * row_h
        short = name if len(name) <= 26 else name[:25] + "…"
        parts.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end"><title>{esc(name)}</title>{esc(short)}</text>'
        )
        x = float(left)
        for value, color in segments:
            w = value / vmax * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{color}">'
                f"<title>{esc(name)}: {esc(fmt(value))}</title></rect>"
            )
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 17}" class="value">{esc(fmt(total))}</text>')
        if i < len(marks) and marks[i] is not None:
            mx = left + marks[i] / vmax * bar_w
            parts.append(
                f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{y + 1}" y2="{y + row_h - 1}" class="mark">'
                f"<title>expected: {esc(fmt(marks[i]))}</title></line>"
            )
    height = top + len(rows) * row_h + 4
    if guide:
        gx = left + guide[0] / vmax * bar_w
        parts.append(
            f'<line x1="{gx:.1f}" x2="{gx:.1f}" y1="16" y2="{height}" class="guide"/>'
            f'<text x="{gx:.1f}" y="12" text-anchor="middle" class="guide-label">{esc(guide[1])}</text>'
        )
    return _svg(left + bar_w + right, height, "".join(parts), label)


def histogram(bins: Sequence[float], counts: Sequence[int], label: str) -> str:
    """Vertical bars over `bins` (either the n+1 edges or the n left edges of the n counts)."""
    left, width, height, bottom, top = 56, 420, 170, 34, 10
    n = len(counts)
    cmax = max(counts) or 1
    bw = width / n
    parts = [
        f'<line x1="{left}" x2="{left + width}" y1="{top + height}" y2="{top + height}" class="axis"/>',
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" class="tick">{fmt_int(cmax)}</text>',
        f'<text x="{left - 6}" y="{top + height}" text-anchor="end" class="tick">0</text>',
    ]
    edges = list(bins)
    for i, c in enumerate(counts):
        h = c / cmax * height
        lo = edges[i] if i < len(edges) else ""
        hi = f"–{fmt_num(edges[i + 1])}" if i + 1 < len(edges) else "+" if i == n - 1 else ""
        parts.append(
            f'<rect x="{left + i * bw + 0.5:.1f}" y="{top + height - h:.1f}" width="{max(bw - 1, 0.5):.1f}" '
            f'height="{h:.1f}" fill="{BAR_COLOR}"><title>{esc(fmt_num(lo))}{esc(hi)}: {fmt_int(c)}</title></rect>'
        )
    for i in sorted({round(k * (len(edges) - 1) / 4) for k in range(5)}):
        x = left + i * bw
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + height}" y2="{top + height + 4}" class="axis"/>'
            f'<text x="{x:.1f}" y="{top + height + 17}" text-anchor="middle" class="tick">'
            f"{esc(fmt_num(edges[i]))}</text>"
        )
    return _svg(left + width + 24, top + height + bottom, "".join(parts), label)


def scatter(xs: Sequence[float], ys: Sequence[float], colors: Sequence[str], titles: Sequence[str], label: str) -> str:
    """Points in a square box, scaled to fit; each point's tooltip names its record and cluster."""
    size, pad = 440, 10
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (size - 2 * pad) / ((x1 - x0) or 1)
    sy = (size - 2 * pad) / ((y1 - y0) or 1)
    parts = [f'<rect x="0.5" y="0.5" width="{size - 1}" height="{size - 1}" class="frame"/>']
    for x, y, c, t in zip(xs, ys, colors, titles, strict=True):
        parts.append(
            f'<circle cx="{pad + (x - x0) * sx:.1f}" cy="{size - pad - (y - y0) * sy:.1f}" r="2.6" '
            f'fill="{c}"><title>{esc(t)}</title></circle>'
        )
    return _svg(size, size, "".join(parts), label)


def legend(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span><i style="background:{c}"></i>{esc(n)}</span>' for n, c in items)
        + "</div>"
    )


def count_bars(counts: dict[str, Any], label: str, expected: dict[str, float] | None = None) -> str:
    """A bar per key (largest first, the tail folded into 'other') with count and share, and any expected share."""
    items = sorted(((str(k), float(v)) for k, v in counts.items()), key=lambda kv: -kv[1])
    if len(items) > BAR_ROWS:
        head, tail = items[: BAR_ROWS - 1], items[BAR_ROWS - 1 :]
        items = [*head, (f"other ({len(tail)})", sum(v for _, v in tail))]
    total = sum(v for _, v in items) or 1.0
    rows = [(k, [(v, BAR_COLOR)]) for k, v in items]
    marks = [expected[k] * total if expected and k in expected else None for k, _ in items]
    return bar_chart(rows, lambda v: f"{fmt_num(v)} · {fmt_pct(v / total)}", label, marks=marks)
