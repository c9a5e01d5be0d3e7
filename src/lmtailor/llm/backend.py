"""The backend contract: generate a batch, log-likelihood of continuations and of whole texts, count tokens.

The calls of lm-evaluation-harness, so every task (judge, synth, every evaluation) runs on every backend.
Backends do no caching and no accounting; the `LLM` client in `client.py` does both, once, for all of them.
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
    cacheable: bool = True  # False for a model in memory whose weights change (one being trained)

    def identity(self) -> dict[str, Any]:
        """What makes two backends give the same answers: the cache key's backend part."""
        return {"kind": self.kind, "model": self.model}

    @abstractmethod
    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]: ...

    @abstractmethod
    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LogLik]:
        """For each (context, continuation): log P(continuation | context), summed over its tokens."""

    @abstractmethod
    def loglikelihood_rolling(self, texts: Sequence[str], max_tokens: int | None = None) -> list[LogLik]:
        """For each text: log P(text), summed over every token after the first (BOS where the model has one),
        each conditioned on all before it; `tokens` counts them, so -logprob / tokens is the cross-entropy.
        `max_tokens` cuts each text's tokens (BOS included) first. A text longer than the window is refused,
        not scored in windows."""

    @abstractmethod
    def count_tokens(self, text: str) -> int: ...

    def render(self, prompt: Prompt) -> str:
        """The text this backend feeds the model for `prompt`, less the BOS it adds itself: what a chat prompt
        is scored against (a label's log-likelihood after it) and counted in (a token budget)."""
        return prompt_text(prompt)

    def batches(self, kind: str, items: Sequence[Any], **options: Any) -> list[list[int]] | None:
        """How the client splits one call's items (`kind`: generate, loglikelihood or loglikelihood_rolling,
        with that method's options) into backend calls, as lists of indices. None: its own fixed-size chunks,
        in order. A backend that batches by token length plans here, so the client still writes the cache and
        shows progress call by call while every batch holds items of similar length."""
        return None

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Release the model or connections."""


def prompt_text(prompt: Prompt) -> str:
    """A prompt as text for a model without a chat template: chat turns in Gemma's format."""
    return prompt if isinstance(prompt, str) else gemma_chat(prompt)


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
