"""report.html: one page a person reads to decide whether a dataset is ready, and which records to fix first.

It only aggregates what the audit already wrote (summary.json, findings.jsonl) plus the text of the records it
shows. Everything is inline (CSS, JS, plots as SVG drawn here) so the file opens offline and can be mailed
around; only the worst examples per check and a capped sample of the embedding map are embedded, so a 52K-record
audit still gives a page of a few hundred kilobytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from lmtailor.audit.finding import SEVERITIES
from lmtailor.core.io import atomic_path

FLAG_GUIDE = 0.05  # share of flagged records above which a dataset needs cleaning before training
REPORT_EXAMPLES = 25  # worst findings shown per check; the runner passes the text of these records
MAP_POINTS = 2000
BAR_ROWS = 20
TEXT_CHARS = 5000  # per record field: beyond this the page grows without helping anyone read
EVIDENCE_CHARS = 600
SEVERITY_COLORS = {"info": "#64748b", "low": "#ca8a04", "medium": "#ea580c", "high": "#dc2626"}
PALETTE = ("#2563eb", "#16a34a", "#db2777", "#9333ea", "#0891b2", "#ea580c", "#65a30d", "#b45309", "#4f46e5", "#be123c")
OTHER_COLOR = "#94a3b8"
BAR_COLOR = "#3b82f6"
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def write_report(
    summary: dict[str, Any],
    findings: list[dict[str, Any]],
    records: dict[str, dict[str, Any]],
    path: Path,
    top_n: int = REPORT_EXAMPLES,
) -> None:
    """Write the self-contained HTML report to `path` (atomically, so a reader never sees half a page)."""
    with atomic_path(path) as tmp:
        tmp.write_text(render(summary, findings, records, top_n), encoding="utf-8")


def render(
    summary: dict[str, Any],
    findings: list[dict[str, Any]],
    records: dict[str, dict[str, Any]],
    top_n: int = REPORT_EXAMPLES,
) -> str:
    """The report as one HTML string."""
    checks: dict[str, Any] = summary.get("checks", {})
    names = list(checks) + sorted({f["check"] for f in findings} - set(checks))
    worst = _worst(findings, names, top_n)
    plots = [
        ("plot-checks", "Findings per check", _plot_checks(checks)),
        ("plot-balance", "Balance", _plot_balance(checks)),
        ("plot-lengths", "Lengths", _plot_lengths(checks)),
        ("plot-map", "Embedding clusters", _plot_map(checks)),
        ("plot-formats", "Formats", _plot_formats(checks)),
    ]
    toc = "".join(f'<li><a href="#{a}">{t}</a></li>' for a, t, _ in plots)
    body = (
        f'<header><h1>Dataset audit</h1><p class="muted">{_sources(summary)}</p></header>'
        '<nav class="toc"><h2>Contents</h2><ol><li><a href="#overview">Overview</a></li>'
        '<li><a href="#checks">Checks</a></li><li><a href="#dataset-findings">Dataset-level findings</a></li>'
        f'<li><a href="#plots">Plots</a><ol>{toc}</ol></li><li><a href="#examples">Worst examples</a></li></ol></nav>'
        f'<section id="overview"><h2>Overview</h2>{_overview(summary)}</section>'
        f'<section id="checks"><h2>Checks</h2>{_checks_table(checks)}</section>'
        f'<section id="dataset-findings"><h2>Dataset-level findings</h2>{_callouts(checks)}</section>'
        '<section id="plots"><h2>Plots</h2>'
        + "".join(f'<div class="plot-box" id="{a}"><h3>{t}</h3>{p}</div>' for a, t, p in plots)
        + "</section>"
        f'<section id="examples"><h2>Worst examples</h2>{_examples(worst, names, records, top_n)}</section>'
    )
    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    # The policy keeps the page offline and lets only this script run, whatever the record text holds.
    csp = f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{script_hash}'"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,"><title>Dataset audit</title>'
        f"<style>{_CSS}</style></head><body><main>{body}</main><script>{_SCRIPT}</script></body></html>\n"
    )


# ---------------------------------------------------------------- formatting


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _int(n: Any) -> str:
    return f"{int(n):,}"


def _pct(x: float) -> str:
    return "<0.1%" if 0 < x < 0.001 else f"{x * 100:.1f}%"


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _chip(severity: str) -> str:
    return f'<span class="chip sev-{_e(severity)}">{_e(severity)}</span>'


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit:,} more characters]"


def _long_text(text: str, limit: int, open_below: int = 240) -> str:
    """Short text inline; long text folded behind a one-line preview so a table row stays scannable."""
    if len(text) <= open_below:
        return f'<div class="pre">{_e(text)}</div>'
    preview = " ".join(text[:120].split())
    return f'<details><summary>{_e(preview)}…</summary><div class="pre">{_e(_clip(text, limit))}</div></details>'


def _sources(summary: dict[str, Any]) -> str:
    sources = summary.get("dataset", {}).get("sources", [])
    return "Sources: " + ", ".join(f"<code>{_e(s)}</code>" for s in sources) if sources else "No sources recorded"


# ---------------------------------------------------------------- SVG


def _svg(width: int, height: int, body: str, label: str) -> str:
    return (
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{_e(label)}"><title>{_e(label)}</title>{body}</svg>'
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
        parts.append(f'<text x="{left - 8}" y="{y + 17}" text-anchor="end"><title>{_e(name)}</title>{_e(short)}</text>')
        x = float(left)
        for value, color in segments:
            w = value / vmax * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{color}">'
                f"<title>{_e(name)}: {_e(fmt(value))}</title></rect>"
            )
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 17}" class="value">{_e(fmt(total))}</text>')
        if i < len(marks) and marks[i] is not None:
            mx = left + marks[i] / vmax * bar_w
            parts.append(
                f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{y + 1}" y2="{y + row_h - 1}" class="mark">'
                f"<title>expected: {_e(fmt(marks[i]))}</title></line>"
            )
    height = top + len(rows) * row_h + 4
    if guide:
        gx = left + guide[0] / vmax * bar_w
        parts.append(
            f'<line x1="{gx:.1f}" x2="{gx:.1f}" y1="16" y2="{height}" class="guide"/>'
            f'<text x="{gx:.1f}" y="12" text-anchor="middle" class="guide-label">{_e(guide[1])}</text>'
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
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" class="tick">{_int(cmax)}</text>',
        f'<text x="{left - 6}" y="{top + height}" text-anchor="end" class="tick">0</text>',
    ]
    edges = list(bins)
    for i, c in enumerate(counts):
        h = c / cmax * height
        lo = edges[i] if i < len(edges) else ""
        hi = f"–{_num(edges[i + 1])}" if i + 1 < len(edges) else "+" if i == n - 1 else ""
        parts.append(
            f'<rect x="{left + i * bw + 0.5:.1f}" y="{top + height - h:.1f}" width="{max(bw - 1, 0.5):.1f}" '
            f'height="{h:.1f}" fill="{BAR_COLOR}"><title>{_e(_num(lo))}{_e(hi)}: {_int(c)}</title></rect>'
        )
    for i in sorted({round(k * (len(edges) - 1) / 4) for k in range(5)}):
        x = left + i * bw
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + height}" y2="{top + height + 4}" class="axis"/>'
            f'<text x="{x:.1f}" y="{top + height + 17}" text-anchor="middle" class="tick">'
            f"{_e(_num(edges[i]))}</text>"
        )
    return _svg(left + width + 24, top + height + bottom, "".join(parts), label)


def _num(x: Any) -> str:
    """Whole and large numbers with thousands separators, small ones to 3 significant digits, the rest as is."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return str(x)
    return f"{x:,.0f}" if float(x).is_integer() or abs(x) >= 100 else f"{x:.3g}"


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
            f'fill="{c}"><title>{_e(t)}</title></circle>'
        )
    return _svg(size, size, "".join(parts), label)


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span><i style="background:{c}"></i>{_e(n)}</span>' for n, c in items)
        + "</div>"
    )


