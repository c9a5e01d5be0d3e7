"""The `lmtailor` command line: each verb is a thin shell over a library function."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.syntax import Syntax

from lmtailor.audit.finding import SEVERITIES
from lmtailor.config import Recipe, RecipeError, default_step
from lmtailor.io import DataError, ReadOptions, read_examples, write_examples
from lmtailor.records import RecordError

app = typer.Typer(
    help="lmtailor: adapt an open LLM to your task on limited hardware. Start with the data: "
    "`lmtailor curate` cleans a fine-tuning set and accounts for every record it drops.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


@app.command(
    epilog="Example:  lmtailor curate data.jsonl --out runs/clean --steps normalize,exact_dedup,near_dedup,filter\n\n"
    "          lmtailor curate --recipe recipes/spider_sql.yaml --out runs/spider"
)
def curate(
    inputs: Annotated[
        list[Path] | None, typer.Argument(help="Dataset files or `datasets` folders (recipe: inputs).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder for the data, ledger and manifest.")] = Path(
        "runs/curate"
    ),
    recipe: Annotated[Path | None, typer.Option(help="YAML recipe; the flags below override its fields.")] = None,
    steps: Annotated[
        str | None, typer.Option(help="Comma-separated steps with default settings (recipe: steps).")
    ] = None,
    format: Annotated[
        str | None, typer.Option(help="Input format, auto-detected if unset (recipe: inputs[].format).")
    ] = None,
    columns: Annotated[list[str] | None, typer.Option(help=COLUMNS_HELP)] = None,
    output: Annotated[
        str | None, typer.Option(help="Output file name; its suffix picks JSONL/JSON/Parquet/CSV (recipe: output).")
    ] = None,
    output_format: Annotated[
        str | None, typer.Option(help="alpaca, sharegpt, openai or prompt_completion (recipe: output_format).")
    ] = None,
    on_error: Annotated[
        str | None, typer.Option(help="fail (default) or skip bad records into rejects.jsonl (recipe: on_error).")
    ] = None,
    max_record_mb: Annotated[
        float | None, typer.Option(help="Largest record accepted (recipe: max_record_mb).")
    ] = None,
    fresh: Annotated[bool, typer.Option(help="Ignore checkpoints of an earlier, interrupted run.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Clean a dataset: normalize, deduplicate (exact, near, semantic), filter, decontaminate, mix, select.

    Writes the curated data, [bold]ledger.jsonl[/] (every drop and change, with its reason and kept twin),
    [bold]rejects.jsonl[/], [bold]clusters.jsonl[/] and [bold]manifest.json[/]. Rerunning resumes at the last
    checkpoint and reproduces the same output byte for byte.
    """
    from lmtailor.pipeline import curate as run_curate
    from lmtailor.summary import print_summary

    overrides: dict[str, Any] = {}
    if inputs:
        overrides["inputs"] = _specs(inputs, format, _columns(columns))
    for key, value in (
        ("output", output),
        ("output_format", output_format),
        ("on_error", on_error),
        ("max_record_mb", max_record_mb),
    ):
        if value is not None:
            overrides[key] = value
    try:
        if steps is not None:
            overrides["steps"] = [default_step(s.strip()) for s in steps.split(",") if s.strip()]
        if recipe is not None:
            r = Recipe.load(recipe, overrides)
        elif inputs:
            overrides.setdefault(
                "steps", [default_step(s) for s in ("normalize", "exact_dedup", "near_dedup", "filter")]
            )
            r = Recipe.parse(overrides, "command line")
        else:
            _fail("give input files or --recipe")
            return
        if not inputs:
            for spec in r.inputs:
                spec.format = format or spec.format  # type: ignore[assignment]
                spec.columns = _columns(columns) or spec.columns
        manifest = run_curate(r, out, fresh=fresh, progress=progress)
    except (RecipeError, DataError, RecordError) as e:
        _fail(str(e))
        return
    print_summary(manifest, str(out), console)


