"""One training run, end to end: data → learning and forgetting before → train → after → export → report.

The run folder holds everything a person needs afterwards: `config.json` (what was asked), `metrics.jsonl`
and `curves.png` (the loss curves), `rejects.jsonl` (examples that could not be trained on, with reasons),
`eval_before.json` / `eval_after.json` (predictions and probe figures), the exports, and `manifest.json`
(data statistics, speed, memory, learning and forgetting). A run killed at any point is started again with
the same command: it resumes from its last complete checkpoint and reuses the figures measured before.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from transformers import PrinterCallback, set_seed

from lmtailor.core import rundir
from lmtailor.core.cachedir import cache_dir
from lmtailor.core.io import atomic_path, write_jsonl
from lmtailor.core.progress import console, make_progress
from lmtailor.core.records import Example
from lmtailor.evaluate.report import METHOD, compare, measure, render_table
from lmtailor.llm.client import LLM
from lmtailor.llm.transformers_backend import TransformersBackend
from lmtailor.prompting.template import Template
from lmtailor.train.config import TrainConfig
from lmtailor.train.data import Batches, bucket, pack, rows_in_batches, tokenize, unwrap
from lmtailor.train.manifest import DataSummary, TrainingFigures, TrainManifest
from lmtailor.train.model import TrainError, load_model, load_tokenizer, model_dir
from lmtailor.train.trainer import (
    AnswerLossTrainer,
    RunLog,
    callbacks,
    last_checkpoint,
    reload_if_finished,
    training_args,
)


def train(cfg: TrainConfig, restart: bool = False) -> TrainManifest | None:
    """Run (or resume) the training `cfg` describes; returns the manifest (None on the ranks that do not write).
    The writing rank holds the run folder's lock, so a second training into the same folder is refused instead
    of mixing checkpoints."""
    main = int(os.environ.get("RANK", "0")) == 0  # under accelerate/torchrun only rank 0 measures and writes
    with rundir.locked(cfg.out) if main else nullcontext():
        return _train(cfg, restart, main)


def _train(cfg: TrainConfig, restart: bool, main: bool) -> TrainManifest | None:
    out = rundir.TrainFolder(cfg.out)
    path = model_dir(cfg.model)
    _claim(out, cfg, restart)
    tokenizer = load_tokenizer(path)
    template = Template(tokenizer, cfg.template)
    train_ex, eval_ex = _split(cfg)
    train_tok, train_stats = tokenize(train_ex, template, cfg.max_length)
    eval_tok, eval_stats = tokenize(eval_ex, template, cfg.max_length)
    write_jsonl(out.rejects, train_stats.rejected + eval_stats.rejected)
    if not train_tok:
        raise TrainError(f"no trainable examples: all {len(train_ex)} were rejected (see {out.rejects})")

    set_seed(cfg.seed)  # the adapter's initial weights: a resumed run must start from the same ones
    model = load_model(path, cfg)

    scored = eval_ex[: cfg.eval_limit] if cfg.eval_limit is not None else eval_ex

    def measured(model: Any, progress: Any) -> dict[str, Any]:
        """Learning and forgetting of the model as it is now, asked through the backend every evaluation uses."""
        backend = TransformersBackend.wrap(model, tokenizer, path.name, batch_size=cfg.evaluate.task.batch_size)
        return measure(LLM(backend, progress=progress), template, scored, cfg.evaluate)

    with make_progress(cfg.progress and main) as progress:
        key = _base_key(path, cfg, scored)
        before = _measured(out.eval_before, key, lambda: measured(model, progress)) if main else {}

    train_set = _batches(train_tok, cfg, tokenizer.pad_token_id)
    eval_set = _batches(eval_tok, cfg, tokenizer.pad_token_id) if eval_tok else None
    log = RunLog(out.metrics, cfg.progress)
    trainer = AnswerLossTrainer(
        model=model,
        args=training_args(cfg, out.checkpoints, len(train_set)),
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=unwrap,
        processing_class=tokenizer,  # saved with each checkpoint; tells the token count what padding is
        callbacks=callbacks(cfg, log),
    )
    trainer.remove_callback(PrinterCallback)  # RunLog shows and records the logs instead
    resume = last_checkpoint(out.checkpoints)
    # Every rank evaluates (evaluation gathers across processes); a resumed run has its loss before on disk.
    if eval_set is not None and resume is None:
        before["eval_loss"] = trainer.evaluate()["eval_loss"]  # the held-out answers' loss before any step
        if main:
            _write_json(out.eval_before, before)
    started = time.perf_counter()
    if resume is not None and reload_if_finished(trainer, resume):
        train_loss = None  # of this process: it took no step
    else:
        train_loss = trainer.train(resume_from_checkpoint=str(resume) if resume else None).training_loss
    seconds = time.perf_counter() - started
    state = trainer.state
    loss_after = _loss_after(trainer) if eval_set is not None else None
    if not main:
        return None
    model = trainer.model
    with make_progress(cfg.progress) as progress:
        after = measured(model, progress)
    if loss_after is not None:
        after["eval_loss"] = loss_after
    _write_json(out.eval_after, after)

    exports = _export(cfg, model, tokenizer, out)
    from lmtailor.train.plot import plot_curves

    plot_curves(out.metrics, out.curves)
    changes = compare(before, after)
    manifest = TrainManifest(
        config=cfg,
        model_dir=str(path),
        data=DataSummary(train=train_stats.figures(), eval=eval_stats.figures(), micro_batches=len(train_set)),
        training=TrainingFigures(
            steps=state.global_step,
            resumed_from=resume.name if resume else None,
            train_loss=train_loss,
            best_checkpoint=state.best_model_checkpoint,
            seconds_this_process=round(seconds, 1),
            training_seconds=round(log.training_seconds(), 1),
            tokens_seen=int(state.num_input_tokens_seen),
            tokens_per_s=round(log.tokens_per_s(state), 1),
            peak_memory_mb=log.peak_memory_mb(),
            trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
            world_size=trainer.args.world_size,
        ),
        before=_figures(before),
        after=_figures(after),
        changes=changes,
        exports=exports,
        command=sys.argv,
    )
    _write_json(out.index, manifest.model_dump(mode="json"))
    console.print(render_table(before, after))
    return manifest


def _claim(out: rundir.TrainFolder, cfg: TrainConfig, restart: bool) -> None:
    """Own `out` for this config: a folder holding a different run is refused, not overwritten."""
    saved = out.config
    current = json.loads(cfg.model_dump_json(exclude={"progress"}))
    if restart and out.path.exists():
        for p in out.path.iterdir():  # all but the lock this run holds
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.name != rundir.LOCK:
                p.unlink()
    if saved.exists():
        try:
            earlier = json.loads(saved.read_text(encoding="utf-8"))
        except (ValueError, RecursionError):  # a bad byte, bad JSON, nesting too deep
            raise TrainError(f"{saved} is damaged; pass --restart to replace the run or choose another --out") from None
        if earlier != current:
            raise TrainError(
                f"{out.path} holds a run with a different config; pass --restart to replace it or choose --out"
            )
    out.path.mkdir(parents=True, exist_ok=True)
    _write_json(saved, current)


def _split(cfg: TrainConfig) -> tuple[list[Example], list[Example]]:
    """Train and held-out examples: the eval files, or a seeded `eval_fraction` of the training data."""
    train = [ex for spec in cfg.train for ex in spec.read()]
    if cfg.eval:
        return train, [ex for spec in cfg.eval for ex in spec.read()]
    held = round(len(train) * cfg.eval_fraction)
    order = list(range(len(train)))
    random.Random(cfg.seed).shuffle(order)
    chosen = set(order[:held])
    return [ex for i, ex in enumerate(train) if i not in chosen], [ex for i, ex in enumerate(train) if i in chosen]


def _batches(items: list[Any], cfg: TrainConfig, pad_id: int) -> Batches:
    if not cfg.packing:
        return Batches(bucket(items, cfg.batch_size), False, pad_id)
    width = cfg.row_length or cfg.max_length
    return Batches(rows_in_batches(pack(items, width), max(cfg.tokens_per_batch // width, 1)), True, pad_id)


def _loss_after(trainer: AnswerLossTrainer) -> float:
    """The held-out loss of the weights training ended with: the best checkpoint's when those are kept, else the
    last step's. The trainer has usually measured it at that step already (a full pass over held-out data)."""
    state = trainer.state
    if trainer.args.load_best_model_at_end and state.best_metric is not None:
        return state.best_metric
    last = [row["eval_loss"] for row in state.log_history if "eval_loss" in row and row["step"] == state.global_step]
    return last[-1] if last else trainer.evaluate()["eval_loss"]


