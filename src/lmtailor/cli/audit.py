"""`lmtailor audit`: run the audit checks over a dataset, and with --fix send flagged records through curate."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from lmtailor.audit.finding import SEVERITIES
from lmtailor.cli.shared import (
    ColumnsOpt,
    FormatOpt,
    ProgressOpt,
    console,
    err,
    fail,
    input_specs,
    names,
    one_of,
    out_option,
    renames,
    reported,
)
from lmtailor.core.io import ReadOptions
from lmtailor.core.rundir import AuditFolder

EPILOG = (
    "Example:  lmtailor audit ../shared/data/alpaca/alpaca_data_52k.jsonl --out runs/audit --expect refusal=0.05"
    "\n\n          lmtailor audit data.jsonl --out runs/audit --fail-on high --fix recipes/audit_fix.yaml"
)


def _expectations(pairs: list[str]) -> dict[str, float]:
    """`--expect refusal=0.05` pairs: a name and a rate, a share from 0 to 1."""
    out: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = math.nan
        if not sep or not key.strip() or not 0 <= rate <= 1:
            fail(f"--expect takes NAME=RATE with a rate from 0 to 1, e.g. refusal=0.05; got {pair!r}")
        out[key.strip()] = rate
    return out


def audit(
    inputs: Annotated[list[Path], typer.Argument(help="Dataset files or `datasets` folders.")],
    out: Annotated[Path, out_option("Folder for findings.jsonl, summary.json, report.html.")] = Path("runs/audit"),
    recipe: Annotated[
        Path | None,
        typer.Option(help="Audit recipe: a YAML file whose `checks:` list gives each check to run and its settings."),
    ] = None,
    checks: Annotated[str | None, typer.Option(help="Comma-separated checks to run (default: all).")] = None,
    expect: Annotated[list[str] | None, typer.Option(help="Expected rate, e.g. refusal=0.05 (repeatable).")] = None,
    eval: Annotated[
        list[Path] | None, typer.Option(help="Evaluation set to look for overlap with (repeatable).")
    ] = None,
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    fail_on: Annotated[
        str,
        typer.Option(
            help="Exit 1 when a finding is at this severity or worse: info, low, medium, high, or never.",
            callback=one_of("--fail-on", (*SEVERITIES, "never")),
        ),
    ] = "never",
    fix: Annotated[
        Path | None,
        typer.Option(
            help="Curate recipe to send flagged records through (a `findings` step drops or quarantines them)."
        ),
    ] = None,
    progress: ProgressOpt = True,
) -> None:
    """Debug a dataset like code: refusal balance, capability claims, grounding, formats, mechanical
    correctness, broken fields, duplicates, diversity and annotator agreement.

    Writes [bold]findings.jsonl[/] (one line per finding), [bold]summary.json[/] and a self-contained
    [bold]report.html[/]. With [bold]--fix[/], flagged records then go through curate with every decision in
    the ledger.
    """
    from lmtailor.audit.recipe import AuditRecipe
    from lmtailor.audit.run import audit as run_audit
    from lmtailor.audit.run import worst_at_or_above
    from lmtailor.curate.summary import print_audit_summary, print_summary

    chosen = names("--checks", checks) if checks is not None else None
    with reported(ValueError):
        plan = AuditRecipe.from_command_line(recipe, chosen, _expectations(expect or []), eval or [])
        opts = ReadOptions(format=format, columns=renames(columns))  # type: ignore[arg-type]
        summary = run_audit(inputs, plan.checks, out, opts, progress=progress)
    print_audit_summary(summary, str(out), console)
    if fix is not None:
        from lmtailor.curate.fix import fix_recipe
        from lmtailor.curate.pipeline import curate as run_curate

        with reported():
            fixing = fix_recipe(fix, input_specs(inputs, format, renames(columns)), AuditFolder(out).findings)
            manifest = run_curate(fixing, out / "fixed", fresh=True, progress=progress)
        print_summary(manifest, str(out / "fixed"), console)
    worst = worst_at_or_above(summary, fail_on) if fail_on != "never" else None  # type: ignore[arg-type]
    if worst is not None:
        err.print(f"[bold red]audit failed:[/] findings at {worst} severity (--fail-on {fail_on})")
        raise typer.Exit(1)