def _count_bars(counts: dict[str, Any], label: str, expected: dict[str, float] | None = None) -> str:
    """A bar per key (largest first, the tail folded into 'other') with count and share, and any expected share."""
    items = sorted(((str(k), float(v)) for k, v in counts.items()), key=lambda kv: -kv[1])
    if len(items) > BAR_ROWS:
        head, tail = items[: BAR_ROWS - 1], items[BAR_ROWS - 1 :]
        items = [*head, (f"other ({len(tail)})", sum(v for _, v in tail))]
    total = sum(v for _, v in items) or 1.0
    rows = [(k, [(v, BAR_COLOR)]) for k, v in items]
    marks = [expected[k] * total if expected and k in expected else None for k, _ in items]
    return bar_chart(rows, lambda v: f"{_num(v)} · {_pct(v / total)}", label, marks=marks)


# ---------------------------------------------------------------- sections


def _verdict(share: float, high: int) -> tuple[str, str]:
    """One line a reader can act on: the flagged share against the guide first, then high-severity findings."""
    guide = _pct(FLAG_GUIDE)
    if share > FLAG_GUIDE:
        return "bad", (
            f"Needs cleaning: {_pct(share)} of records are flagged, above the {guide} guide. "
            "Fix or drop the worst examples below, then audit again."
        )
    if high:
        return "warn", (
            f"Review first: {_pct(share)} of records are flagged (under the {guide} guide), "
            f"but there are {_int(high)} high-severity findings."
        )
    return (
        "ok",
        f"Looks usable: {_pct(share)} of records are flagged, under the {guide} guide, with no high-severity findings.",
    )