def _measured(path: Path, key: str, measure: Any) -> dict[str, Any]:
    """The untrained model's figures, measured once: a resumed run reads them from its folder, and any run of
    the same base model, template, evaluation settings and held-out examples from the cache (an adapter starts
    as a no-op and full fine-tuning from the base weights, so every method starts from the same figures)."""
    cached = cache_dir("evals") / f"{key}.json"
    for source in (path, cached):
        if source.exists():
            figures = json.loads(source.read_text(encoding="utf-8"))
            _write_json(path, figures)
            return figures
    figures = measure()
    _write_json(path, figures)
    _write_json(cached, figures)
    return figures


def _base_key(path: Path, cfg: TrainConfig, eval_ex: list[Example]) -> str:
    """Digest of what the base measurement depends on; the weights by their files' names, sizes and times."""
    weights = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.glob("*.safetensors"))
    basis = {"model": str(path.resolve()), "weights": weights, "config": (path / "config.json").read_text(),
             "template": cfg.template.model_dump(), "evaluate": cfg.evaluate.model_dump(mode="json"),
             "max_length": cfg.max_length, "examples": [ex.to_json() for ex in eval_ex], "method": METHOD}  # fmt: skip
    return hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _figures(measured: dict[str, Any]) -> dict[str, Any]:
    """The measurement without its per-example predictions (those stay in eval_*.json)."""
    return {k: ({kk: vv for kk, vv in v.items() if kk != "predictions"} if isinstance(v, dict) else v)
            for k, v in measured.items()}  # fmt: skip


def _export(cfg: TrainConfig, model: Any, tokenizer: Any, out: rundir.TrainFolder) -> dict[str, str]:
    from lmtailor.llm.embedded import gguf_path
    from lmtailor.train.export import save_adapter, save_gguf_lora, save_gguf_model, save_merged

    done: dict[str, str] = {}
    for kind in cfg.export or []:
        target = out.export(kind, whole_model=cfg.method == "full")
        if kind == "adapter":
            save_adapter(model, target)
        elif kind == "merged":
            save_merged(model, tokenizer, target)
        elif cfg.method == "full":  # the config allows it for the embedded model only, converted from gguf_path()
            save_gguf_model(model, gguf_path(), target, cfg.gguf_type)
        else:
            save_gguf_lora(model, target)
        done[kind] = str(target)
    return done


def _write_json(path: Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
