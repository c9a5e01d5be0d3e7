"""`lmtailor train`: fine-tune a model and measure what it learned and forgot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from lmtailor.cli.shared import (
    ColumnsOpt,
    DatabasesOpt,
    FormatOpt,
    MaxNewTokensOpt,
    MetricOpt,
    ProgressOpt,
    fail,
    out_option,
    renames,
    reported,
)

EPILOG = (
    "Example:  lmtailor train data.jsonl --method lora --out runs/lora\n\n"
    "          lmtailor train --config recipes/train_sql.yaml --method full --out runs/full"
)


def train(
    inputs: Annotated[list[Path] | None, typer.Argument(help="Training data files (config: train).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML training config; the flags below override it.")] = None,
    out: Annotated[Path | None, out_option("Run folder (config: out).")] = None,
    model: Annotated[
        str | None, typer.Option(help="Hugging Face model folder, or 'embedded' for Gemma 3 270M (config: model).")
    ] = None,
    method: Annotated[str | None, typer.Option(help="lora, qlora, dora or full (config: method).")] = None,
    eval: Annotated[
        list[Path] | None, typer.Option("--eval", help="Held-out examples (repeatable; config: eval).")
    ] = None,
    format: FormatOpt = None,
    columns: ColumnsOpt = None,
    epochs: Annotated[float | None, typer.Option(help="Passes over the data (config: epochs).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps; overrides epochs.")] = None,
    learning_rate: Annotated[
        float | None, typer.Option(help="Peak learning rate; default 2e-4 for adapters, 2e-5 for full.")
    ] = None,
    lora_r: Annotated[int | None, typer.Option(help="LoRA rank (config: lora.r).")] = None,
    lora_alpha: Annotated[float | None, typer.Option(help="LoRA alpha (config: lora.alpha).")] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens per example; longer ones are cut.")] = None,
    packing: Annotated[
        bool | None, typer.Option(help="Pack examples into rows (default) or bucket them by length.")
    ] = None,
    row_length: Annotated[
        int | None, typer.Option(help="Packing: tokens per row (default max_length); shorter rows train faster.")
    ] = None,
    tokens_per_batch: Annotated[int | None, typer.Option(help="Packing: tokens per micro-batch.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Bucketing: examples per micro-batch.")] = None,
    grad_accum: Annotated[int | None, typer.Option(help="Micro-batches per optimizer step.")] = None,
    eval_every: Annotated[int | None, typer.Option(help="Steps between validation losses (0: each epoch).")] = None,
    save_every: Annotated[int | None, typer.Option(help="Steps between checkpoints.")] = None,
    early_stopping: Annotated[
        int | None, typer.Option(help="Stop after this many evaluations without improvement (0: off).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the split, the order and the initialisation.")] = None,
    export: Annotated[
        list[str] | None, typer.Option(help="adapter, merged, gguf (repeatable; default per method).")
    ] = None,
    gguf_type: Annotated[
        str | None, typer.Option(help="f16 or q8_0: a full fine-tune's GGUF (config: gguf_type; default f16).")
    ] = None,
    metric: MetricOpt = None,
    databases: DatabasesOpt = None,
    eval_fraction: Annotated[
        float | None, typer.Option(help="Share of the training data held out when there is no --eval (0.1).")
    ] = None,
    eval_limit: Annotated[int | None, typer.Option(help="Held-out examples answered for the task metric.")] = None,
    max_new_tokens: MaxNewTokensOpt = None,
    general_texts: Annotated[
        int | None, typer.Option(help="General texts for the cross-entropy forgetting probe (0: off).")
    ] = None,
    mmlu: Annotated[int | None, typer.Option(help="MMLU questions for the accuracy forgetting probe (0: off).")] = None,
    restart: Annotated[bool, typer.Option(help="Discard an earlier run in --out instead of resuming it.")] = False,
    progress: ProgressOpt = True,
) -> None:
    """Fine-tune with LoRA, QLoRA, DoRA or full fine-tuning, and measure what the model learned and forgot.

    Before and after training it scores the held-out task and two forgetting probes (cross-entropy on general
    text, MMLU accuracy; their data is read from ../shared/data, config: evaluate.forgetting.data_root) and
    prints the changes. Writes [bold]metrics.jsonl[/], [bold]curves.png[/],
    [bold]manifest.json[/] and the exports. A killed run resumes from its last checkpoint when run again.
    """
    from lmtailor.train.config import TrainConfig

    fields = {"out": out, "model": model, "method": method, "epochs": epochs, "max_steps": max_steps,
              "learning_rate": learning_rate, "max_length": max_length, "packing": packing, "row_length": row_length,
              "tokens_per_batch": tokens_per_batch, "batch_size": batch_size, "grad_accum": grad_accum,
              "eval_every": eval_every, "save_every": save_every, "early_stopping": early_stopping, "seed": seed,
              "export": export, "gguf_type": gguf_type, "eval_fraction": eval_fraction, "eval_limit": eval_limit,
              "progress": progress}  # fmt: skip
    overrides: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    task = {k: v for k, v in (("metric", metric), ("databases", databases), ("max_new_tokens", max_new_tokens))
            if v is not None}  # fmt: skip
    probes = {k: v for k, v in (("general_texts", general_texts), ("mmlu", mmlu)) if v is not None}
    spec = {"format": format, "columns": renames(columns)}
    if inputs:
        overrides["train"] = [{"path": p, **spec} for p in inputs]
    if eval:
        overrides["eval"] = [{"path": p, **spec} for p in eval]
    lora = {k: v for k, v in (("r", lora_r), ("alpha", lora_alpha)) if v is not None}
    with reported(ValueError):  # ValidationError, DataError and RecordError are ValueErrors
        if config is not None:
            base = TrainConfig.load(config).model_dump()
        elif inputs:
            base = {}
        else:
            fail("give training data files or --config")
        evaluate = base.get("evaluate", {})
        overrides["lora"] = {**base.get("lora", {}), **lora}
        forgetting = {**evaluate.get("forgetting", {}), **probes}
        forgetting["data_root"] = forgetting.get("data_root") or Path("../shared/data")  # beside the repository
        overrides["evaluate"] = {"task": {**evaluate.get("task", {}), **task}, "forgetting": forgetting}
        cfg = TrainConfig.model_validate({**base, **overrides})
    probe_data = cfg.evaluate.forgetting.data_root
    if (cfg.evaluate.forgetting.general_texts or cfg.evaluate.forgetting.mmlu) and not probe_data.is_dir():
        fail(f"the forgetting probes read lima/, dolly/ and mmlu/ from {probe_data} ({probe_data.resolve()}), "
             "which is not a folder: run from the repository root, set evaluate.forgetting.data_root in a "
             "--config, or turn the probes off with --general-texts 0 --mmlu 0")  # fmt: skip
    from lmtailor.train.model import TrainError  # torch and transformers load here, once the options hold
    from lmtailor.train.run import train as run_train

    with reported(ValueError, TrainError):
        run_train(cfg, restart=restart)
