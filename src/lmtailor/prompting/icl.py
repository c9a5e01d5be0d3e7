"""In-context learning as a rung of the ladder: a config, the prompter it makes, and the prompt set it writes.

`IclConfig` says where shots come from and how they are chosen, fitted and written; `icl_prompter` turns it
into a FewShot prompter for a target model's token count. `build_prompt_set` asks it for every query and keeps
the prompts as a `PromptSet`: a prompter that serves them by example id, so an evaluation asks exactly the
prompts that were inspected, and `write_prompt_set` / `PromptSet.load` keep it as a run folder
(`prompts.jsonl`, one row per query with its shots and token figures, then `manifest.json`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from lmtailor import __version__
from lmtailor.core.config import ConfigError, load_config
from lmtailor.core.inputs import InputSpec
from lmtailor.core.io import DataError, read_jsonl, write_jsonl
from lmtailor.core.records import Example, RecordError
from lmtailor.core.rundir import RunFolder, file_digest
from lmtailor.llm.backend import prompt_text
from lmtailor.llm.client import LLM
from lmtailor.llm.types import Prompt
from lmtailor.prompting.few_shot import CompletionTemplate, FewShot, Form, Order
from lmtailor.prompting.prompter import Asked, Prompter
from lmtailor.prompting.shots import (
    BalancedShots,
    DiverseShots,
    FixedShots,
    MmrShots,
    NearestShots,
    RandomShots,
    Selector,
)

Strategy = Literal["random", "knn", "mmr", "diverse", "balanced", "fixed"]
FormSetting = Literal["completion", "chat", "auto"]  # auto: chat for a model that takes turns, else completion
# The order a strategy's shots take unless `order` is set: nearest last for those that rank by similarity (a
# model leans on the last shot most), shuffled for balanced (labels in turn would teach the turn), as drawn
# or as named otherwise (a random draw is already in random order).
DEFAULT_ORDER: dict[Strategy, Order] = {"random": "chosen", "knn": "similar_last", "mmr": "similar_last",
                                        "diverse": "similar_last", "balanced": "random", "fixed": "chosen"}  # fmt: skip
PromptTokens = Callable[[Prompt], int]


class IclConfig(BaseModel):
    """How each query's few-shot prompt is made: `lmtailor icl` and `lmtailor eval --icl` read it."""

    model_config = ConfigDict(extra="forbid")
    pool: InputSpec  # the solved examples shots come from (a training split)
    strategy: Strategy = "knn"
    k: int = Field(4, ge=0)  # shots per prompt, at most (fixed: the ids named)
    budget_tokens: int | None = Field(None, ge=1)  # most prompt tokens, counted with the target model's tokenizer
    mmr_lambda: float = Field(0.5, ge=0, le=1)  # mmr: 1 relevance alone (knn), 0 diversity alone
    seed: int = 0  # random, balanced and order random: each query's stream is drawn from it and the query's id
    order: Order | None = None  # None: DEFAULT_ORDER of the strategy
    same: str | None = None  # a metadata field shots must share with the query (db_id: the same database)
    context_marker: str | None = None  # shared context ends where this begins ("Question: "): stated once
    form: FormSetting = "auto"
    completion: CompletionTemplate = CompletionTemplate()
    label: str | None = None  # balanced: the metadata field holding the label; None: the answer is the label
    ids: list[str] = []  # fixed: the shots, in order (pool ids FILE:INDEX, or the records' own `id`)

    @model_validator(mode="after")
    def _settings_of_the_strategy(self) -> IclConfig:
        given = self.model_fields_set
        if self.strategy == "fixed" and not self.ids:
            raise ValueError("strategy fixed shows the shots `ids` names; give ids")
        for name, strategy in (("ids", "fixed"), ("label", "balanced"), ("mmr_lambda", "mmr")):
            if name in given and self.strategy != strategy:
                raise ValueError(f"{name} is a setting of strategy {strategy}, not {self.strategy}")
        if self.strategy == "fixed" and "k" in given:
            raise ValueError("k: strategy fixed shows the shots its ids name")
        return self

    @classmethod
    def load(cls, path: Path, overrides: dict[str, Any] | None = None) -> IclConfig:
        return load_config(cls, path, "icl config", "a mapping of ICL settings (pool, strategy, k, ...)", overrides)


