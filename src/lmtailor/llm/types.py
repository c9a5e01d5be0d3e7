"""The values that cross the backend contract: generation parameters, prompts, completions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Userinfo (`user:password@`, up to the last @ before the path), and query parameters whose names end in a word
# for a secret (key, api_key, x-api-key, token, access_token, client_secret, password, sig, ...).
_USERINFO = re.compile(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)?[^/?#]*@")
_QUERY_SECRET = re.compile(
    r"([?&][^=&#]*?(?:key|token|secret|password|passwd|pwd|sig|signature|auth|credentials?)=)[^&#]*", re.IGNORECASE
)

# A prompt is plain text (completion) or a list of chat turns [{"role": ..., "content": ...}].
Prompt = str | list[dict[str, Any]]


class GenParams(BaseModel):
    """Sampling settings; all of them are part of the cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: tuple[str, ...] = ()
    seed: int = 0
    json_schema: dict[str, Any] | None = None  # constrained decoding where the backend supports it

    def key(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass(slots=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"  # stop | length
    cached: bool = False
    # What answering it took when it was computed (a cached answer keeps its first cost): the client's call time
    # shared among the call's items, since a backend that answers a batch at once has no per-item figure.
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "finish_reason": self.finish_reason,
        }
        return out if self.seconds is None else {**out, "seconds": self.seconds}

    @classmethod
    def from_json(cls, data: dict[str, Any], cached: bool = False) -> Completion:
        return cls(data["text"], data["prompt_tokens"], data["completion_tokens"], data["finish_reason"], cached,
                   data.get("seconds"))  # fmt: skip


@dataclass(slots=True)
class LogLik:
    """Log-likelihood of a continuation given a context: the sum over its tokens, and whether greedy
    decoding would have produced exactly it (lm-evaluation-harness's pair)."""

    logprob: float
    is_greedy: bool
    tokens: int
    seconds: float | None = None  # as Completion.seconds

    def to_json(self) -> dict[str, Any]:
        out = {"logprob": self.logprob, "is_greedy": self.is_greedy, "tokens": self.tokens}
        return out if self.seconds is None else {**out, "seconds": self.seconds}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogLik:
        return cls(data["logprob"], data["is_greedy"], data["tokens"], data.get("seconds"))


class BackendError(RuntimeError):
    """A backend that cannot answer: unreachable, timed out after its retries, or answering nonsense."""


def redact_url(url: str) -> str:
    """`url` fit for manifests, logs and error messages: its user, password and query-string secrets become
    `***`. A plain URL comes back unchanged, so cache keys built on it stay what they were."""
    return _QUERY_SECRET.sub(r"\1***", _USERINFO.sub(r"\1***@", url, count=1))
