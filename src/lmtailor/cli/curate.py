"""`lmtailor curate`: a recipe, or files and flags, through the curate pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lmtailor.cli.shared import (
    ColumnsOpt,
    ProgressOpt,
    console,
    fail,
    format_option,
    input_specs,
    names,
    on_error_option,
    one_of,
    out_option,
    renames,
    reported,
)
from lmtailor.core.records import FORMATS
from lmtailor.curate.recipe import Recipe, default_step

EPILOG = (
    "Example:  lmtailor curate data.jsonl --out runs/clean --steps normalize,exact_dedup,near_dedup,filter\n\n"
    "          lmtailor curate --recipe recipes/spider_sql.yaml --out runs/spider"
)

# Past this a limit means nothing, and the readers' byte count would overflow (inf, 1e300).
MAX_RECORD_MB = 2.0**20


def _record_mb(value: float | None) -> float | None:
    """--max-record-mb: a size in MB above 0 (a record cannot be smaller) and at most a terabyte."""
    if value is not None and not (0 < value <= MAX_RECORD_MB):
        fail(f"--max-record-mb takes a size in MB above 0 and at most {MAX_RECORD_MB:,.0f}; got {value:g}")
    return value


def curate(
    inputs: Annotated[
        list[Path] | None, typer.Argument(help="Dataset files or `datasets` folders (recipe: inputs).")
    ] = None,
    out: Annotated[Path, out_option()] = Path("runs/curate"),
    recipe: Annotated[Path | None, typer.Option(help="YAML recipe; the flags below override its fields.")] = None,
    steps: Annotated[
        str | None, typer.Option(help="Comma-separated steps with default settings (recipe: steps).")
    ] = None,
    format: Annotated[
        str | None, format_option("Input format, auto-detected if unset (recipe: inputs[].format).")
    ] = None,
    columns: ColumnsOpt = None,
    output: Annotated[
        str | None, typer.Option(help="Output file name; its suffix picks JSONL/JSON/Parquet/CSV (recipe: output).")
    ] = None,
    output_format: Annotated[
        str | None,
        typer.Option(
            help="alpaca, sharegpt, openai or prompt_completion (recipe: output_format).",
            callback=one_of("--output-format", FORMATS),
        ),
    ] = None,
    on_error: Annotated[
        str | None, on_error_option("fail (default) or skip bad records into rejects.jsonl (recipe: on_error).")
    ] = None,
    max_record_mb: Annotated[
        float | None, typer.Option(help="Largest record accepted, in MB (recipe: max_record_mb).", callback=_record_mb)
    ] = None,
    fresh: Annotated[bool, typer.Option(help="Ignore checkpoints of an earlier, interrupted run.")] = False,
    progress: ProgressOpt = True,
) -> None:
    """Clean a dataset: normalize, deduplicate (exact, near, semantic), filter, decontaminate, mix, select.

    Writes the curated data, [bold]ledger.jsonl[/] (every drop and change, with its reason and kept twin),
    [bold]rejects.jsonl[/], [bold]clusters.jsonl[/] and [bold]manifest.json[/]. Rerunning resumes at the last
    checkpoint and reproduces the same output byte for byte.
    """
    from lmtailor.curate.pipeline import curate as run_curate
    from lmtailor.curate.summary import print_summary

    overrides: dict[str, Any] = {}
    if inputs:
        overrides["inputs"] = input_specs(inputs, format, renames(columns))
    for key, value in (
        ("output", output),
        ("output_format", output_format),
        ("on_error", on_error),
        ("max_record_mb", max_record_mb),
    ):
        if value is not None:
            overrides[key] = value
    with reported():
        if steps is not None:
            overrides["steps"] = [default_step(s) for s in names("--steps", steps)]
        if recipe is not None:
            r = Recipe.load(recipe, overrides)
        elif inputs:
            overrides.setdefault(
                "steps", [default_step(s) for s in ("normalize", "exact_dedup", "near_dedup", "filter")]
            )
            r = Recipe.parse(overrides, "command line")
        else:
            fail("give input files or --recipe")
        if not inputs:
            for spec in r.inputs:
                spec.format = format or spec.format  # type: ignore[assignment]
                spec.columns = renames(columns) or spec.columns
        manifest = run_curate(r, out, fresh=fresh, progress=progress)
    print_summary(manifest, str(out), console)