def icl_prompter(cfg: IclConfig, count_tokens: PromptTokens | None = None, chat: bool = False) -> FewShot:
    """The FewShot prompter `cfg` describes, over its pool. `count_tokens`: a prompt's tokens as the target model
    counts them (`llm_tokens(llm)`; default: the embedded model's, `gguf_tokens()`); `chat`: the target model
    takes turns (form auto is then chat, else completion)."""
    pool = read_pool(cfg.pool)
    with _located(cfg.pool.path):
        return FewShot(
            pool,
            len(cfg.ids) if cfg.strategy == "fixed" else cfg.k,
            cfg.seed,
            cfg.same,
            cfg.context_marker,
            selector=_selector(cfg),
            order=cfg.order or DEFAULT_ORDER[cfg.strategy],
            form=_form(cfg, chat),
            template=cfg.completion,
            budget=cfg.budget_tokens,
            count_tokens=count_tokens or gguf_tokens(),
        )


def _selector(cfg: IclConfig) -> Selector:
    if cfg.strategy == "knn":
        return NearestShots()
    if cfg.strategy == "mmr":
        return MmrShots(cfg.mmr_lambda)
    if cfg.strategy == "diverse":
        return DiverseShots()
    if cfg.strategy == "balanced":
        return BalancedShots(cfg.label)
    if cfg.strategy == "fixed":
        return FixedShots(cfg.ids)
    return RandomShots()


def _form(cfg: IclConfig, chat: bool) -> Form:
    if cfg.form == "auto":
        return "chat" if chat else "completion"
    return cfg.form


def read_pool(spec: InputSpec) -> list[Example]:
    """The pool's examples; a DataError naming the file and record for one without an answer to show."""
    try:
        examples = list(spec.read())
    except DataError as e:
        if e.index is None:
            raise
        raise DataError(e.path, e.index, f"{e.problem} (a shot needs its question and its answer)", e.line) from None
    for ex in examples:
        if not ex.contents("assistant")[-1].strip():
            raise DataError(spec.path, ex.metadata.get("index"), "has an empty answer: a shot must show one")
    return examples


@contextmanager
def _located(path: Path | str, example: Example | None = None) -> Iterator[None]:
    """A RecordError about a record of `path` as a DataError naming the file and the record."""
    try:
        yield
    except RecordError as e:
        raise DataError(path, example.metadata.get("index") if example else None, str(e)) from None


@dataclass(frozen=True)
class PromptSet(Prompter):
    """Stored prompts served by example id, with what each generated answer needs: where it ends (`stop`) and
    what it starts with (`delimiter`, put before each label a choice metric scores)."""

    asked: dict[str, Asked]
    references: dict[str, str]
    stop: tuple[str, ...] = ()
    delimiter: str = ""
    origin: str = "the prompt set"

    def ask(self, example: Example) -> Asked:
        if example.id not in self.asked:
            raise RecordError(f"{example.id}: has no prompt in {self.origin} (built for other queries)")
        return self.asked[example.id]

    def prompt(self, example: Example) -> Prompt:
        return self.ask(example).prompt

    @classmethod
    def load(cls, folder: Path) -> PromptSet:
        """A prompt set `write_prompt_set` wrote; refused if that run did not finish or was changed since."""
        run = IclFolder(folder)
        manifest = run.require_complete()
        asked, references = {}, {}
        for row in read_jsonl(run.prompts):
            row_id, prompt, references[row_id] = row.pop("id"), row.pop("prompt"), row.pop("reference")
            asked[row_id] = Asked(prompt, row)
        return cls(asked, references, tuple(manifest["stop"]), manifest["delimiter"], str(run.prompts))


