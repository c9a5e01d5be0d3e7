"""The prompt contract: how an example becomes what a model is asked.

Training renders examples with the Template, and evaluation asks through any Prompter (the Template, so a
tuned model is scored on the text shape it learned; a few-shot prompter for in-context learning), so a rung
of the adaptation ladder is a (model, prompter) pair, scored the same way on every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from lmtailor.core.records import Example
from lmtailor.llm.types import Prompt


class Prompter(ABC):
    @abstractmethod
    def prompt(self, example: Example) -> Prompt:
        """What a model is asked so that its answer stands for the example's last assistant turn."""
