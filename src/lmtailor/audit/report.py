"""report.html: one page a person reads to decide whether a dataset is ready, and which records to fix first.

It only aggregates what the audit already wrote (summary.json, findings.jsonl) plus the text of the records it
shows, and knows no check by name: each registered check gives the plots drawn from its metrics (`Check.plots`).
Everything is inline (CSS, JS, plots as SVG drawn by `charts`) so the file opens offline and can be mailed
around; only the worst examples per check and a capped sample of the embedding map are embedded, so a 52K-record
audit still gives a page of a few hundred kilobytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from lmtailor.audit.charts import SEVERITY_COLORS, bar_chart, esc, fmt_int, fmt_num, fmt_pct, legend, note
from lmtailor.audit.check import Plot
from lmtailor.audit.checks import registry
from lmtailor.audit.finding import SEVERITIES
from lmtailor.core.io import atomic_path

FLAG_GUIDE = 0.05  # share of flagged records above which a dataset needs cleaning before training
REPORT_EXAMPLES = 25  # worst findings shown per check; the runner passes the text of these records
TEXT_CHARS = 5000  # per record field: beyond this the page grows without helping anyone read
EVIDENCE_CHARS = 600
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
    plots = [("plot-checks", "Findings per check", _plot_checks(checks))]
    plots += [(p.anchor, p.title, _plot(checks, check.name, p)) for check in registry().values() for p in check.plots]
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


def _chip(severity: str) -> str:
    return f'<span class="chip sev-{esc(severity)}">{esc(severity)}</span>'


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit:,} more characters]"


def _long_text(text: str, limit: int, open_below: int = 240) -> str:
    """Short text inline; long text folded behind a one-line preview so a table row stays scannable."""
    if len(text) <= open_below:
        return f'<div class="pre">{esc(text)}</div>'
    preview = " ".join(text[:120].split())
    return f'<details><summary>{esc(preview)}…</summary><div class="pre">{esc(_clip(text, limit))}</div></details>'


def _sources(summary: dict[str, Any]) -> str:
    sources = summary.get("dataset", {}).get("sources", [])
    return "Sources: " + ", ".join(f"<code>{esc(s)}</code>" for s in sources) if sources else "No sources recorded"


# ---------------------------------------------------------------- sections


def _verdict(share: float, high: int) -> tuple[str, str]:
    """One line a reader can act on: the flagged share against the guide first, then high-severity findings."""
    guide = fmt_pct(FLAG_GUIDE)
    if share > FLAG_GUIDE:
        return "bad", (
            f"Needs cleaning: {fmt_pct(share)} of records are flagged, above the {guide} guide. "
            "Fix or drop the worst examples below, then audit again."
        )
    if high:
        return "warn", (
            f"Review first: {fmt_pct(share)} of records are flagged (under the {guide} guide), "
            f"but there are {fmt_int(high)} high-severity findings."
        )
    return (
        "ok",
        f"Looks usable: {fmt_pct(share)} of records are flagged, under the {guide} guide, "
        "with no high-severity findings.",
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
        ("Records", fmt_int(records)),
        (
            f"Flagged ({esc(flagged.get('at_or_above', 'low'))} and above)",
            f"{fmt_int(flagged.get('records', 0))} · {fmt_pct(share)}",
        ),
        ("Record findings", fmt_int(n_findings)),
        ("High severity", fmt_int(high)),
    ]
    card_html = "".join(
        f'<div class="card"><div class="card-label">{k}</div><div class="card-value">{v}</div></div>' for k, v in cards
    )
    chips = " ".join(f"{_chip(s)} {fmt_int(totals.get(s, 0))}" for s in reversed(SEVERITIES))
    meter = bar_chart(
        [("flagged records", [(share, SEVERITY_COLORS["high" if share > FLAG_GUIDE else "info"])])],
        fmt_pct,
        f"Share of records flagged against the {fmt_pct(FLAG_GUIDE)} guide",
        guide=(FLAG_GUIDE, f"{fmt_pct(FLAG_GUIDE)} guide"),
    )
    return (
        f'<p class="verdict verdict-{kind}">{esc(text)}</p><div class="cards">{card_html}</div>'
        f"<p>Findings per severity: {chips}</p>{meter}"
    )


def _checks_table(checks: dict[str, Any]) -> str:
    if not checks:
        return note("No checks ran.")
    head = "".join(f'<th class="num">{_chip(s)}</th>' for s in reversed(SEVERITIES))
    rows = []
    for name, c in checks.items():
        sev = "".join(
            f'<td class="num">{fmt_int(c.get("by_severity", {}).get(s, 0))}</td>' for s in reversed(SEVERITIES)
        )
        label = (
            f'<button type="button" class="link" data-filter-check="{esc(name)}" title="Show its worst '
            f'examples">{esc(name)}</button>'
            if c.get("findings")
            else esc(name)
        )
        rows.append(
            f'<tr><td>{label}</td><td class="num">{fmt_int(c.get("findings", 0))}</td>'
            f'<td class="num">{fmt_int(c.get("records_flagged", 0))}</td>'
            f'<td class="num">{fmt_pct(float(c.get("rate", 0.0)))}</td>{sev}'
            f'<td class="num">{fmt_int(len(c.get("dataset_findings", [])))}</td>'
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
        items.append(f"<dt>{esc(key)}</dt><dd>{_long_text(text, EVIDENCE_CHARS, 120)}</dd>")
    return f'<dl class="evidence">{"".join(items)}</dl>' if items else ""


def _callouts(checks: dict[str, Any]) -> str:
    found = [f for c in checks.values() for f in c.get("dataset_findings", [])]
    if not found:
        return note("No check reported a problem with the dataset as a whole.")
    found.sort(key=lambda f: -_RANK.get(f.get("severity", "info"), 0))
    return "".join(
        f'<div class="callout sev-border-{esc(f.get("severity", "info"))}"><div>{_chip(f.get("severity", "info"))} '
        f'<b>{esc(f.get("check", ""))}</b> <span class="muted">score {fmt_num(f.get("score", 0))}</span></div>'
        f"<p>{esc(f.get('message', ''))}</p>{_evidence(f.get('evidence', {}))}</div>"
        for f in found
    )


def _plot(checks: dict[str, Any], name: str, plot: Plot) -> str:
    """A check's plot drawn from its metrics, or the note to show instead when it did not run or recorded none."""
    if name not in checks:
        return note(f"The {name} check did not run.")
    metrics = checks[name].get("metrics")
    return plot.draw(metrics) if metrics else note(f"The {name} check recorded no metrics.")