def _overview(summary: dict[str, Any]) -> str:
    records = int(summary.get("dataset", {}).get("records", 0))
    flagged = summary.get("flagged", {})
    share = float(flagged.get("share", 0.0))
    totals = summary.get("severity_totals", {})
    n_findings = sum(int(v) for v in totals.values())
    high = int(totals.get("high", 0)) + sum(
        f.get("severity") == "high" for c in summary.get("checks", {}).values() for f in c.get("dataset_findings", [])
    )
    kind, text = _verdict(share, high)
    cards = [
        ("Records", _int(records)),
        (
            f"Flagged ({_e(flagged.get('at_or_above', 'low'))} and above)",
            f"{_int(flagged.get('records', 0))} · {_pct(share)}",
        ),
        ("Record findings", _int(n_findings)),
        ("High severity", _int(high)),
    ]
    card_html = "".join(
        f'<div class="card"><div class="card-label">{k}</div><div class="card-value">{v}</div></div>' for k, v in cards
    )
    chips = " ".join(f"{_chip(s)} {_int(totals.get(s, 0))}" for s in reversed(SEVERITIES))
    meter = bar_chart(
        [("flagged records", [(share, SEVERITY_COLORS["high" if share > FLAG_GUIDE else "info"])])],
        _pct,
        f"Share of records flagged against the {_pct(FLAG_GUIDE)} guide",
        guide=(FLAG_GUIDE, f"{_pct(FLAG_GUIDE)} guide"),
    )
    return (
        f'<p class="verdict verdict-{kind}">{_e(text)}</p><div class="cards">{card_html}</div>'
        f"<p>Findings per severity: {chips}</p>{meter}"
    )