@app.command(epilog="Example:  lmtailor explain alpaca_data_52k:1234 --run runs/alpaca")
def explain(
    example_id: Annotated[str, typer.Argument(help="An example id, `<file stem>:<record index>`.")],
    run: Annotated[Path, typer.Option(help="The curate run folder.")] = Path("runs/curate"),
) -> None:
    """Show one example's history through a curate run: its source record, each change and its fate."""
    from lmtailor.explain import explain as collect

    if not (run / "manifest.json").exists():
        _fail(f"{run} is not a finished curate run (no manifest.json)")
    h = collect(run, example_id)
    console.print(f"[bold]{h.id}[/]  source: {h.source or '?'}  record {h.index if h.index is not None else '?'}")
    if h.original is not None:
        console.print(Syntax(json.dumps(h.original, ensure_ascii=False, indent=1)[:3000], "json", word_wrap=True))
    for e in h.events:
        console.print(f"[cyan]{e['step']}[/] {e['action']} [bold]{e['reason']}[/] {e.get('detail', '')}")
        for fld, (before, after) in e.get("changes", {}).items():
            console.print(f"    {fld}: [red]{before[:300]!r}[/] -> [green]{after[:300]!r}[/]", highlight=False)
    if h.twin_of:
        names = ", ".join(e["id"] for e in h.twin_of[:10]) + (" ..." if len(h.twin_of) > 10 else "")
        console.print(f"kept in place of {len(h.twin_of)} duplicate(s): {names}")
    console.print(f"fate: [bold]{h.fate}[/]")
    if h.fate.startswith("unknown"):
        raise typer.Exit(1)


@app.command(epilog="Example:  lmtailor convert lima.json lima.parquet --to openai")
def convert(
    source: Annotated[Path, typer.Argument(help="Input file or `datasets` folder.")],
    target: Annotated[
        Path,
        typer.Argument(
            help="Output path; its suffix picks .jsonl .json .parquet .csv; no suffix: a `datasets` folder."
        ),
    ],
    to: Annotated[str, typer.Option(help="Output format: alpaca, sharegpt, openai, prompt_completion.")] = "openai",
    format: Annotated[str | None, typer.Option(help="Input format, auto-detected if unset.")] = None,
    columns: Annotated[list[str] | None, typer.Option(help=COLUMNS_HELP)] = None,
    on_error: Annotated[str, typer.Option(help="fail or skip (skipped records are listed on stderr).")] = "fail",
) -> None:
    """Convert a dataset between formats and containers, losslessly where the formats allow."""
    rejected: list[str] = []
    opts = ReadOptions(format=format, columns=_columns(columns), on_error=on_error)  # type: ignore[arg-type]
    try:
        n = write_examples(
            target, read_examples(source, opts, lambda r: rejected.append(f"record {r.index}: {r.reason}")), to
        )  # type: ignore[arg-type]
    except (DataError, RecordError) as e:
        _fail(str(e))
        return
    for line in rejected:
        err.print(f"skipped {source}: {line}", highlight=False)
    console.print(f"wrote {n:,} records to {target} ({to}); skipped {len(rejected):,}")


def _columns(pairs: list[str] | None) -> dict[str, str]:
    """`--columns response=output` pairs: rename source fields to a format's names."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        src, sep, dst = pair.partition("=")
        if not sep or not src.strip() or not dst.strip():
            _fail(f"--columns takes SOURCE=FIELD, e.g. response=output; got {pair!r}")
        out[src.strip()] = dst.strip()
    return out


COLUMNS_HELP = "Rename a source field, e.g. response=output (repeatable; recipe: inputs[].columns)."


def _specs(inputs: list[Path], format: str | None, columns: dict[str, str]) -> list[dict[str, Any]]:
    """Recipe `inputs` entries for paths given on the command line: absolute, because a recipe file's own
    relative paths are read from the recipe's folder, while these are relative to where the user stands."""
    return [
        {
            "path": str(p.absolute()),
            **({"format": format} if format else {}),
            **({"columns": columns} if columns else {}),
        }
        for p in inputs
    ]


