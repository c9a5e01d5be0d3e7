"""The client every task uses: a backend, plus the response cache, usage accounting, progress and
structured (JSON-schema) answers. Backends stay small because all of this lives here once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from rich.progress import Progress

from lmtailor.llm.backend import Backend
from lmtailor.llm.cache import ResponseCache, cache_key
from lmtailor.llm.types import Completion, GenParams, LogLik, Prompt

M = TypeVar("M", bound=BaseModel)


@dataclass
class Usage:
    """What a run asked for and what it paid: tokens and cost count only calls that reached the backend."""

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0

    def tokens_per_second(self) -> float:
        return (self.prompt_tokens + self.completion_tokens) / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "cost_usd": round(self.cost_usd, 6), "seconds": round(self.seconds, 3)}


@dataclass
class Structured:
    """One structured answer: the validated value, or the last error after every try was spent."""

    value: BaseModel | None
    raw: str
    tries: int
    error: str = ""


class LLM:
    def __init__(
        self,
        backend: Backend,
        cache: ResponseCache | None = None,
        progress: Progress | None = None,
        batch_size: int = 8,
    ):
        if cache is not None and not backend.cacheable:
            raise ValueError(f"{backend.model}: a model in memory changes as it trains; its answers cannot be cached")
        self.backend = backend
        self.cache = cache
        self.progress = progress
        self.batch_size = batch_size
        self.usage = Usage()

    @property
    def identity(self) -> dict[str, Any]:
        return self.backend.identity()

    def generate(self, prompts: Sequence[Prompt], params: GenParams, description: str = "generate") -> list[Completion]:
        """Completions in prompt order; cached answers are reused, new ones are cached batch by batch."""
        p = params.key()

        def call(batch: list[Prompt]) -> list[dict[str, Any]]:
            return [c.to_json() for c in self.backend.generate(batch, params)]

        def plan(items: list[Prompt]) -> list[list[int]] | None:
            return self.backend.batches("generate", items, params=params)

        answers = self._cached("generate", p, list(prompts), call, plan, description)
        return [Completion.from_json(a, cached) for a, cached in answers]

    def loglikelihood(self, pairs: Sequence[tuple[str, str]], description: str = "loglikelihood") -> list[LogLik]:
        def call(batch: list[list[str]]) -> list[dict[str, Any]]:
            return [x.to_json() for x in self.backend.loglikelihood([(c, t) for c, t in batch])]

        def plan(items: list[list[str]]) -> list[list[int]] | None:
            return self.backend.batches("loglikelihood", [(c, t) for c, t in items])

        answers = self._cached("loglikelihood", {}, [[c, t] for c, t in pairs], call, plan, description)
        return [LogLik.from_json(a) for a, _ in answers]

    def loglikelihood_rolling(
        self, texts: Sequence[str], max_tokens: int | None = None, description: str = "loglikelihood_rolling"
    ) -> list[LogLik]:
        """Each whole text's log-likelihood (see Backend.loglikelihood_rolling): a cross-entropy probe."""

        def call(batch: list[str]) -> list[dict[str, Any]]:
            return [x.to_json() for x in self.backend.loglikelihood_rolling(batch, max_tokens)]

        def plan(items: list[str]) -> list[list[int]] | None:
            return self.backend.batches("loglikelihood_rolling", items, max_tokens=max_tokens)

        params = {"max_tokens": max_tokens}
        answers = self._cached("loglikelihood_rolling", params, list(texts), call, plan, description)
        return [LogLik.from_json(a) for a, _ in answers]

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)

    def structured(
        self,
        prompts: Sequence[Prompt],
        schema: type[M],
        params: GenParams,
        tries: int = 3,
        description: str = "generate",
    ) -> list[Structured]:
        """JSON answers validated against `schema`; an invalid answer is re-asked with the error shown,
        at most `tries` times in all. Backends that can constrain decoding to the schema do so."""
        if self.backend.supports_schema:
            params = params.model_copy(update={"json_schema": schema.model_json_schema()})
        results: list[Structured | None] = [None] * len(prompts)
        pending = list(range(len(prompts)))
        asked: list[Prompt] = list(prompts)
        for attempt in range(1, tries + 1):
            answers = self.generate([asked[i] for i in pending], params, description)
            retry = []
            for i, answer in zip(pending, answers, strict=True):
                value, error = parse_json(answer.text, schema)
                if value is not None or attempt == tries:
                    results[i] = Structured(value, answer.text, attempt, error)
                else:
                    asked[i] = reask(asked[i], answer.text, error)
                    retry.append(i)
            pending = retry
            if not pending:
                break
        return [r for r in results if r is not None]

    def _cached(
        self,
        kind: str,
        params: dict[str, Any],
        prompts: list[Any],
        call: Callable[[list[Any]], list[dict[str, Any]]],
        plan: Callable[[list[Any]], list[list[int]] | None],
        description: str,
    ) -> list[tuple[dict[str, Any], bool]]:
        identity = self.backend.identity()
        keys = [cache_key(identity, kind, params, prompt) for prompt in prompts]
        found = self.cache.get_many(keys) if self.cache is not None else {}
        out: list[tuple[dict[str, Any], bool] | None] = [(found[k], True) if k in found else None for k in keys]
        self.usage.cached_calls += len(prompts) - sum(o is None for o in out)
        # Each prompt is sent once even if it repeats inside the batch.
        todo: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            if out[i] is None:
                todo.setdefault(k, []).append(i)
        task = None
        if self.progress is not None and todo:
            task = self.progress.add_task(description, total=len(todo))
        pending = list(todo.items())
        items = [prompts[idx[0]] for _, idx in pending]
        chunks = plan(items) if items else None
        if chunks is None:
            size = self.batch_size
            chunks = [list(range(lo, min(lo + size, len(items)))) for lo in range(0, len(items), size)]
        for chunk in chunks:
            batch = [pending[j] for j in chunk]
            start = time.perf_counter()
            answers = call([items[j] for j in chunk])
            elapsed = time.perf_counter() - start
            self.usage.seconds += elapsed
            for answer in answers:
                answer.setdefault("seconds", elapsed / len(chunk))
            if self.cache is not None:
                self.cache.put_many(kind, [(k, a) for (k, _), a in zip(batch, answers, strict=True)])
            for (_, idx), answer in zip(batch, answers, strict=True):
                self._account(answer)
                for i in idx:
                    out[i] = (answer, False)
            if task is not None:
                self.progress.update(  # type: ignore[union-attr]
                    task, advance=len(batch), description=f"{description} {self._rate()}"
                )
        return [o for o in out if o is not None]

    def _account(self, answer: dict[str, Any]) -> None:
        self.usage.calls += 1
        prompt, completion = answer.get("prompt_tokens", answer.get("tokens", 0)), answer.get("completion_tokens", 0)
        self.usage.prompt_tokens += prompt
        self.usage.completion_tokens += completion
        if self.backend.price:
            self.usage.cost_usd += (prompt * self.backend.price[0] + completion * self.backend.price[1]) / 1e6

    def _rate(self) -> str:
        cost = f" ${self.usage.cost_usd:.4f}" if self.backend.price else ""
        return f"{self.usage.tokens_per_second():,.0f} tok/s{cost}"


def parse_json(text: str, schema: type[M]) -> tuple[M | None, str]:
    """The first JSON object in `text`, validated; models often wrap JSON in prose or code fences."""
    start = text.find("{")
    if start < 0:
        return None, "the answer holds no JSON object"
    try:
        data, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as e:
        return None, f"invalid JSON: {e.msg} at character {e.pos}"
    try:
        return schema.model_validate(data), ""
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'answer'}: {x['msg']}" for x in e.errors())
        return None, f"JSON does not fit the schema: {problems}"


def reask(prompt: Prompt, answer: str, error: str) -> Prompt:
    """The prompt again, with the invalid answer and what was wrong with it."""
    note = f"That answer was not accepted ({error}). Reply with only the JSON object."
    if isinstance(prompt, str):
        return f"{prompt}{answer}\n\n{note}\n"
    return [*prompt, {"role": "assistant", "content": answer}, {"role": "user", "content": note}]
