"""`lmtailor synth ...`: generate training data with an LLM, one generating step run through curate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from lmtailor.cli.shared import (
    BACKEND,
    ColumnsOpt,
    FormatOpt,
    MaxTokensOpt,
    ProgressOpt,
    console,
    input_specs,
    out_option,
    renames,
    reported,
    with_backend_options,
)
from lmtailor.curate.recipe import Recipe

app = typer.Typer(
    help="Generate training data with an LLM: self-instruct, back-translation, paraphrase, failure targeting. "
    "Every new record carries its provenance (backend, model, template, seed ids) and goes through the ledger.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
OutOpt = Annotated[Path, out_option()]
SeedOpt = Annotated[int, typer.Option(help="Sampling seed; part of the cache key, so a rerun is free.")]
MaxRougeOpt = Annotated[float, typer.Option(help="ROUGE-L F at or above which a text counts as a copy.")]


def _synth(
    inputs: list[Path],
    step: dict[str, Any],
    out: Path,
    format: str | None,
    columns: list[str] | None,
    backend: dict[str, Any],
    progress: bool,
) -> None:
    """Run one generating step through curate (ledger, manifest) and print what it made, dropped and spent."""
    from lmtailor.curate.pipeline import curate as run_curate
    from lmtailor.llm.types import BackendError
    from lmtailor.synth.report import print_synth_summary

    with reported(BackendError):
        recipe = Recipe.parse(
            {"inputs": input_specs(inputs, format, renames(columns)), "steps": [{**step, "backend": backend}]},
            "command line",
        )
        manifest = run_curate(recipe, out, progress=progress)
    print_synth_summary(manifest, out, console)


@app.command(
    "self-instruct",
    epilog="Example:  lmtailor synth self-instruct ../shared/data/alpaca/seed_tasks.jsonl --n 20 --out runs/synth_si",
)
@with_backend_options
def self_instruct(
    seeds: Annotated[list[Path], typer.Argument(help="Seed tasks: self-instruct's seed file, or any dataset.")],
    out: OutOpt = Path("runs/synth_self_instruct"),
    n: Annotated[int, typer.Option(help="New examples wanted (step: n).")] = 20,
    max_rounds: Annotated[int, typer.Option(help="Give up after this many rounds (step: max_rounds).")] = 20,
    max_rouge: MaxRougeOpt = 0.7,
    temperature: Annotated[float, typer.Option(help="Sampling temperature for new instructions.")] = 0.8,
    prompts_per_round: Annotated[int, typer.Option(help="Task lists asked for per round.")] = 8,
    max_tokens: Annotated[int, typer.Option(help="Most tokens per task list (step: max_tokens).")] = 256,
    output_tokens: Annotated[int, typer.Option(help="Most tokens per input and output.")] = 256,
    keep_seeds: Annotated[bool, typer.Option(help="Write the seeds too (step: keep_inputs).")] = False,
    seed: SeedOpt = 0,
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    backend: dict[str, Any] = BACKEND,
    progress: ProgressOpt = True,
) -> None:
    """New tasks from seed tasks: the model continues numbered task lists, then writes an input and output for
    each new task. Near copies (ROUGE-L) of any instruction held, and tasks about images or files, are dropped.
    """
    from lmtailor.synth.self_instruct import readable_seeds

    readable = []
    with reported():
        for path, (target, count) in zip(seeds, readable_seeds(seeds, out), strict=True):
            if count is not None:
                console.print(
                    f"read {count:,} seed tasks from {escape(str(path))} in self-instruct's format; "
                    f"as alpaca: {escape(str(target))}",
                    highlight=False,
                )
            readable.append(target)
    step = {"step": "self_instruct", "n": n, "max_rounds": max_rounds, "max_rouge": max_rouge,
            "temperature": temperature, "prompts_per_round": prompts_per_round, "max_tokens": max_tokens,
            "output_tokens": output_tokens, "keep_inputs": keep_seeds, "seed": seed}  # fmt: skip
    _synth(readable, step, out, format, columns, backend, progress)


@app.command(
    "backtranslate",
    epilog="Example:  lmtailor synth backtranslate ../shared/data/lima/lima.json --field output --out runs/synth_bt",
)
@with_backend_options
def backtranslate(
    docs: Annotated[list[Path], typer.Argument(help="Datasets whose --field holds the documents.")],
    out: OutOpt = Path("runs/synth_backtranslate"),
    field: Annotated[str, typer.Option(help="Field holding the document (step: field).")] = "output",
    keep_inputs: Annotated[bool, typer.Option(help="Write the source records too (step: keep_inputs).")] = False,
    max_tokens: MaxTokensOpt = 64,
    seed: SeedOpt = 0,
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    backend: dict[str, Any] = BACKEND,
    progress: ProgressOpt = True,
) -> None:
    """Instruction back-translation: each document becomes an answer, and the model writes the instruction it
    answers. Empty, cut-off or copied instructions are dropped."""
    step = {"step": "backtranslate", "field": field, "keep_inputs": keep_inputs, "max_tokens": max_tokens, "seed": seed}
    _synth(docs, step, out, format, columns, backend, progress)


@app.command(
    "paraphrase", epilog="Example:  lmtailor synth paraphrase ../shared/data/lima/lima.json --n 3 --out runs/synth_pp"
)
@with_backend_options
def paraphrase(
    inputs: Annotated[list[Path], typer.Argument(help="Datasets whose instructions are reworded.")],
    out: OutOpt = Path("runs/synth_paraphrase"),
    n: Annotated[int, typer.Option(help="Rewordings asked for per record (step: n).")] = 3,
    max_rouge: MaxRougeOpt = 0.8,
    min_similarity: Annotated[
        float, typer.Option(help="Least embedding cosine with the original: below it the meaning drifted (0: off).")
    ] = 0.75,
    keep_inputs: Annotated[bool, typer.Option(help="Keep the originals beside their rewordings.")] = True,
    max_tokens: MaxTokensOpt = 96,
    seed: SeedOpt = 0,
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    backend: dict[str, Any] = BACKEND,
    progress: ProgressOpt = True,
) -> None:
    """N rewordings of each instruction (input and answer kept), deduplicated against every original and each
    other (exact copies once folded, ROUGE-L near copies); rewordings whose meaning drifted are dropped too."""
    step = {"step": "paraphrase", "n": n, "max_rouge": max_rouge, "min_similarity": min_similarity,
            "keep_inputs": keep_inputs, "max_tokens": max_tokens, "seed": seed}  # fmt: skip
    _synth(inputs, step, out, format, columns, backend, progress)


@app.command(
    "failures",
    epilog="Example:  lmtailor synth failures cases.jsonl --per-case 3 --out runs/synth_fail\n\n"
    '          cases.jsonl: {"instruction": ..., "input": ..., "output": EXPECTED, "model_answer": WRONG}',
)
@with_backend_options
def failures(
    cases: Annotated[list[Path], typer.Argument(help="Evaluation cases the model got wrong.")],
    out: OutOpt = Path("runs/synth_failures"),
    per_case: Annotated[int, typer.Option(help="New examples asked for per case (step: per_case).")] = 3,
    wrong_field: Annotated[str, typer.Option(help="Field with the model's wrong answer.")] = "model_answer",
    max_rouge: MaxRougeOpt = 0.7,
    max_tokens: MaxTokensOpt = 192,
    seed: SeedOpt = 0,
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    backend: dict[str, Any] = BACKEND,
    progress: ProgressOpt = True,
) -> None:
    """Training examples aimed at evaluation failures: the same skill on new subjects. The cases never reach the
    output, and generated questions too close to any case (ROUGE-L) are dropped as leaks."""
    step = {"step": "failure_targets", "per_case": per_case, "wrong_field": wrong_field, "max_rouge": max_rouge,
            "max_tokens": max_tokens, "seed": seed}  # fmt: skip
    _synth(cases, step, out, format, columns, backend, progress)
