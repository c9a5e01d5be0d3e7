"""`lmtailor score`: score a dataset with a quality classifier and keep the good part."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmtailor.cli.shared import (
    ColumnsOpt,
    FormatOpt,
    ProgressOpt,
    console,
    fail,
    input_specs,
    names,
    on_error_option,
    out_option,
    renames,
    reported,
)
from lmtailor.curate.recipe import Recipe

EPILOG = (
    "Example:  lmtailor score ../shared/data/alpaca/alpaca_data_52k.jsonl --classifier "
    "--good ../shared/data/lima/lima.json --unlabeled ../shared/data/alpaca/alpaca_data_52k.jsonl "
    "--out runs/score --top-fraction 0.2\n\n"
    "          lmtailor score new.jsonl --classifier --reuse runs/score/classifier.npz --out runs/score_new --top 500"
)


def score(
    inputs: Annotated[list[Path], typer.Argument(help="Dataset files or `datasets` folders to score.")],
    out: Annotated[Path, out_option("Run folder for the scored data, ledger, manifest, classifier.")] = Path(
        "runs/score"
    ),
    classifier: Annotated[
        bool, typer.Option("--classifier", help="Score with a quality classifier (embeddings + logistic regression).")
    ] = False,
    good: Annotated[list[Path] | None, typer.Option(help="Trusted good examples (repeatable; train: label good).")] = (
        None
    ),
    bad: Annotated[list[Path] | None, typer.Option(help="Known bad examples (repeatable; train: label bad).")] = None,
    unlabeled: Annotated[
        list[Path] | None, typer.Option(help="A pool of unknown quality, e.g. raw Alpaca (train: label unlabeled).")
    ] = None,
    labeled: Annotated[
        list[Path] | None, typer.Option(help="Examples labelled one by one in --label-field (train: label_field).")
    ] = None,
    label_field: Annotated[
        str | None, typer.Option(help="The field of --labeled records holding 0/1, true/false or good/bad.")
    ] = None,
    reuse: Annotated[
        Path | None, typer.Option(help="A classifier.npz saved by an earlier run, instead of training (classifier).")
    ] = None,
    threshold: Annotated[float | None, typer.Option(help="Keep scores >= this (threshold).")] = None,
    top: Annotated[int | None, typer.Option(help="Keep the N best (top).")] = None,
    top_fraction: Annotated[float | None, typer.Option(help="Keep this share, best first (top_fraction).")] = None,
    fields: Annotated[
        str | None, typer.Option(help="Comma-separated fields to embed (fields; default instruction,input,output).")
    ] = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds (folds).")] = 5,
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    output: Annotated[str, typer.Option(help="Output file name in the run folder (output).")] = "scored.jsonl",
    on_error: Annotated[str, on_error_option("fail or skip bad input records (on_error).")] = "fail",
    progress: ProgressOpt = True,
) -> None:
    """Score a dataset with a cheap quality classifier trained on a small trusted set, and keep the good part.

    Reports the classifier's cross-validated quality, writes [bold]quality_score[/] and its provenance into each
    kept record, every dropped record with its score to [bold]ledger.jsonl[/], and the classifier to
    [bold]classifier.npz[/] for reuse.
    """
    from lmtailor.curate.pipeline import curate as run_curate
    from lmtailor.curate.summary import print_summary
    from lmtailor.score.classify import classify_step, print_report

    if not classifier:
        fail("choose a scorer: --classifier (LLM judging is `lmtailor judge`)")
    with reported(ValueError):
        step = classify_step(out, good or [], bad or [], unlabeled or [], labeled or [], label_field, reuse,
                             folds=folds, threshold=threshold, top=top, top_fraction=top_fraction)  # fmt: skip
    if fields is not None:
        step["fields"] = names("--fields", fields)
    specs = input_specs(inputs, format, renames(columns))
    with reported(ValueError):
        data = {"inputs": specs, "steps": [step], "output": output, "on_error": on_error}
        recipe = Recipe.parse(data, "command line")
        manifest = run_curate(recipe, out, progress=progress)
    print_report(manifest.step_stats[-1].metrics, console)
    print_summary(manifest, str(out), console)
