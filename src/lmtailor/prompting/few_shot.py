"""In-context learning: solved examples (shots) before the question, as chat turns or as one completion text.

A selector (shots.py) chooses each query's shots in order of preference; a token budget, counted on the whole
prompt with the target model's tokenizer, keeps the preferred ones that fit, each whole (a shot that would
overflow is left out; a later, shorter one may still fit); the kept shots are then put in the order asked
for. A query that does not fit even without shots is asked without them, and its notes say it overflowed.

Context many questions share (a database schema before "Question: ") is stated once: a user turn whose text
before the last occurrence of the marker was already stated is given from the marker on. A prompt that
repeats a schema in every shot outgrows a small model's window.

Base models (the embedded Gemma 3 270M) continue text, so the completion form writes the shots as question
and answer blocks and ends where the query's answer begins; `stop` says where that answer ends. Chat models
get the shots as earlier turns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

from lmtailor.core.records import Example, RecordError
from lmtailor.llm.types import Prompt
from lmtailor.prompting.prompter import Asked, Prompter
from lmtailor.prompting.shots import Pool, Query, RandomShots, Selector, asked, question_of

Form = Literal["completion", "chat"]
# similar_last: the shot most like the query nearest to it; random: shuffled from the query's own stream;
# chosen: as the selector chose them (nearest first, as drawn, as listed)
Order = Literal["similar_last", "random", "chosen"]
_BLANKS = " \t"


class CompletionTemplate(BaseModel):
    """How a base model reads shots: each question and answer through these formats, blocks joined by
    `separator`. The prompt ends with the query's answer format up to `{answer}`, less trailing spaces: a base
    model's tokenizer joins a space to the word after it, so the answer is generated with its space."""

    model_config = ConfigDict(extra="forbid")
    question: str = "{question}"
    answer: str = "\nAnswer: {answer}"
    separator: str = "\n\n"
    stop: list[str] | None = None  # where a generated answer ends; None: the separator and any text after {answer}

    @field_validator("question", "answer")
    @classmethod
    def _one_slot(cls, value: str, info: Any) -> str:
        slot = "{" + info.field_name + "}"
        if value.count(slot) != 1:
            raise ValueError(f"must hold {slot} once, got {value!r}")
        return value

    @property
    def answer_prefix(self) -> str:
        return self.answer.split("{answer}")[0].rstrip(_BLANKS)

    @property
    def delimiter(self) -> str:
        """What a generated answer starts with: the spaces the prompt leaves off."""
        before = self.answer.split("{answer}")[0]
        return before[len(before.rstrip(_BLANKS)) :]

    @property
    def stops(self) -> tuple[str, ...]:
        if self.stop is not None:
            return tuple(self.stop)
        return tuple(s for s in (self.answer.split("{answer}")[1], self.separator) if s)

    def render(self, messages: Sequence[dict[str, Any]]) -> str:
        """Chat turns ending in the query's user turn, as one text: system turns first, then a block per
        answered question, then the query up to its answer."""
        parts = [m["content"] for m in messages if m["role"] == "system"]
        text = ""
        for m in messages:
            if m["role"] == "user":
                text += self.question.replace("{question}", m["content"])
            elif m["role"] == "assistant":
                parts.append(text + self.answer.replace("{answer}", m["content"]))
                text = ""
        return self.separator.join([*parts, text + self.answer_prefix])