def _checks_table(checks: dict[str, Any]) -> str:
    if not checks:
        return _note("No checks ran.")
    head = "".join(f'<th class="num">{_chip(s)}</th>' for s in reversed(SEVERITIES))
    rows = []
    for name, c in checks.items():
        sev = "".join(f'<td class="num">{_int(c.get("by_severity", {}).get(s, 0))}</td>' for s in reversed(SEVERITIES))
        label = (
            f'<button type="button" class="link" data-filter-check="{_e(name)}" title="Show its worst '
            f'examples">{_e(name)}</button>'
            if c.get("findings")
            else _e(name)
        )
        rows.append(
            f'<tr><td>{label}</td><td class="num">{_int(c.get("findings", 0))}</td>'
            f'<td class="num">{_int(c.get("records_flagged", 0))}</td>'
            f'<td class="num">{_pct(float(c.get("rate", 0.0)))}</td>{sev}'
            f'<td class="num">{_int(len(c.get("dataset_findings", [])))}</td>'
            f'<td class="num">{float(c.get("seconds", 0.0)):.2f} s</td></tr>'
        )
    return (
        '<table class="grid"><thead><tr><th>Check</th><th class="num">Findings</th><th class="num">Records '
        f'flagged</th><th class="num">Rate</th>{head}<th class="num">Dataset notes</th><th class="num">Time</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _evidence(evidence: dict[str, Any]) -> str:
    items = []
    for key, value in evidence.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        items.append(f"<dt>{_e(key)}</dt><dd>{_long_text(text, EVIDENCE_CHARS, 120)}</dd>")
    return f'<dl class="evidence">{"".join(items)}</dl>' if items else ""


def _callouts(checks: dict[str, Any]) -> str:
    found = [f for c in checks.values() for f in c.get("dataset_findings", [])]
    if not found:
        return _note("No check reported a problem with the dataset as a whole.")
    found.sort(key=lambda f: -_RANK.get(f.get("severity", "info"), 0))
    return "".join(
        f'<div class="callout sev-border-{_e(f.get("severity", "info"))}"><div>{_chip(f.get("severity", "info"))} '
        f'<b>{_e(f.get("check", ""))}</b> <span class="muted">score {_num(f.get("score", 0))}</span></div>'
        f"<p>{_e(f.get('message', ''))}</p>{_evidence(f.get('evidence', {}))}</div>"
        for f in found
    )


def _metrics(checks: dict[str, Any], name: str) -> dict[str, Any] | str:
    """The check's metrics, or the note to show instead when it did not run or recorded none."""
    if name not in checks:
        return _note(f"The {name} check did not run.")
    return checks[name].get("metrics") or _note(f"The {name} check recorded no metrics.")


def _plot_checks(checks: dict[str, Any]) -> str:
    if not any(c.get("findings") for c in checks.values()):
        return _note("No check flagged a record.")
    rows = [
        (name, [(float(c.get("by_severity", {}).get(s, 0)), SEVERITY_COLORS[s]) for s in reversed(SEVERITIES)])
        for name, c in checks.items()
    ]
    return _legend([(s, SEVERITY_COLORS[s]) for s in reversed(SEVERITIES)]) + bar_chart(
        rows, _num, "Record findings per check, by severity"
    )


def _plot_balance(checks: dict[str, Any]) -> str:
    m = _metrics(checks, "balance")
    if isinstance(m, str):
        return m
    out = []
    rate, expected = m.get("refusal_rate"), m.get("expected") or {}
    want = expected.get("refusal")
    if rate is None:
        out.append(_note("The balance check recorded no refusal rate."))
    else:
        guide = (float(want), f"expected {_pct(float(want))}") if want is not None else None
        out.append(
            f"<h4>Refusal rate</h4><p>{_int(m.get('refusals', 0))} refusals, {_pct(float(rate))} of records; "
            + (f"about {_pct(float(want))} is expected for this task.</p>" if guide else "no expected rate given.</p>")
        )
        out.append(
            bar_chart(
                [("refusals", [(float(rate), SEVERITY_COLORS["medium"])])],
                _pct,
                "Refusal rate against the expected rate",
                guide,
            )
        )
    labels = m.get("labels")
    if isinstance(labels, dict) and labels:
        wanted = {k: float(v) for k, v in expected.items() if k != "refusal"}
        caption = '<p class="muted">Dark ticks mark the expected shares.</p>' if wanted else ""
        out.append("<h4>Label distribution</h4>" + caption + _count_bars(labels, "Records per label", wanted))
    else:
        out.append(_note("No labels in this dataset, so no label distribution."))
    return "".join(out)


def _plot_lengths(checks: dict[str, Any]) -> str:
    m = _metrics(checks, "diversity")
    if isinstance(m, str):
        return m
    lengths = m.get("lengths") or {}
    plots = [
        f'<div class="hist"><h4>{_e(field)} length</h4>'
        f"{histogram(h['bins'], h['counts'], f'Histogram of {field} lengths')}</div>"
        for field, h in lengths.items()
        if isinstance(h, dict) and h.get("counts") and h.get("bins")
    ]
    return f'<div class="row">{"".join(plots)}</div>' if plots else _note("The diversity check recorded no lengths.")


def _plot_map(checks: dict[str, Any]) -> str:
    m = _metrics(checks, "diversity")
    if isinstance(m, str):
        return m
    pts = m.get("map") or {}
    xs, ys = pts.get("x") or [], pts.get("y") or []
    if not xs or len(xs) != len(ys):
        return _note("The diversity check recorded no embedding map.")
    n = len(xs)
    # A seeded random sample, not every k-th point: records often come ordered by source or topic.
    keep = range(n) if n <= MAP_POINTS else sorted(random.Random(0).sample(range(n), MAP_POINTS))
    cl, ids = pts.get("cluster") or [None] * n, pts.get("id") or [""] * n
    clusters = sorted(m.get("clusters") or [], key=lambda c: -c.get("size", 0))
    color = {
        c["id"]: PALETTE[i] for i, c in enumerate(c for c in clusters if c.get("id", -1) != -1) if i < len(PALETTE)
    }
    names = {c["id"]: str(c.get("label") or f"cluster {c['id']}") for c in clusters}
    plot = scatter(
        [xs[i] for i in keep],
        [ys[i] for i in keep],
        [color.get(cl[i], OTHER_COLOR) for i in keep],
        [f"{ids[i]} · {names.get(cl[i], f'cluster {cl[i]}')}" for i in keep],
        "Records placed by embedding similarity, coloured by cluster",
    )
    note = f'<p class="muted">Showing {_int(len(keep))} of {_int(n)} points.</p>' if n > len(keep) else ""
    if not clusters:
        return plot + note
    legend = "".join(
        f'<tr><td><i class="swatch" style="background:{color.get(c["id"], OTHER_COLOR)}"></i></td>'
        f'<td>{_e(names[c["id"]])}</td><td class="num">{_int(c.get("size", 0))}</td>'
        f'<td class="num">{_pct(float(c.get("share", 0.0)))}</td></tr>'
        for c in clusters[:15]
    )
    more = f'<p class="muted">and {_int(len(clusters) - 15)} smaller clusters.</p>' if len(clusters) > 15 else ""
    table = (
        '<table class="grid compact"><thead><tr><th></th><th>Cluster</th><th class="num">Records</th>'
        f'<th class="num">Share</th></tr></thead><tbody>{legend}</tbody></table>{more}'
    )
    return f'<div class="row"><div>{plot}{note}</div><div>{table}</div></div>'


def _plot_formats(checks: dict[str, Any]) -> str:
    m = _metrics(checks, "format")
    if isinstance(m, str):
        return m
    formats = m.get("formats")
    if not isinstance(formats, dict) or not formats:
        return _note("The format check recorded no format distribution.")
    return _count_bars(formats, "Records per output format")


def _worst(findings: list[dict[str, Any]], names: list[str], top_n: int) -> list[dict[str, Any]]:
    """The `top_n` highest-scoring record findings of each check, in check order."""
    by_check: dict[str, list[dict[str, Any]]] = {}
    for f in findings:
        if f.get("index", -1) >= 0:
            by_check.setdefault(f["check"], []).append(f)
    out = []
    for name in names:
        mine = by_check.get(name, [])
        mine.sort(key=lambda f: -float(f.get("score", 0.0)))  # stable, as the runner picks the records to pass
        out.extend(mine[:top_n])
    return out


def _record(rec: dict[str, Any] | None) -> str:
    """The record's non-empty fields (and the output even when empty: a missing answer is often the finding);
    a long record folds behind a preview of its first field."""
    if not rec:
        return '<span class="note">record text not available</span>'
    fields = [(k, "" if v is None else str(v)) for k, v in rec.items() if v not in (None, "") or k == "output"]
    inner = "".join(
        f'<div class="field"><b>{_e(k)}</b>'
        + (f'<div class="pre">{_e(_clip(v, TEXT_CHARS))}</div>' if v else '<div class="note">(empty)</div>')
        + "</div>"
        for k, v in fields
    )
    if not fields:
        return '<span class="note">(empty record)</span>'
    size = sum(len(v) for _, v in fields)
    if size <= 320:
        return inner
    first = fields[0][1]
    preview = " ".join(first[:100].split()) + ("…" if len(first) > 100 else "")
    return (
        f'<details><summary>{_e(preview)} <span class="muted">({size:,} characters)</span></summary>{inner}</details>'
    )


def _examples(worst: list[dict[str, Any]], names: list[str], records: dict[str, dict[str, Any]], top_n: int) -> str:
    if not worst:
        return _note("No record was flagged.")
    counts = Counter(f["check"] for f in worst)
    options = "".join(f'<option value="{_e(n)}">{_e(n)} ({counts[n]})</option>' for n in names if counts[n])
    sev_options = (
        '<option value="info">any</option>'
        + "".join(f'<option value="{s}">{s} and above</option>' for s in SEVERITIES[1:-1])
        + '<option value="high">high</option>'
    )
    rows = []
    for f in worst:
        sev = f.get("severity", "info")
        source = Path(str(f.get("source", ""))).name
        rows.append(
            f'<tr data-check="{_e(f["check"])}" data-severity="{_e(sev)}"><td>{_e(f["check"])}</td><td>{_chip(sev)}'
            f'</td><td class="num">{_num(f.get("score", 0))}</td><td><code>{_e(f.get("id", ""))}</code>'
            f'<div class="muted">{_e(source)}:{_e(f.get("index", ""))}</div></td>'
            f'<td><p class="msg">{_e(f.get("message", ""))}</p>{_evidence(f.get("evidence", {}))}</td>'
            f"<td>{_record(records.get(str(f.get('id'))))}</td></tr>"
        )
    return (
        f'<p class="muted">Up to {top_n} highest-scoring findings per check; record text is clipped at '
        f"{TEXT_CHARS:,} characters per field.</p>"
        '<div class="filters"><label>Check <select id="f-check"><option value="">all checks</option>'
        f'{options}</select></label><label>Severity <select id="f-severity">{sev_options}</select></label>'
        '<label>Text <input id="f-text" type="search" placeholder="id, message, evidence or record text"></label>'
        '<span id="f-count" class="muted"></span></div>'
        '<table class="grid examples"><thead><tr><th>Check</th><th>Severity</th><th class="num">Score</th>'
        "<th>Record</th><th>Finding and evidence</th><th>Record text</th></tr></thead>"
        f'<tbody>{"".join(rows)}</tbody></table><p id="f-empty" class="note" hidden>No example matches the '
        "filters.</p>"
    )


_CSS = """
:root{--fg:#1e293b;--muted:#64748b;--line:#e2e8f0;--bg:#f8fafc}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1280px;margin:0 auto;padding:24px 32px 64px}
h1{margin:0 0 4px;font-size:28px}h2{margin:36px 0 12px;border-bottom:2px solid var(--line);padding-bottom:4px}
h3{margin:0 0 8px}h4{margin:12px 0 4px}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef2f7;padding:1px 4px;border-radius:3px}
.muted{color:var(--muted)}.note{color:var(--muted);font-style:italic}
[hidden]{display:none!important}
.toc{background:#fff;border:1px solid var(--line);border-radius:8px;padding:8px 20px;margin-top:16px}
.toc h2{border:0;margin:8px 0 0;font-size:16px}.toc ol{margin:4px 0 8px}
.verdict{font-size:17px;font-weight:600;padding:12px 16px;border-radius:8px;border-left:6px solid}
.verdict-ok{background:#f0fdf4;border-color:#16a34a}.verdict-warn{background:#fffbeb;border-color:#ca8a04}
.verdict-bad{background:#fef2f2;border-color:#dc2626}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 16px;min-width:180px}
.card-label{color:var(--muted);font-size:13px}.card-value{font-size:22px;font-weight:600}
.chip{display:inline-block;padding:0 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600}
.sev-info{background:#64748b}.sev-low{background:#ca8a04}.sev-medium{background:#ea580c}.sev-high{background:#dc2626}
table.grid{border-collapse:collapse;background:#fff;width:100%}
.grid th,.grid td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
.grid th{background:#f1f5f9;font-size:13px}
.grid.compact{width:auto}.num{text-align:right!important;font-variant-numeric:tabular-nums}
button.link{background:none;border:0;padding:0;color:#2563eb;cursor:pointer;font:inherit;text-decoration:underline}
.callout{background:#fff;border:1px solid var(--line);border-left:6px solid;border-radius:6px;padding:8px 14px;
margin:8px 0}.callout p{margin:4px 0}
.sev-border-info{border-left-color:#64748b}.sev-border-low{border-left-color:#ca8a04}
.sev-border-medium{border-left-color:#ea580c}.sev-border-high{border-left-color:#dc2626}
.plot-box{background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 16px;margin:12px 0}
.row{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
svg.plot{max-width:100%;height:auto;font-size:12px;fill:var(--fg)}
svg .value{fill:var(--muted)}svg .tick{fill:var(--muted);font-size:11px}
svg .axis{stroke:#94a3b8}svg .guide{stroke:#0f172a;stroke-dasharray:4 3;stroke-width:1.5}
svg .guide-label{font-size:11px;font-weight:600}svg .frame{fill:#fff;stroke:var(--line)}
svg circle{fill-opacity:.75}svg .mark{stroke:#0f172a;stroke-width:3}
.legend{display:flex;gap:14px;font-size:13px;margin-bottom:4px}
.legend i,.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.filters{display:flex;gap:16px;flex-wrap:wrap;align-items:center;background:#fff;border:1px solid var(--line);
border-radius:8px;padding:10px 14px;margin:8px 0;position:sticky;top:0;z-index:2}
.filters select,.filters input{font:inherit;padding:3px 6px;margin-left:6px}.filters input{width:300px}
.examples{table-layout:fixed}.examples th:nth-child(1){width:10%}.examples th:nth-child(2){width:7%}
.examples th:nth-child(3){width:6%}.examples th:nth-child(4){width:12%}.examples th:nth-child(5){width:28%}
.pre{white-space:pre-wrap;overflow-wrap:anywhere;font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;
background:#f8fafc;border-radius:4px;padding:3px 6px;max-height:24em;overflow:auto}
.field{margin:4px 0}.field b{font-size:12px;color:var(--muted);text-transform:uppercase}
.msg{margin:0 0 4px;font-weight:500}
dl.evidence{margin:0;font-size:13px;display:grid;grid-template-columns:max-content 1fr;gap:2px 8px}
dl.evidence dt{color:var(--muted)}dl.evidence dd{margin:0;min-width:0}
details summary{cursor:pointer;color:#334155;overflow-wrap:anywhere}
"""

_SCRIPT = """(() => {
  const rows = Array.from(document.querySelectorAll("#examples tbody tr"));
  const check = document.getElementById("f-check");
  if (!check) return;
  const severity = document.getElementById("f-severity");
  const text = document.getElementById("f-text");
  const rank = {info: 0, low: 1, medium: 2, high: 3};
  const haystack = rows.map((r) => r.textContent.toLowerCase());
  function apply() {
    const needle = text.value.trim().toLowerCase();
    let shown = 0;
    rows.forEach((r, i) => {
      const ok = (!check.value || r.dataset.check === check.value)
        && rank[r.dataset.severity] >= rank[severity.value]
        && (!needle || haystack[i].includes(needle));
      r.hidden = !ok;
      if (ok) shown += 1;
    });
    document.getElementById("f-count").textContent = shown + " of " + rows.length + " shown";
    document.getElementById("f-empty").hidden = shown > 0;
  }
  [check, severity, text].forEach((el) => el.addEventListener("input", apply));
  document.querySelectorAll("[data-filter-check]").forEach((b) => b.addEventListener("click", () => {
    check.value = b.dataset.filterCheck;
    apply();
    document.getElementById("examples").scrollIntoView();
  }));
  apply();
})();"""
