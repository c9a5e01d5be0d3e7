"""`lmtailor eval`: one evaluation for every rung of the ladder.

A system is a model (the embedded default, a GGUF file, a Hugging Face folder), optionally with an adapter
(a GGUF LoRA served by llama.cpp, or a PEFT folder merged in by transformers), asked through a prompter: the
training Template (zero-shot, and the shape a tuned model learned), few-shot shots (ICL), retrieved passages
(RAG), or both. Every system is scored by the same `score_task` that `train` runs before and after training,
so the figures of all four rungs compare. The run folder holds the config, one prediction row per example
(prompt, answer, score, cost, shots or citations) and the manifest, written last; the response cache makes a
killed run's rerun skip every answer already computed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lmtailor import __version__
from lmtailor.core.config import ConfigError, ConfigPath, load_config
from lmtailor.core.inputs import InputSpec
from lmtailor.core.io import write_jsonl
from lmtailor.core.progress import make_progress
from lmtailor.core.records import Example
from lmtailor.core.rundir import EvalFolder, file_digest
from lmtailor.evaluate.task import TaskConfig, score_task
from lmtailor.llm.client import LLM
from lmtailor.llm.config import BackendConfig, LlamaCppConfig, OpenAIConfig, TransformersConfig, open_llm
from lmtailor.prompting.few_shot import FewShot
from lmtailor.prompting.icl import IclConfig, PromptSet, build_prompt_set, icl_prompter, llm_tokens
from lmtailor.prompting.prompter import Prompter
from lmtailor.prompting.retrieval.prompter import RetrievalConfig, RetrievalPrompter
from lmtailor.prompting.template import Template, TemplateConfig, Turns


class EvalRunConfig(BaseModel):
    """What `lmtailor eval` scores (the system: backend, template, ICL, retrieval) and on what (the task)."""

    model_config = ConfigDict(extra="forbid")
    data: list[InputSpec] = Field(min_length=1)
    out: ConfigPath
    backend: BackendConfig = LlamaCppConfig()
    # How an example becomes a prompt without shots or passages: the training Template (`turns`: the chat turns
    # as they are, for a chat server that applies its own template).
    template: TemplateConfig | None = None
    turns: bool = False
    # Shots before each question: an ICL config (YAML) or a prompt set `lmtailor icl` wrote (its folder).
    icl: ConfigPath | None = None
    rag: RetrievalConfig | None = None  # retrieved passages before each question
    task: TaskConfig = TaskConfig()
    limit: int | None = Field(None, ge=1)  # the first N examples only
    progress: bool = True

    @classmethod
    def load(cls, path: Path, overrides: dict[str, Any] | None = None) -> EvalRunConfig:
        return load_config(cls, path, "eval config", "a mapping of eval settings (data, backend, task, ...)", overrides)


def evaluate(cfg: EvalRunConfig) -> dict[str, Any]:
    """Score the system on the task; returns the manifest written to `cfg.out`."""
    folder = EvalFolder(cfg.out)
    examples = _examples(cfg)
    with folder.locked():
        folder.begin()
        folder.config.write_text(cfg.model_dump_json(indent=2) + "\n", encoding="utf-8")
        start = time.perf_counter()
        with make_progress(cfg.progress, unit="query") as progress:
            llm = open_llm(cfg.backend, progress)
            loaded = time.perf_counter() - start
            try:
                prompter = system_prompter(cfg, llm, examples)
                result = score_task(llm, prompter, examples, _task(cfg.task, prompter))
            finally:
                llm.backend.close()
        rows = [{**row, "prompt": p} for row, p in zip(result.predictions, result.prompts, strict=True)]
        write_jsonl(folder.predictions, rows)
        rag = cfg.rag.model_dump(mode="json") if cfg.rag else None
        icl = str(cfg.icl) if cfg.icl else None
        seconds = {"load": round(loaded, 1), "total": round(time.perf_counter() - start, 1)}
        manifest = {
            "lmtailor_version": __version__,
            "system": {"backend": llm.identity, "prompter": type(prompter).__name__, "icl": icl, "rag": rag},
            "data": [{"path": str(spec.path), **file_digest(spec.path)} for spec in cfg.data],
            "examples": len(examples),
            "task": result.summary,
            "usage": llm.usage.to_json(),
            "seconds": seconds,
        }
        return folder.commit(manifest, [folder.config.name, folder.predictions.name])


def _task(task: TaskConfig, prompter: Prompter) -> TaskConfig:
    """The task as the prompter shapes its answers: its stop sequences join the task's, and its delimiter is the
    prefix of every label a choice scores unless the task names one."""
    update: dict[str, Any] = {"stop": [*task.stop, *(s for s in prompter.stop if s not in task.stop)]}
    if "label_prefix" not in task.model_fields_set and prompter.delimiter:
        update["label_prefix"] = prompter.delimiter
    return task.model_copy(update=update)


def _examples(cfg: EvalRunConfig) -> list[Example]:
    examples = [ex for spec in cfg.data for ex in spec.read()]
    return examples[: cfg.limit] if cfg.limit else examples


def system_prompter(cfg: EvalRunConfig, llm: LLM, examples: list[Example]) -> Prompter:
    """The system's prompter: the base one, or few-shot prompts (ICL), with retrieved passages put before each
    question when an index is named. Shots are chosen and the index opened (and checked) before any question is
    asked."""
    prompter = base_prompter(cfg, llm) if cfg.icl is None else _icl(cfg, cfg.icl, llm, examples)
    if cfg.rag is not None:
        prompter = RetrievalPrompter.from_config(cfg.rag, prompter, llm.count_tokens)
    return prompter


def _icl(cfg: EvalRunConfig, path: Path, llm: LLM, examples: list[Example]) -> PromptSet | FewShot:
    """The prompt set of an ICL config for these examples, or the one `lmtailor icl` wrote to the folder `path`.
    A chat server is asked in turns; a model served here, in the completion form a base model continues. With
    retrieval the few-shot prompter itself is the inner one: each prompt is made once its passages are in."""
    if path.is_dir():
        if cfg.rag is not None:
            raise ConfigError(f"{path}: a prompt set holds finished prompts, with no room for passages; give the "
                              "ICL config with rag instead")  # fmt: skip
        return PromptSet.load(path)
    chat = cfg.turns or isinstance(cfg.backend, OpenAIConfig)
    prompter = icl_prompter(IclConfig.load(path), llm_tokens(llm), chat)
    if cfg.rag is not None:
        prompter.prepare(examples)
        return prompter
    return build_prompt_set(prompter, examples, cfg.data[0].path)


def base_prompter(cfg: EvalRunConfig, llm: LLM) -> Prompter:
    """The prompter a system without shots or passages asks through: the training Template over the model's own
    tokenizer, or the chat turns as they are for a server (or when `turns` is set)."""
    if cfg.turns or isinstance(cfg.backend, OpenAIConfig):
        return Turns()
    return Template(model_tokenizer(cfg.backend, llm), cfg.template)


def model_tokenizer(backend: BackendConfig, llm: LLM) -> Any:
    """The Hugging Face tokenizer of the model a backend serves: the Template needs its BOS, EOS and chat
    template. The embedded model's comes from its converted folder (cached); another GGUF file's from the file."""
    from transformers import AutoTokenizer

    if isinstance(backend, TransformersConfig):
        return llm.backend.tokenizer  # type: ignore[attr-defined]
    if isinstance(backend, LlamaCppConfig) and backend.model:
        path = Path(backend.model)
        return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    from lmtailor.llm.convert import embedded_hf_dir

    return AutoTokenizer.from_pretrained(embedded_hf_dir())
