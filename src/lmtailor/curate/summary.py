"""Terminal summaries of a curate run, read from its manifest.

Paths, step names, ledger reasons and finding messages come from the user and the data: they are escaped, so
rich prints their square brackets instead of reading them as markup.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def steps_table(manifest: dict[str, Any]) -> Table:
    """Per step: records in and out, what it dropped, changed or added, its time, and its main reasons."""
    table = Table(title="curate: what each step did", title_justify="left")
    for col in ("step", "in", "out", "dropped", "changed", "added", "seconds"):
        table.add_column(col, justify="left" if col == "step" else "right")
    table.add_column("reasons")
    for s in manifest["steps"]:
        reasons = s.get("reasons", {})
        top = sorted(reasons.items(), key=lambda kv: -kv[1])[:4]
        text = ", ".join(f"{escape(k)} {v:,}" for k, v in top)
        if s["step"] == "read" and s.get("rejected"):
            text = f"reject:unreadable {s['rejected']:,}"
        table.add_row(
            escape(s["step"]),
            f"{s['in']:,}",
            f"{s['out']:,}",
            f"{s.get('dropped', 0):,}",
            f"{s.get('changed', 0):,}",
            f"{s.get('added', 0):,}",
            f"{s['seconds']:.2f}",
            text,
        )
    return table


def print_summary(manifest: dict[str, Any], out_dir: str, console: Console | None = None) -> None:
    console = console or Console()
    console.print(steps_table(manifest))
    for s in manifest["steps"][1:]:
        # select and classify keep a chosen share by design; any other step dropping most records is suspect
        chosen = s["step"].endswith((":select", ":classify"))
        if s["in"] and s.get("dropped", 0) > s["in"] / 2 and not chosen:
            console.print(
                f"[yellow]warning:[/] {escape(s['step'])} dropped {s['dropped']:,} of {s['in']:,} records; "
                "check its fields and thresholds (e.g. a shared input matched everywhere)"
            )
    c = manifest["counts"]
    status = "[green]every record accounted for[/]" if c["accounted"] else "[red]records unaccounted for[/]"
    console.print(
        f"input {c['input']:,} = kept {c['kept']:,} + dropped {c['dropped']:,} + rejected "
        f"{c['rejected']:,} - added {c['added']:,}: {status}"
    )
    where = escape(out_dir)
    console.print(
        f"wrote {where}/{escape(manifest['output']['path'])} ({manifest['output']['format']}), ledger.jsonl, "
        f"rejects.jsonl, clusters.jsonl, manifest.json  [dim]lmtailor explain ID --run {where}[/]",
        highlight=False,
    )


def print_audit_summary(summary: dict[str, Any], out_dir: str, console: Console | None = None) -> None:
    """A short table suited to CI logs: per check, findings and flagged share; then the overall share."""
    console = console or Console()
    table = Table(title="audit: what each check found", title_justify="left")
    for col in ("check", "findings", "high", "medium", "low", "info", "records flagged", "rate", "seconds"):
        table.add_column(col, justify="left" if col == "check" else "right")
    for name, c in summary["checks"].items():
        sev = c["by_severity"]
        table.add_row(
            escape(name),
            f"{c['findings']:,}",
            *(f"{sev[s]:,}" for s in ("high", "medium", "low", "info")),
            f"{c['records_flagged']:,}",
            f"{c['rate']:.2%}",
            f"{c['seconds']:.2f}",
        )
    console.print(table)
    for name, c in summary["checks"].items():
        for f in c["dataset_findings"]:
            colour = {"high": "red", "medium": "yellow"}.get(f["severity"], "cyan")
            console.print(f"[{colour}]{f['severity']}[/] {escape(name)}: {escape(f['message'])}", highlight=False)
    flagged = summary["flagged"]
    console.print(
        f"{flagged['records']:,} of {summary['dataset']['records']:,} records flagged at "
        f"{flagged['at_or_above']} or worse ({flagged['share']:.2%})"
    )
    console.print(f"wrote {escape(out_dir)}/findings.jsonl, summary.json, report.html", highlight=False)
