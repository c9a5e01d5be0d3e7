"""In-context learning: k solved examples (shots) as earlier chat turns before the question.

The shots are drawn for each example from its own seed (the run's seed and the example's id), so an example
is asked with the same shots whatever else is asked and in whatever order. `same` draws them only among the
examples that share its metadata field (a database, a task); `later_turns_from` keeps context the shots share
(a database schema) in the first turn only: a prompt that repeats it in every shot outgrows a small model's
window.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from lmtailor.core.records import Example, RecordError
from lmtailor.llm.types import Prompt
from lmtailor.prompting.prompter import Prompter
from lmtailor.prompting.template import turns


class FewShot(Prompter):
    def __init__(
        self,
        shots: Sequence[Example],
        k: int,
        seed: int = 0,
        same: str | None = None,
        later_turns_from: str | None = None,
    ):
        """`shots`: the solved examples to draw from (a training split); `k`: how many before each question;
        `same`: a metadata field the shots must share with the question; `later_turns_from`: a user turn after
        the first keeps only its text from the last occurrence of this marker (e.g. "Question: ")."""
        self.k, self.seed, self.same, self.later_turns_from = k, seed, same, later_turns_from
        self._pools: dict[Any, list[Example]] = defaultdict(list)
        for shot in shots:
            self._pools[shot.meta(same) if same else None].append(shot)

    def prompt(self, example: Example) -> Prompt:
        pool = [s for s in self._pools.get(example.meta(self.same) if self.same else None, []) if s.id != example.id]
        if len(pool) < self.k:
            where = f" with {self.same} {example.meta(self.same)!r}" if self.same else ""
            raise RecordError(f"{example.id}: {self.k} shots asked for, {len(pool)} to draw from{where}")
        shots = random.Random(f"{self.seed}:{example.id}").sample(pool, self.k)
        asked = _asked(example)
        out = [m for m in asked if m["role"] == "system"]  # the question's system turn leads; the shots' go
        for shot in shots:
            out += [m for m in _solved(shot) if m["role"] != "system"]
        out += [m for m in asked if m["role"] != "system"]
        if self.later_turns_from:
            for i in [i for i, m in enumerate(out) if m["role"] == "user"][1:]:
                text = out[i]["content"]
                cut = text.rfind(self.later_turns_from)
                out[i] = {**out[i], "content": text[cut:] if cut >= 0 else text}
        return out


def _last_answer(ex: Example, messages: list[dict[str, Any]]) -> int:
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        raise RecordError(f"{ex.id}: has no answer (assistant turn)")
    return last


def _solved(shot: Example) -> list[dict[str, Any]]:
    """A shot's conversation up to and with its last answer."""
    messages = turns(shot)
    return messages[: _last_answer(shot, messages) + 1]


def _asked(ex: Example) -> list[dict[str, Any]]:
    """The example's conversation before its last answer: the question."""
    messages = turns(ex)
    return messages[: _last_answer(ex, messages)]