class FewShot(Prompter):
    def __init__(
        self,
        shots: Sequence[Example],
        k: int,
        seed: int = 0,
        same: str | None = None,
        later_turns_from: str | None = None,
        *,
        selector: Selector | None = None,
        order: Order = "chosen",
        form: Form = "chat",
        template: CompletionTemplate | None = None,
        budget: int | None = None,
        count_tokens: Callable[[Prompt], int] | None = None,
    ):
        """`shots`: the solved examples to draw from (a training split); `k`: how many before each question
        (all there are, where fewer); `seed`: the run's, from which each query's own random stream is drawn;
        `same`: a metadata field the shots must share with the question; `later_turns_from`: the marker that
        ends shared context (e.g. "Question: "); `selector`: how shots are chosen (random by default); `budget`:
        most prompt tokens, as `count_tokens` counts a prompt (the target model's tokenizer on the text the
        backend feeds it)."""
        if budget is not None and count_tokens is None:
            raise ValueError("a token budget needs count_tokens, the target model's own count")
        self.pool = Pool(shots, same, later_turns_from)
        self.k, self.seed, self.marker = k, seed, later_turns_from
        self.selector = selector or RandomShots()
        self.selector.bind(self.pool)
        self.order, self.form = order, form
        self.template = template or CompletionTemplate()
        self.budget, self.count_tokens = budget, count_tokens

    @property
    def stop(self) -> tuple[str, ...]:
        """Where a generated answer ends (chat: the backend's end of turn does it)."""
        return self.template.stops if self.form == "completion" else ()

    @property
    def delimiter(self) -> str:
        """What an answer starts with after the prompt: put before each label scored by log-likelihood."""
        return self.template.delimiter if self.form == "completion" else ""

    def prepare(self, examples: Sequence[Example]) -> None:
        """Embed the queries' questions in one call, where the strategy or order compares texts."""
        if self.selector.compares or self.order == "similar_last":
            self.pool.embed_queries([question_of(asked(ex)) for ex in examples])

    def prompt(self, example: Example) -> Prompt:
        return self.ask(example).prompt

    def ask(self, example: Example) -> Asked:
        before = asked(example)  # the turns before the answer
        query = Query(example, question_of(before), self.seed)
        candidates = self.pool.candidates(example, query.question)
        if self.selector.takes_k and self.k and not candidates:
            where = f" with {self.pool.same} {example.meta(self.pool.same)!r}" if self.pool.same else ""
            raise RecordError(f"{example.id}: {self.k} shots asked for, {len(candidates)} to draw from{where}")
        chosen = self.selector.choose(self.pool, query, candidates, self.k)
        shots = self._ordered(query, chosen)
        count = self.count_tokens
        if self.budget is not None and count is not None:
            kept: set[int] = set()
            for i in chosen:  # the most wanted first
                if count(self._render(before, [j for j in shots if j in kept or j == i])) <= self.budget:
                    kept.add(i)
            shots = [j for j in shots if j in kept]
        prompt = self._render(before, shots)
        tokens = count(prompt) if count is not None else None
        notes = {
            "shot_ids": [self.pool.examples[i].id for i in shots],
            "prompt_tokens": tokens,
            "budget_tokens": self.budget,
            "shots_dropped": len(chosen) - len(shots),
            "overflow": self.budget is not None and tokens is not None and tokens > self.budget,
        }
        return Asked(prompt, notes)

    def _ordered(self, query: Query, chosen: list[int]) -> list[int]:
        if self.order == "random":
            return query.rng(":order").sample(chosen, len(chosen))
        if self.order == "similar_last" and chosen:
            similarity = self.pool.similarity(query.question, chosen)
            return [chosen[j] for j in np.argsort(similarity, kind="stable")]
        return chosen

    def _render(self, before: list[dict[str, Any]], shots: list[int]) -> Prompt:
        """The query's system turn leads (the shots' own go), then the shots, then the query's turns."""
        messages = [m for m in before if m["role"] == "system"]
        for i in shots:
            messages += self.pool.shots[i]
        messages = _context_once([*messages, *(m for m in before if m["role"] != "system")], self.marker)
        return self.template.render(messages) if self.form == "completion" else messages


def _context_once(messages: list[dict[str, Any]], marker: str | None) -> list[dict[str, Any]]:
    """Each user turn's shared context (its text before the last `marker`) stated the first time only."""
    if not marker:
        return messages
    stated: set[str] = set()
    out = []
    for m in messages:
        cut = m["content"].rfind(marker) if m["role"] == "user" else -1
        if cut > 0:
            context = m["content"][:cut]
            if context in stated:
                m = {**m, "content": m["content"][cut:]}
            stated.add(context)
        out.append(m)
    return out
