"""`lmtailor judge`: grade records with an LLM against rubrics, or compare two answers per instruction."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lmtailor.cli.shared import (
    BACKEND,
    ColumnsOpt,
    FormatOpt,
    MaxTokensOpt,
    ProgressOpt,
    console,
    input_specs,
    names,
    out_option,
    renames,
    reported,
    with_backend_options,
)
from lmtailor.curate.recipe import Recipe

EPILOG = (
    "Example:  lmtailor judge ../shared/data/alpaca/alpaca_data_52k.jsonl --out runs/judge --min-score 3\n\n"
    "          lmtailor judge ../shared/data/dolly/dolly_first6400.jsonl --columns response=output "
    "--pair output,flan_t5_base_output --preferred a --out runs/judge_pairs"
)


@with_backend_options
def judge(
    inputs: Annotated[list[Path], typer.Argument(help="Dataset files or `datasets` folders to judge.")],
    out: Annotated[Path, out_option()] = Path("runs/judge"),
    rubric: Annotated[
        str, typer.Option(help="Comma-separated rubrics: helpfulness, correctness, groundedness or --rubrics-file's.")
    ] = "helpfulness,correctness",
    rubrics_file: Annotated[
        Path | None, typer.Option(help="YAML: rubric name -> criteria text, or -> {criteria, needs_input, demos}.")
    ] = None,
    field: Annotated[str, typer.Option(help="The answer judged: output, or a field the records carry.")] = "output",
    min_score: Annotated[
        float | None, typer.Option(help="Drop records whose mean grade is below this; unset: keep all, ranked.")
    ] = None,
    against: Annotated[
        Path | None, typer.Option(help="Pairwise: compare each answer with the matching record's in this file.")
    ] = None,
    match: Annotated[str, typer.Option(help="Match --against records by position or instruction.")] = "position",
    pair: Annotated[
        str | None, typer.Option(help="Pairwise: two fields of each record, e.g. output,flan_t5_base_output.")
    ] = None,
    labels: Annotated[
        str | None, typer.Option(help="Field with human grades 1-5 (pairwise: a, b or tie): report agreement.")
    ] = None,
    preferred: Annotated[
        str | None, typer.Option(help="Pairwise: the answer known to be better in every pair (a or b).")
    ] = None,
    method: Annotated[
        str, typer.Option(help="weighted: expected grade from P(1..5) (G-Eval); generate: the grade written.")
    ] = "weighted",
    reasons: Annotated[bool, typer.Option(help="Ask for a reason with each grade (--no-reasons is faster).")] = True,
    max_tokens: MaxTokensOpt = 160,
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    output: Annotated[str, typer.Option(help="Output file name in the run folder.")] = "judged.jsonl",
    backend: dict[str, Any] = BACKEND,
    progress: ProgressOpt = True,
) -> None:
    """Grade records with an LLM against rubrics (1-5 with a reason), or compare two answers per instruction.

    Writes grades into each record (judge_<rubric>, judge_reason_<rubric>, judge_score; pairwise:
    judge_preferred, judge_p_a) with its provenance, and every drop to [bold]ledger.jsonl[/]. With [bold]--labels[/]
    it reports agreement with human grades. A killed run resumes from the response cache.
    """
    from lmtailor.curate.pipeline import curate as run_curate
    from lmtailor.curate.summary import print_summary
    from lmtailor.llm.types import BackendError
    from lmtailor.score.judge import print_judge_summary

    specs = input_specs(inputs, format, renames(columns))
    step: dict[str, Any] = {
        "step": "judge",
        "backend": backend,
        "rubrics": names("--rubric", rubric),
        "rubrics_file": str(rubrics_file.absolute()) if rubrics_file else None,
        "field": field,
        "method": method,
        "reasons": reasons,
        "min_score": min_score,
        "labels": labels,
        "preferred": preferred,
        "match": match,
        "max_tokens": max_tokens,
    }
    if against is not None:
        step["against"] = input_specs([against], format, renames(columns))[0]
    if pair is not None:
        step["pair"] = names("--pair", pair)
    with reported(BackendError, ValueError):
        recipe = Recipe.parse({"inputs": specs, "steps": [step], "output": output}, "command line")
        manifest = run_curate(recipe, out, progress=progress)
    print_summary(manifest, str(out), console)
    print_judge_summary(manifest, console)