def _plot_checks(checks: dict[str, Any]) -> str:
    if not any(c.get("findings") for c in checks.values()):
        return note("No check flagged a record.")
    rows = [
        (name, [(float(c.get("by_severity", {}).get(s, 0)), SEVERITY_COLORS[s]) for s in reversed(SEVERITIES)])
        for name, c in checks.items()
    ]
    return legend([(s, SEVERITY_COLORS[s]) for s in reversed(SEVERITIES)]) + bar_chart(
        rows, fmt_num, "Record findings per check, by severity"
    )


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
        f'<div class="field"><b>{esc(k)}</b>'
        + (f'<div class="pre">{esc(_clip(v, TEXT_CHARS))}</div>' if v else '<div class="note">(empty)</div>')
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
        f'<details><summary>{esc(preview)} <span class="muted">({size:,} characters)</span></summary>{inner}</details>'
    )


def _examples(worst: list[dict[str, Any]], names: list[str], records: dict[str, dict[str, Any]], top_n: int) -> str:
    if not worst:
        return note("No record was flagged.")
    counts = Counter(f["check"] for f in worst)
    options = "".join(f'<option value="{esc(n)}">{esc(n)} ({counts[n]})</option>' for n in names if counts[n])
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
            f'<tr data-check="{esc(f["check"])}" data-severity="{esc(sev)}"><td>{esc(f["check"])}</td><td>{_chip(sev)}'
            f'</td><td class="num">{fmt_num(f.get("score", 0))}</td><td><code>{esc(f.get("id", ""))}</code>'
            f'<div class="muted">{esc(source)}:{esc(f.get("index", ""))}</div></td>'
            f'<td><p class="msg">{esc(f.get("message", ""))}</p>{_evidence(f.get("evidence", {}))}</td>'
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
