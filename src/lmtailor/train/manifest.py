"""A training run's manifest.json: what was asked, what the data became, how training went, what it learned."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, field_serializer

from lmtailor.train.config import TrainConfig


class _Figures(BaseModel):
    # NaN and infinity (a diverged loss) are written as JSON's NaN and Infinity, not as null
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


class DataFigures(_Figures):
    """What the tokenizer and max_length did to one split."""

    examples: int
    tokens: int
    answer_tokens: int
    truncated: int  # examples cut at max_length
    truncated_answer_tokens: int
    rejected: int  # examples that could not be trained on (rejects.jsonl says why)


class DataSummary(_Figures):
    train: DataFigures
    eval: DataFigures
    micro_batches: int


class TrainingFigures(_Figures):
    steps: int
    resumed_from: str | None  # the checkpoint this process started from
    train_loss: float | None  # of this process: None when it took no step
    best_checkpoint: str | None
    seconds_this_process: float
    training_seconds: float  # of those, training: evaluations excluded
    tokens_seen: int
    tokens_per_s: float
    peak_memory_mb: float  # over every process of the run
    trainable_parameters: int
    world_size: int


class TrainManifest(_Figures):
    config: TrainConfig
    model_dir: str
    data: DataSummary
    training: TrainingFigures
    before: dict[str, Any]  # learning and forgetting figures, without their per-example predictions
    after: dict[str, Any]
    changes: dict[str, Any]  # each measure's {before, after, change}
    exports: dict[str, str]  # kind -> path
    command: list[str]

    @field_serializer("config")
    def _as_saved(self, config: TrainConfig) -> Any:
        """The config's own JSON dump, as config.json holds it."""
        return json.loads(config.model_dump_json())
