"""`lmtailor convert`: a dataset from one format and container to another."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lmtailor.cli.shared import ColumnsOpt, FormatOpt, console, err, on_error_option, one_of, renames, reported
from lmtailor.core.io import ReadOptions, check_target, read_examples, write_examples
from lmtailor.core.records import FORMATS

EPILOG = "Example:  lmtailor convert lima.json lima.parquet --to openai"


def convert(
    source: Annotated[Path, typer.Argument(help="Input file or `datasets` folder.")],
    target: Annotated[
        Path,
        typer.Argument(
            help="Output path; its suffix picks .jsonl .json .parquet .csv; no suffix: a `datasets` folder."
        ),
    ],
    to: Annotated[
        str,
        typer.Option(
            help="Output format: alpaca, sharegpt, openai, prompt_completion.", callback=one_of("--to", FORMATS)
        ),
    ] = "openai",
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    on_error: Annotated[str, on_error_option("fail or skip (skipped records are listed on stderr).")] = "fail",
) -> None:
    """Convert a dataset between formats and containers, losslessly where the formats allow."""
    rejected: list[str] = []
    with reported():
        check_target(source, target)
        opts = ReadOptions(format=format, columns=renames(columns), on_error=on_error)  # type: ignore[arg-type]
        n = write_examples(
            target, read_examples(source, opts, lambda r: rejected.append(f"record {r.index}: {r.reason}")), to
        )  # type: ignore[arg-type]
    for line in rejected:
        err.print(f"skipped {source}: {line}", highlight=False, markup=False)
    console.print(f"wrote {n:,} records to {escape(str(target))} ({to}); skipped {len(rejected):,}", highlight=False)
