"""One config for a training run: every `lmtailor train` flag is a field here, and a YAML file can hold it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lmtailor.core.config import load_config
from lmtailor.core.inputs import InputSpec
from lmtailor.evaluate.report import EvalConfig
from lmtailor.prompting.template import TemplateConfig

# The type of a full fine-tune's GGUF: f16 serves what was trained (to f16 rounding); q8_0 is half the size.
GgufType = Literal["f16", "q8_0"]


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int = Field(16, ge=1)
    alpha: float = Field(32, gt=0)
    # 0 by default: PEFT's dropout copies each layer's input once per adapted module, which cost 14-16% of the
    # training speed on Gemma 3 270M (bench/train_sql.py speed), for a regulariser that rarely matters
    dropout: float = Field(0.0, ge=0, lt=1)
    # None: every linear layer of the decoder blocks, named per architecture (see model.py)
    target_modules: list[str] | None = None


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = "embedded"  # a Hugging Face causal-LM folder, or "embedded" (Gemma 3 270M, converted once)
    method: Literal["lora", "qlora", "dora", "full"] = "lora"
    train: list[InputSpec]
    eval: list[InputSpec] = []  # held-out examples; none: `eval_fraction` of train is held out
    eval_fraction: float = Field(0.1, ge=0, lt=1)
    # held-out examples answered for the task metric before and after (generation is the slow part of a run);
    # None: all of them. The validation loss always uses every held-out example.
    eval_limit: int | None = Field(None, ge=0)
    template: TemplateConfig = TemplateConfig()
    lora: LoraSettings = LoraSettings()
    out: Path = Path("runs/train")

    max_length: int = Field(1024, ge=8)  # tokens per example (longer ones are cut, and counted)
    packing: bool = True  # False: length-bucketed padded batches
    # Packing: tokens per row (None: max_length); a longer example gets a row to itself. Attention costs the
    # square of the row's length even where the mask blocks it, so rows a few examples long train faster.
    row_length: int | None = Field(None, ge=8)
    tokens_per_batch: int = Field(4096, ge=8)  # packing: tokens per micro-batch, in rows of row_length
    batch_size: int = Field(8, ge=1)  # bucketing: examples per micro-batch
    grad_accum: int = Field(1, ge=1)

    epochs: float = Field(1.0, gt=0)
    max_steps: int = -1  # >0 overrides epochs; -1: by epochs
    max_minutes: float | None = Field(None, gt=0)  # stop (with a checkpoint) once training has run this long
    learning_rate: float | None = Field(None, gt=0)  # None: 2e-4 for LoRA/DoRA/QLoRA, 2e-5 for full
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    seed: int = 0

    eval_every: int = Field(0, ge=0)  # steps between validation-loss evaluations; 0: once per epoch
    save_every: int = Field(50, ge=1)  # steps between checkpoints (a killed run resumes from the last)
    keep_checkpoints: int = Field(2, ge=1)
    early_stopping: int = Field(0, ge=0)  # evaluations without validation-loss improvement before stopping
    gradient_checkpointing: bool = False

    evaluate: EvalConfig = EvalConfig()  # learning and forgetting, measured before and after
    # None: adapter + GGUF adapter for LoRA/QLoRA, adapter + merged for DoRA, merged for full fine-tuning.
    # gguf: a GGUF LoRA for the adapter methods, the whole model in `gguf_type` for full fine-tuning.
    export: list[Literal["adapter", "merged", "gguf"]] | None = None
    gguf_type: GgufType = "f16"
    progress: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.method == "full" and self.export and "adapter" in self.export:
            raise ValueError("full fine-tuning has no adapter to export: use export [merged] or [merged, gguf]")
        if self.method == "full" and self.export and "gguf" in self.export and self.model != "embedded":
            raise ValueError(
                "a full fine-tune's GGUF takes its tokenizer and hyper-parameters from the GGUF the model was"
                " converted from, which only model embedded has: export [merged] and convert it with llama.cpp's"
                " convert_hf_to_gguf.py"
            )
        if self.method != "full" and self.gguf_type != "f16":
            raise ValueError(
                f"gguf_type sets the type of a full fine-tune's GGUF; the GGUF LoRA of {self.method} is float32"
            )
        if self.method == "dora" and self.export and "gguf" in self.export:
            raise ValueError("llama.cpp cannot apply DoRA: export [adapter, merged] and serve the merged model")
        if self.export is None:
            defaults = {"full": ["merged"], "dora": ["adapter", "merged"]}
            self.export = defaults.get(self.method, ["adapter", "gguf"])
        return self

    @field_validator("max_steps")
    @classmethod
    def _steps(cls, v: int) -> int:
        """0 or -5 would quietly fall back to epochs and start a run nobody asked for."""
        if v != -1 and v < 1:
            raise ValueError("max_steps is a number of steps (1 or more), or -1 to train by epochs")
        return v

    @property
    def lr(self) -> float:
        return self.learning_rate or (2e-5 if self.method == "full" else 2e-4)

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """A YAML config; relative data paths are taken from the YAML's folder."""
        return load_config(cls, path, "training config", "a training config is a mapping with train, method, ...")
