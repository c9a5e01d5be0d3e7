"""The backend contract: generate a batch, log-likelihood of continuations, count tokens.

Three methods, as in lm-evaluation-harness, so every task runs on every backend. Backends do no caching
and no accounting; the `LLM` client in `client.py` does both, once, for all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from lmtailor.llm.types import Completion, GenParams, LogLik, Prompt


class Backend(ABC):
    kind: str  # llamacpp | openai | transformers
    model: str  # what a person would call the model; also part of the cache key
    supports_schema: bool = False  # constrained decoding to a JSON schema
    # USD per million (prompt, completion) tokens; None where running the model costs no money per call.
    price: tuple[float, float] | None = None

    def identity(self) -> dict[str, Any]:
        """What makes two backends give the same answers: the cache key's backend part."""
        return {"kind": self.kind, "model": self.model}

    @abstractmethod
    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]: ...

    @abstractmethod
    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LogLik]:
        """For each (context, continuation): log P(continuation | context), summed over its tokens."""

    @abstractmethod
    def count_tokens(self, text: str) -> int: ...

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release the model or connections."""


def gemma_chat(messages: Sequence[dict[str, Any]]) -> str:
    """Gemma's turn format, for models whose files carry no chat template (the embedded GGUF has none).

    Gemma has no system role: a system turn is folded into the first user turn, as its own template does.
    """
    turns: list[tuple[str, str]] = []
    system = ""
    for m in messages:
        role, content = m["role"], str(m["content"])
        if role == "system":
            system = content
            continue
        if role == "user" and system:
            content, system = f"{system}\n\n{content}", ""
        turns.append(("model" if role == "assistant" else "user", content))
    text = "".join(f"<start_of_turn>{role}\n{content}<end_of_turn>\n" for role, content in turns)
    return text + "<start_of_turn>model\n"