def build_prompt_set(prompter: FewShot, queries: Sequence[Example], origin: Path | str) -> PromptSet:
    """Every query's prompt; `origin` (the queries' file) names the record in any error. A budget that holds no
    shot for any query is refused: every prompt would be zero-shot."""
    prompter.prepare(queries)
    asked: dict[str, Asked] = {}
    for ex in queries:
        if ex.id in asked:
            raise DataError(origin, ex.metadata.get("index"), f"its id {ex.id!r} is another query's too")
        with _located(origin, ex):
            asked[ex.id] = prompter.ask(ex)
    rows = list(asked.values())
    if prompter.budget is not None and prompter.k and rows and not any(a.notes["shot_ids"] for a in rows):
        shortest = min(queries, key=lambda ex: asked[ex.id].notes["prompt_tokens"])
        raise ConfigError(
            f"budget_tokens {prompter.budget} holds no shot for any of the {len(rows)} queries; the shortest "
            f"({origin}: record {shortest.metadata.get('index')}) takes {asked[shortest.id].notes['prompt_tokens']} "
            "tokens without shots"
        )
    references = {ex.id: ex.contents("assistant")[-1] for ex in queries}
    return PromptSet(asked, references, prompter.stop, prompter.delimiter, str(origin))


class IclFolder(RunFolder):
    """A prompt set: prompts.jsonl and manifest.json, written last."""

    INDEX = "manifest.json"
    WHAT = "icl"
    PROMPTS: ClassVar[str] = "prompts.jsonl"

    @property
    def prompts(self) -> Path:
        return self.path / self.PROMPTS


def write_prompt_set(
    cfg: IclConfig, queries: InputSpec, out: Path, count_tokens: PromptTokens | None = None
) -> dict[str, Any]:
    """`lmtailor icl`: the prompt set of every example in `queries`, written to `out`; returns the manifest."""
    start = time.perf_counter()
    examples = list(queries.read())
    prompter = icl_prompter(cfg, count_tokens)
    prompts = build_prompt_set(prompter, examples, queries.path)
    run = IclFolder(out)
    with run.locked():
        run.begin()
        rows = ({"id": ex.id, "prompt": a.prompt, "reference": prompts.references[ex.id], **a.notes}
                for ex in examples for a in [prompts.asked[ex.id]])  # fmt: skip
        write_jsonl(run.prompts, rows)
        notes = [prompts.asked[ex.id].notes for ex in examples]
        shots = [len(n["shot_ids"]) for n in notes]
        tokens = np.asarray([n["prompt_tokens"] for n in notes], dtype=np.float64)
        manifest = {
            "lmtailor_version": __version__,
            "config": cfg.model_dump(mode="json"),
            "form": prompter.form,
            "stop": list(prompts.stop),
            "delimiter": prompts.delimiter,
            "pool": {"path": str(cfg.pool.path), "examples": len(prompter.pool.examples), **file_digest(cfg.pool.path)},
            "queries": {"path": str(queries.path), "examples": len(examples), **file_digest(queries.path)},
            "counts": {
                "prompts": len(notes),
                "overflow": sum(n["overflow"] for n in notes),
                "fewer_shots_than_k": sum(s < prompter.k for s in shots),
                "shots_dropped": sum(n["shots_dropped"] for n in notes),
            },
            "shots": {"mean": round(float(np.mean(shots)), 3), "min": min(shots), "max": max(shots)},
            "prompt_tokens": {
                "p50": float(np.percentile(tokens, 50)),
                "p95": float(np.percentile(tokens, 95)),
                "max": int(tokens.max()),
            },
            "seconds": round(time.perf_counter() - start, 1),
        }
        return run.commit(manifest, [run.PROMPTS])


def llm_tokens(llm: LLM) -> PromptTokens:
    """A prompt's tokens as `llm`'s backend counts the text it feeds its model."""
    return lambda prompt: llm.count_tokens(llm.backend.render(prompt))


@lru_cache(maxsize=4)
def gguf_tokens(model: Path | None = None) -> PromptTokens:
    """A prompt's tokens as llama.cpp feeds it to a GGUF model (default: the embedded one), chat turns in
    Gemma's format, less the BOS: the model's vocabulary alone is loaded (a second, no weights)."""
    import llama_cpp
    from llama_cpp._internals import LlamaModel

    from lmtailor.llm.embedded import gguf_path

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    vocab = LlamaModel(path_model=str(model or gguf_path()), params=params, verbose=False)

    def count(prompt: Prompt) -> int:
        return len(vocab.tokenize(prompt_text(prompt).encode(), add_bos=False, special=True))

    return count
