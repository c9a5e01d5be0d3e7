"""Terminal summaries of a curate run, read from its manifest.

Paths, step names, ledger reasons and finding messages come from the user and the data: they are escaped, so
rich prints their square brackets instead of reading them as markup.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lmtailor.core.rundir import AuditFolder, CurateFolder
from lmtailor.curate.manifest import Manifest, ReadStats


def steps_table(manifest: Manifest) -> Table:
    """Per step: records in and out, what it dropped, changed or added, its time, and its main reasons."""
    table = Table(title="curate: what each step did", title_justify="left")
    for col in ("step", "in", "out", "dropped", "changed", "added", "seconds"):
        table.add_column(col, justify="left" if col == "step" else "right")
    table.add_column("reasons")
    for s in manifest.steps:
        if isinstance(s, ReadStats):
            counts, text = (0, 0, 0), f"reject:unreadable {s.rejected:,}" if s.rejected else ""
        else:
            counts = (s.dropped, s.changed, s.added)
            top = sorted(s.reasons.items(), key=lambda kv: -kv[1])[:4]
            text = ", ".join(f"{escape(k)} {v:,}" for k, v in top)
        table.add_row(escape(s.step), f"{s.in_:,}", f"{s.out:,}", *(f"{n:,}" for n in counts), f"{s.seconds:.2f}", text)
    return table


def print_summary(manifest: Manifest, out_dir: str, console: Console | None = None) -> None:
    console = console or Console()
    console.print(steps_table(manifest))
    for step, s in zip(manifest.recipe.steps, manifest.step_stats, strict=True):
        # a step keeping a chosen share drops most records by design; any other step doing so is suspect
        if s.in_ and s.dropped > s.in_ / 2 and not step.keeps_a_share:
            console.print(
                f"[yellow]warning:[/] {escape(s.step)} dropped {s.dropped:,} of {s.in_:,} records; "
                "check its fields and thresholds (e.g. a shared input matched everywhere)"
            )
    c = manifest.counts
    status = "[green]every record accounted for[/]" if c.accounted else "[red]records unaccounted for[/]"
    console.print(
        f"input {c.input:,} = kept {c.kept:,} + dropped {c.dropped:,} + rejected "
        f"{c.rejected:,} - added {c.added:,}: {status}"
    )
    where, run = escape(out_dir), CurateFolder
    console.print(
        f"wrote {where}/{escape(manifest.output.path)} ({manifest.output.format}), {run.LEDGER}, "
        f"{run.REJECTS}, {run.CLUSTERS}, {run.INDEX}  [dim]lmtailor explain ID --run {where}[/]",
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
    run = AuditFolder
    console.print(f"wrote {escape(out_dir)}/{run.FINDINGS}, {run.INDEX}, {run.REPORT}", highlight=False)
