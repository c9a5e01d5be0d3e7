"""`lmtailor eval`: score a system (model, adapter, shots, passages) on held-out examples, with its cost."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lmtailor.cli.rag import MODES
from lmtailor.cli.shared import (
    BACKEND,
    ColumnsOpt,
    DatabasesOpt,
    FormatOpt,
    MaxNewTokensOpt,
    MetricOpt,
    ProgressOpt,
    console,
    fail,
    input_specs,
    names,
    one_of,
    out_option,
    renames,
    reported,
    with_backend_options,
)

EPILOG = (
    "Example:  lmtailor eval test.jsonl --metric sql --out runs/eval_base\n\n"
    "          lmtailor eval test.jsonl --metric sql --lora runs/lora/adapter.gguf --out runs/eval_lora\n\n"
    "          lmtailor eval pubmedqa.jsonl --metric choice --labels yes,no,maybe --out runs/eval_pqa"
)


@with_backend_options
def evaluate(
    inputs: Annotated[list[Path] | None, typer.Argument(help="Held-out examples (config: data).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML eval config; the flags below override it.")] = None,
    out: Annotated[Path | None, out_option("Run folder for the predictions and manifest (config: out).")] = None,
    backend: Any = None,  # the backend options (shared.backend_options) take its place
    adapter: Annotated[
        str | None, typer.Option(help="PEFT adapter folder merged into the model (transformers backend).")
    ] = None,
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    metric: MetricOpt = None,
    labels: Annotated[
        str | None, typer.Option(help="choice: comma-separated labels, e.g. yes,no,maybe (default: the answers).")
    ] = None,
    choices_field: Annotated[
        str | None, typer.Option(help="choice: a metadata field holding each example's own options.")
    ] = None,
    stop: Annotated[
        list[str] | None, typer.Option(help="Cut an answer at this text (repeatable; \\n for a line break).")
    ] = None,
    max_new_tokens: MaxNewTokensOpt = None,
    databases: DatabasesOpt = None,
    turns: Annotated[
        bool | None, typer.Option(help="Ask the chat turns as they are, not through the training template.")
    ] = None,
    icl: Annotated[
        Path | None,
        typer.Option(help="Shots before each question: an ICL config (YAML) or a prompt set `lmtailor icl` wrote."),
    ] = None,
    rag: Annotated[
        Path | None, typer.Option(help="A `lmtailor rag index` folder: retrieved passages before each question.")
    ] = None,
    rag_mode: Annotated[
        str | None,
        typer.Option(help="bm25, dense or hybrid (config: rag.search.mode).", callback=one_of("--rag-mode", MODES)),
    ] = None,
    rag_k: Annotated[int | None, typer.Option(help="Passages retrieved per question (config: rag.search.k).")] = None,
    rag_budget: Annotated[
        int | None, typer.Option(help="Most tokens of passages in a prompt (config: rag.budget; 512).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Score only the first N examples.")] = None,
    progress: ProgressOpt = True,
) -> None:
    """Score one system on a task: answer quality with a 95% bootstrap interval, and what each query cost
    (prompt and completion tokens, seconds; p50/p95).

    The model is the embedded Gemma 3 270M unless --model names a GGUF file (llamacpp), a server's model or
    a Hugging Face folder (transformers); --lora serves a GGUF adapter, --adapter merges a PEFT one. Writes
    [bold]predictions.jsonl[/] (prompt, answer, score and cost per example) and [bold]manifest.json[/]. A
    killed run's answers are cached: run it again to go on.
    """
    from lmtailor.evaluate.system import EvalRunConfig, evaluate

    task: dict[str, Any] = {"metric": metric, "max_new_tokens": max_new_tokens, "databases": databases,
                            "choices_field": choices_field}  # fmt: skip
    if labels is not None:
        task["labels"] = names("--labels", labels)
    if stop:
        task["stop"] = [s.replace("\\n", "\n") for s in stop]
    overrides: dict[str, Any] = {"out": out, "limit": limit, "turns": turns, "progress": progress,
                                 "icl": icl.absolute() if icl else None}  # fmt: skip
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if inputs:
        overrides["data"] = input_specs(inputs, format, renames(columns))
    with reported(ValueError):
        if config is not None:
            base = EvalRunConfig.load(config).model_dump(exclude_unset=True)
        elif inputs:
            base = {}
        else:
            fail("give held-out example files or --config")
        block = dict(base["backend"] if "backend" in base and backend == BACKEND else backend)
        if adapter is not None:
            block["adapter"] = adapter
        overrides["backend"] = block
        overrides["task"] = {**base.get("task", {}), **{k: v for k, v in task.items() if v is not None}}
        retrieval = _rag(base.get("rag"), rag, rag_mode, rag_k, rag_budget)
        if retrieval is not None:
            overrides["rag"] = retrieval
        if "out" not in {**base, **overrides}:
            fail("give --out (or out in the --config)")
        cfg = EvalRunConfig.model_validate({**base, **overrides})
    from lmtailor.llm.types import BackendError

    with reported(ValueError, BackendError):
        manifest = evaluate(cfg)
    print_eval_summary(manifest)


def _rag(
    base: dict[str, Any] | None, index: Path | None, mode: str | None, k: int | None, budget: int | None
) -> dict[str, Any] | None:
    """The config's rag block with the flags on top; the search flags need an index to search."""
    if base is None and index is None:
        if mode is not None or k is not None or budget is not None:
            fail("--rag-mode, --rag-k and --rag-budget need --rag INDEX (or rag in the --config)")
        return None
    out = {**(base or {})}
    if index is not None:
        out["index"] = index.absolute()
    out["search"] = {**out.get("search", {}), **{n: v for n, v in (("mode", mode), ("k", k)) if v is not None}}
    if budget is not None:
        out["budget"] = budget
    return out


def print_eval_summary(manifest: dict[str, Any]) -> None:
    task, cost = manifest["task"], manifest["task"]["cost"]
    lo, hi = task["ci95"]
    console.print(
        f"{task['metric']}: [bold]{task['score'] * 100:.1f}%[/] (95% CI {lo * 100:.1f}–{hi * 100:.1f}) "
        f"on {task['n']} examples"
    )
    tokens = cost["prompt_tokens"] or {"p50": 0, "p95": 0}
    per_query = cost["seconds_per_query"] or {"p50": 0, "p95": 0}
    console.print(
        f"prompt tokens p50 {tokens['p50']:.0f} / p95 {tokens['p95']:.0f}; completion tokens "
        f"{cost['completion_tokens']['total']}; seconds per query p50 {per_query['p50']:.2f} / p95 "
        f"{per_query['p95']:.2f}; {manifest['seconds']['total']:.1f} s in all ({cost['cached']} answers cached)"
    )
    if "answer_in_context" in task:
        console.print(f"answer in the retrieved context: {task['answer_in_context']['share'] * 100:.1f}%")
