"""The prompt contract: how an example becomes what a model is asked.

Training renders examples with the Template, and evaluation asks through any Prompter (the Template, so a
tuned model is scored on the text shape it learned; a few-shot prompter for in-context learning; a retrieval
prompter that puts retrieved passages before the question), so a rung of the adaptation ladder is a
(model, prompter) pair, scored the same way on every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from lmtailor.core.records import Example
from lmtailor.llm.types import Prompt


@dataclass(frozen=True)
class Asked:
    """A prompt and what its prediction row keeps about how it was made: the shots' ids, the chunks cited, the
    context injected, a token budget that overflowed. Notes are plain JSON values."""

    prompt: Prompt
    notes: dict[str, Any] = field(default_factory=dict)


class Prompter(ABC):
    # What the answers to these prompts look like: where a generated one ends, and what comes before each label
    # a choice metric scores (a few-shot completion prompt ends at "Answer:" and its answers start with a space).
    stop: tuple[str, ...] = ()
    delimiter: str = ""

    @abstractmethod
    def prompt(self, example: Example) -> Prompt:
        """What a model is asked so that its answer stands for the example's last assistant turn."""

    def ask(self, example: Example) -> Asked:
        """The prompt with its notes; a prompter that chooses something per example (shots, passages) says
        what here."""
        return Asked(self.prompt(example))