def _expectations(pairs: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            _fail(f"--expect takes NAME=RATE, e.g. refusal=0.05; got {pair!r}")
    return out


@app.command(
    epilog="Example:  lmtailor audit ../shared/data/alpaca/alpaca_data_52k.jsonl --out runs/audit --expect refusal=0.05"
    "\n\n          lmtailor audit data.jsonl --out runs/audit --fail-on high --fix recipes/audit_fix.yaml"
)
def audit(
    inputs: Annotated[list[Path], typer.Argument(help="Dataset files or `datasets` folders.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for findings.jsonl, summary.json, report.html.")
    ] = Path("runs/audit"),
    checks: Annotated[str | None, typer.Option(help="Comma-separated checks to run (default: all).")] = None,
    expect: Annotated[list[str] | None, typer.Option(help="Expected rate, e.g. refusal=0.05 (repeatable).")] = None,
    eval: Annotated[
        list[Path] | None, typer.Option(help="Evaluation set to look for overlap with (repeatable).")
    ] = None,
    format: Annotated[str | None, typer.Option(help="Input format, auto-detected if unset.")] = None,
    columns: Annotated[list[str] | None, typer.Option(help=COLUMNS_HELP)] = None,
    fail_on: Annotated[
        str, typer.Option(help="Exit 1 when a finding is at this severity or worse: info, low, medium, high, or never.")
    ] = "never",
    fix: Annotated[
        Path | None,
        typer.Option(
            help="Curate recipe to send flagged records through (a `findings` step drops or quarantines them)."
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Debug a dataset like code: refusal balance, capability claims, grounding, formats, mechanical
    correctness, broken fields, duplicates, diversity and annotator agreement.

    Writes [bold]findings.jsonl[/] (one line per finding), [bold]summary.json[/] and a self-contained
    [bold]report.html[/]. With [bold]--fix[/], flagged records then go through curate with every decision in
    the ledger.
    """
    from lmtailor.audit.checks import build_checks
    from lmtailor.audit.run import audit as run_audit
    from lmtailor.summary import print_audit_summary, print_summary

    if fail_on != "never" and fail_on not in SEVERITIES:
        _fail(f"--fail-on takes info, low, medium, high or never; got {fail_on!r}")
    try:
        selected = build_checks(checks.split(",") if checks else None, _expectations(expect or []), eval or [])
        opts = ReadOptions(format=format, columns=_columns(columns))  # type: ignore[arg-type]
        summary = run_audit(inputs, selected, out, opts, progress=progress)
    except (DataError, RecordError, ValueError) as e:
        _fail(str(e))
        return
    print_audit_summary(summary, str(out), console)
    if fix is not None:
        from lmtailor.pipeline import curate as run_curate
        from lmtailor.steps.findings import Findings

        try:
            recipe = Recipe.load(fix, {"inputs": _specs(inputs, format, _columns(columns))})
        except RecipeError as e:
            _fail(str(e))
            return
        acting = [s for s in recipe.steps if isinstance(s, Findings)]
        if not acting:
            acting = [Findings()]
            recipe.steps.insert(0, acting[0])
        for s in acting:
            s.path = s.path or out / "findings.jsonl"
        try:
            manifest = run_curate(recipe, out / "fixed", fresh=True, progress=progress)
        except (DataError, RecordError) as e:
            _fail(str(e))
            return
        print_summary(manifest, str(out / "fixed"), console)
    if fail_on != "never":
        results = summary["checks"].values()
        present = {s for c in results for s, n in c["by_severity"].items() if n}
        present |= {f["severity"] for c in results for f in c["dataset_findings"]}
        worst = max(present, key=SEVERITIES.index, default=None)
        if worst is not None and SEVERITIES.index(worst) >= SEVERITIES.index(fail_on):
            err.print(f"[bold red]audit failed:[/] findings at {worst} severity (--fail-on {fail_on})")
            raise typer.Exit(1)


@app.command(epilog="Example:  lmtailor demo --out demo_out")
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the generated data and the run.")] = Path("demo_out"),
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Generate a text-to-SQL dataset with known defects, curate it, and check every defect was caught."""
    from lmtailor.demo import run_demo

    if not run_demo(out, progress=progress):
        raise typer.Exit(1)
