"""`lmtailor icl`: build a few-shot prompt for every query, from a pool of solved examples, as a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, get_args

import typer

from lmtailor.cli.shared import (
    ColumnsOpt,
    FormatOpt,
    console,
    input_specs,
    names,
    one_of,
    out_option,
    renames,
    reported,
)
from lmtailor.prompting.few_shot import Order
from lmtailor.prompting.icl import FormSetting, Strategy

EPILOG = (
    "Example:  lmtailor icl train.jsonl test.jsonl --out runs/icl --strategy knn --k 4 --budget 1024\n\n"
    "          lmtailor icl train.jsonl test.jsonl --out runs/icl_sql --config icl_spider.yaml"
)
STRATEGIES, ORDERS, FORMS = get_args(Strategy), get_args(Order), get_args(FormSetting)


def icl(
    pool: Annotated[Path, typer.Argument(help="Solved examples the shots come from (config: pool).")],
    queries: Annotated[Path, typer.Argument(help="The examples to build prompts for, each with its reference.")],
    out: Annotated[Path, out_option("Folder for prompts.jsonl and manifest.json.")] = Path("runs/icl"),
    config: Annotated[Path | None, typer.Option(help="YAML ICL config; the flags below override it.")] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            help=f"{', '.join(STRATEGIES)} (strategy; default knn).", callback=one_of("--strategy", STRATEGIES)
        ),
    ] = None,
    k: Annotated[int | None, typer.Option("--k", help="Shots per prompt, at most (k; default 4).")] = None,
    budget: Annotated[
        int | None, typer.Option(help="Most prompt tokens, counted with the target model's tokenizer (budget_tokens).")
    ] = None,
    mmr_lambda: Annotated[float | None, typer.Option(help="mmr: 1 relevance alone, 0 diversity alone.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the random draws (seed).")] = None,
    order: Annotated[
        str | None, typer.Option(help=f"{', '.join(ORDERS)} (order).", callback=one_of("--order", ORDERS))
    ] = None,
    same: Annotated[str | None, typer.Option(help="A field shots share with the query, e.g. db_id (same).")] = None,
    context_marker: Annotated[
        str | None, typer.Option(help="Where shared context ends, e.g. 'Question: ': stated once (context_marker).")
    ] = None,
    form: Annotated[
        str | None,
        typer.Option(help="completion (base models), chat or auto (form).", callback=one_of("--form", FORMS)),
    ] = None,
    label: Annotated[str | None, typer.Option(help="balanced: the field holding the label (label).")] = None,
    ids: Annotated[str | None, typer.Option(help="fixed: comma-separated pool ids, in order (ids).")] = None,
    tokenizer: Annotated[
        Path | None, typer.Option(help="GGUF file whose tokenizer counts tokens (default: the embedded model).")
    ] = None,
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
) -> None:
    """Build one few-shot prompt per query and write them as a dataset to inspect, audit and evaluate.

    Shots are chosen per query from the pool ([bold]random[/], [bold]knn[/], [bold]mmr[/], [bold]balanced[/]), once
    for all ([bold]diverse[/]), or named ([bold]fixed[/]); a query is never its own shot. Writes
    [bold]prompts.jsonl[/] (prompt, shot ids, prompt tokens, overflow, reference) and [bold]manifest.json[/].
    """
    from lmtailor.core.inputs import InputSpec
    from lmtailor.prompting.icl import IclConfig, gguf_tokens, write_prompt_set

    settings = {"strategy": strategy, "k": k, "budget_tokens": budget, "mmr_lambda": mmr_lambda, "seed": seed,
                "order": order, "same": same, "context_marker": context_marker, "form": form, "label": label,
                "ids": names("--ids", ids) if ids is not None else None}  # fmt: skip
    spec, query_spec = input_specs([pool, queries], format, renames(columns))
    overrides: dict[str, Any] = {"pool": spec, **{name: v for name, v in settings.items() if v is not None}}
    with reported(ValueError):
        cfg = IclConfig.load(config, overrides) if config is not None else IclConfig.model_validate(overrides)
        manifest = write_prompt_set(cfg, InputSpec.model_validate(query_spec), out, gguf_tokens(tokenizer))
    _print(manifest, out)


def _print(manifest: dict[str, Any], out: Path) -> None:
    counts, shots, tokens = manifest["counts"], manifest["shots"], manifest["prompt_tokens"]
    cfg = manifest["config"]
    budget = f" of a {cfg['budget_tokens']}-token budget" if cfg["budget_tokens"] else ""
    console.print(
        f"{counts['prompts']} {manifest['form']} prompts, {cfg['strategy']} shots: {shots['mean']:.2f} per prompt "
        f"({shots['min']}–{shots['max']}); prompt tokens p50 {tokens['p50']:.0f} / p95 {tokens['p95']:.0f}{budget}"
    )
    if counts["overflow"]:
        console.print(f"[bold]{counts['overflow']}[/] queries overflow the budget even without shots")
    console.print(f"wrote {out / 'prompts.jsonl'} and {out / 'manifest.json'}", highlight=False)
