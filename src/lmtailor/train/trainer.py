"""The training loop: Hugging Face's Trainer with a loss that computes logits only where it needs them.

Why the plain Trainer and not TRL's SFTTrainer: SFTTrainer's value is its dataset preparation (templates,
completion masks, packing), and lmtailor does that itself (data.py) so that the mask and the packing can be
proved token by token and reported. What remains is the loop, and Trainer's loop is the one everybody trusts:
checkpoints holding optimizer, scheduler and RNG state (a killed run resumes exactly), gradient accumulation,
schedules, evaluation, early stopping, and DDP/FSDP/DeepSpeed through accelerate.

The one change is the loss. Gemma's output layer maps each position to 262,144 vocabulary logits, about 60%
of the model's parameters; the loss needs them only at answer tokens. Passing those positions as
`logits_to_keep` skips the prompt's (usually most of a row), forward and backward.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainerState, TrainingArguments

from lmtailor.core.progress import make_progress
from lmtailor.train.data import IGNORE

if TYPE_CHECKING:
    from lmtailor.train.config import TrainConfig


class AnswerLossTrainer(Trainer):
    """Trainer whose loss is the mean cross-entropy over answer tokens, computed from those logits alone."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # The loss below divides by the answer tokens of the whole accumulated step (num_items_in_batch), so
        # the Trainer must neither divide again by the accumulation steps nor skip counting them.
        self.model_accepts_loss_kwargs = True

    def compute_loss(
        self, model: Any, inputs: dict[str, torch.Tensor], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        targets = inputs.pop("shift_labels")
        inputs.pop("labels")
        keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(-1)
        outputs = model(**inputs, logits_to_keep=keep, use_cache=False)
        logits = outputs.logits.float()
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets[:, keep].reshape(-1), ignore_index=IGNORE, reduction="sum"
        )
        loss = loss / (num_items_in_batch if num_items_in_batch is not None else (targets != IGNORE).sum())
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # DDP averages gradients; the count was global
        return (loss, outputs) if return_outputs else loss


class RunLog(TrainerCallback):
    """Progress bar (loss, tokens/s, ETA) and every logged figure appended to metrics.jsonl.

    tokens/s counts the tokens this process has pushed through from the start (or resumption) to the end of
    training, over the time spent training: a resumed run does not report the time of the run it continues, and
    evaluations, during training or after it, do not count. Training rows carry the process's peak memory, so
    the run's peak survives a resumed or reloaded run (a process that only evaluates a finished run peaks far
    lower than the one that trained it)."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled
        self.progress = make_progress(enabled, unit="step")
        self.task: Any = None
        self.start: tuple[float, int] | None = None  # (time, tokens seen) when this process began training
        self.end: float | None = None  # when training ended
        self.evaluating = 0.0  # seconds of evaluation during training

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.start = (time.perf_counter(), state.num_input_tokens_seen)
        self.evaluating = 0.0
        _truncate_after(self.path, state.global_step)  # lines a killed run logged after its last checkpoint
        if state.is_world_process_zero:
            self.progress.start()
            self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step)

    def training_seconds(self) -> float:
        """Seconds this process has spent training, evaluations excluded."""
        if self.start is None:
            return 0.0
        return (self.end or time.perf_counter()) - self.start[0] - self.evaluating

    def tokens_per_s(self, state: Any) -> float:
        elapsed = self.training_seconds()
        return (state.num_input_tokens_seen - self.start[1]) / elapsed if self.start and elapsed > 0 else 0.0

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                    **kwargs: Any) -> None:  # fmt: skip
        if self.end is None and metrics:
            self.evaluating += metrics.get("eval_runtime", 0.0)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, "epoch": round(state.epoch or 0, 4), **logs}
        row["tokens_seen"] = int(state.num_input_tokens_seen)
        row["tokens_per_s"] = round(self.tokens_per_s(state), 1)
        if "loss" in logs:
            row["peak_memory_mb"] = peak_memory_mb()
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.task is not None and "loss" in logs:
            text = f"train loss {logs['loss']:.3f} · {row['tokens_per_s']:,.0f} tok/s"
            self.progress.update(self.task, description=text)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.end = time.perf_counter()
        self.progress.stop()

    def peak_memory_mb(self) -> float:
        """The run's peak: the highest any process logged while training, or this process's, if higher."""
        rows = map(json.loads, self.path.open(encoding="utf-8")) if self.path.exists() else []
        logged = [row.get("peak_memory_mb", 0.0) for row in rows]
        return max([peak_memory_mb(), *logged])


def peak_memory_mb() -> float:
    """Peak resident memory of this process (the GPU's peak allocation when training on CUDA)."""
    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class TimeBudget(TrainerCallback):
    """Stops training after `minutes` of it in this process, saving a checkpoint first (a rerun continues)."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60
        self.start = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if time.perf_counter() - self.start >= self.seconds:
            control.should_training_stop = True
            control.should_save = True


def reload_if_finished(trainer: Trainer, checkpoint: Path) -> bool:
    """Whether `checkpoint` is its run's last step (the run was killed after training, while evaluating); if so,
    the trainer gets the weights and state that run ended with, without Trainer.train: resumed from its last
    step, its loop fast-forwards into the unfinished last epoch (with fractional epochs, or max_steps short of an
    epoch) and takes one more step before it checks max_steps, which changes the weights unless the rate is 0."""
    state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    if not state.global_step >= state.max_steps > 0:
        return False
    trainer.state = state
    best = state.best_model_checkpoint
    kept = best if trainer.args.load_best_model_at_end and best else str(checkpoint)
    trainer._load_from_checkpoint(kept)  # what Trainer.train does with resume_from_checkpoint and the best model
    return True


def _truncate_after(path: Path, step: int) -> None:
    if not path.exists():
        return
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if json.loads(line)["step"] <= step]
    path.write_text("".join(f"{r}\n" for r in rows), encoding="utf-8")


def training_args(cfg: TrainConfig, checkpoints: Path, steps_per_epoch: int) -> TrainingArguments:
    """TrainingArguments from the config. One dataset item is one micro-batch, hence batch size 1."""
    eval_every = cfg.eval_every or max(steps_per_epoch // cfg.grad_accum, 1)
    save_every = eval_every if cfg.early_stopping else cfg.save_every
    return TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=1,
        per_device_eval_batch_size=1,
        gradient_accumulation_steps=cfg.grad_accum,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.lr,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=eval_every,
        save_strategy="steps",
        save_steps=save_every,
        save_total_limit=cfg.keep_checkpoints,
        load_best_model_at_end=bool(cfg.early_stopping),
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        prediction_loss_only=True,
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        report_to=[],
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        ddp_backend="gloo" if not torch.cuda.is_available() and _distributed() else None,
        ddp_find_unused_parameters=False,
    )


def _distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def callbacks(cfg: TrainConfig, log: RunLog) -> list[TrainerCallback]:
    out: list[TrainerCallback] = [log]
    if cfg.early_stopping:
        out.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping))
    if cfg.max_minutes:
        out.append(TimeBudget(cfg.max_minutes))
    return out


def last_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint that was written to the end (its trainer_state.json, saved last, parses).
    A SIGKILL during a save leaves a partial folder: it is removed, the one before is used."""
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for ckpt in found:
        try:
            json.loads((ckpt / "trainer_state.json").read_text(encoding="utf-8"))
            return ckpt
        except (OSError, ValueError):
            shutil.rmtree(ckpt, ignore_errors=True)
    return None
