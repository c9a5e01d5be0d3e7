"""OpenAI-compatible HTTP backend: vLLM, Ollama, llama.cpp's server, llama-cpp-python's server, OpenAI itself.

Text prompts go to /completions, chat prompts to /chat/completions (the server applies the model's chat
template). A batch is sent with up to `concurrency` requests in flight and at most `rate_limit` requests per
second; connect errors, timeouts, 429 and 5xx are retried with exponential backoff and jitter (honouring
Retry-After), other 4xx are not, because asking again cannot help.

Requests go to the base URL as given (httpx sends its `user:password@` as basic auth); everything that is
written down (identity, error messages) holds it redacted, since identities end up in manifests.

Constrained decoding to a JSON schema differs between servers, so `schema_format` picks the dialect:
- "json_object" (default; llama.cpp and llama-cpp-python servers): chat requests carry
  response_format {"type": "json_object", "schema": ...}; text requests carry a GBNF `grammar` built from the
  schema, since those servers take no response_format on /completions.
- "json_schema" (OpenAI, vLLM, Ollama): response_format {"type": "json_schema", "json_schema": {"name": ...,
  "schema": ...}} on both endpoints.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from lmtailor.llm.backend import Backend
from lmtailor.llm.types import BackendError, Completion, GenParams, LogLik, Prompt, redact_url

RETRY_STATUS = {408, 409, 429}  # plus every 5xx
# Tokenize endpoints outside the OpenAI API, at the server root: llama-cpp-python's, then llama.cpp's and vLLM's
# (one body serves both: llama.cpp reads `content`, vLLM reads `prompt`).
TOKENIZE_ENDPOINTS = ("/extras/tokenize", "/tokenize")


class InsecureKeyWarning(UserWarning):
    """A key or password about to cross the network unencrypted."""


class HTTPStatusError(BackendError):
    """The server answered with an error status; `status` lets callers tell a missing endpoint apart."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class RateLimiter:
    """At most `per_second` starts per second across threads: each caller gets the next free slot."""

    def __init__(self, per_second: float):
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        time.sleep(max(0.0, start - now))


class OpenAIBackend(Backend):
    kind = "openai"
    supports_schema = True

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 4,
        rate_limit: float | None = None,
        timeout: float = 120,
        retries: int = 3,
        price: tuple[float, float] | None = None,
        backoff: float = 0.5,
        schema_format: Literal["json_object", "json_schema"] = "json_object",
        extra_body: dict[str, Any] | None = None,
    ):
        """`backoff`: first retry delay in seconds, doubled per retry. `extra_body`: server-specific fields
        sent with every generation request, e.g. {"repeat_penalty": 1.0} for llama-cpp-python's server, whose
        default of 1.1 departs from the OpenAI API's no penalty."""
        self.base_url = base_url.rstrip("/")
        self.shown_url = redact_url(self.base_url)  # the only form of the URL that is written anywhere
        self.model = model
        self.price = price
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.schema_format = schema_format
        self.extra_body = dict(extra_body or {})
        key = os.environ.get(api_key_env)
        self._warn_if_sent_in_clear(f"the API key in ${api_key_env}" if key else None)
        self._http = httpx.Client(
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=timeout,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="lmtailor-http")
        self._limiter = RateLimiter(rate_limit) if rate_limit else None
        self._tokenizer: tuple[str, int] | None = None  # endpoint that answered, tokens it adds to every text

    def _warn_if_sent_in_clear(self, key_from: str | None) -> None:
        """Warn when a key (`key_from` says where it came from) or the URL's password would travel over plain
        http to another machine."""
        try:
            parts = urlsplit(self.base_url)
            password = parts.password
        except ValueError:
            return  # not a URL httpx can use either: the first request says so
        sent = [s for s in (key_from, "the password in base_url" if password else None) if s]
        if sent and parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
            warnings.warn(
                f"{' and '.join(sent)} will be sent over plain http to {self.shown_url}, readable by anything on "
                "the way; use https, or a server on this machine",
                InsecureKeyWarning,
                stacklevel=3,
            )

    def identity(self) -> dict[str, Any]:
        # The same model name on another server may be another build or quantisation; the URL is part of it.
        # Redacted: credentials do not change the answers, and identities are written into manifests.
        out = {**super().identity(), "base_url": self.shown_url}
        if self.extra_body:
            out["extra_body"] = self.extra_body
        return out

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        return list(self._pool.map(lambda p: self._generate_one(p, params), prompts))

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LogLik]:
        return list(self._pool.map(lambda pair: self._loglik(*pair), pairs))

    def loglikelihood_rolling(self, texts: Sequence[str], max_tokens: int | None = None) -> list[LogLik]:
        return list(self._pool.map(lambda text: self._rolling(text, max_tokens), texts))

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            self._tokenizer = self._find_tokenizer()
        path, added = self._tokenizer
        return len(self._tokenize(path, text)) - added

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._http.close()

    def _generate_one(self, prompt: Prompt, params: GenParams) -> Completion:
        body: dict[str, Any] = {
            **self.extra_body,
            "model": self.model,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        chat = not isinstance(prompt, str)
        if params.json_schema is not None:
            body.update(self._schema_fields(params.json_schema, chat))
        if chat:
            url, body["messages"] = "/chat/completions", prompt
        else:
            url, body["prompt"] = "/completions", prompt
        data, raw = self._post(url, body)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] if chat else choice["text"]
            if not isinstance(text, str):
                raise TypeError(f"the text is {type(text).__name__}")
        except (KeyError, IndexError, TypeError) as e:
            field = "choices[0].message.content" if chat else "choices[0].text"
            raise BackendError(f"{self.shown_url}{url} answered JSON without {field} ({e}): {raw[:300]!r}") from None
        usage = data.get("usage") or {}
        return Completion(
            text,
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
            "length" if choice.get("finish_reason") == "length" else "stop",
        )

    def _schema_fields(self, schema: dict[str, Any], chat: bool) -> dict[str, Any]:
        if self.schema_format == "json_schema":
            return {"response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}}
        if chat:
            return {"response_format": {"type": "json_object", "schema": schema}}
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        return {"grammar": json_schema_to_gbnf(json.dumps(schema))}

    def _loglik(self, context: str, continuation: str) -> LogLik:
        """Scores the prompt's own tokens: echo the prompt with its logprobs. A token that straddles the
        context's end counts as continuation, as it does when the continuation's tokens are the difference
        between the two tokenisations."""
        prompt = context + continuation
        offsets, logprobs, tops = self._echo(prompt, "continuations")
        ends = [*offsets[1:], len(prompt)]
        picked = [i for i in range(len(offsets)) if ends[i] > len(context)]
        if not picked:
            raise BackendError(f"{self.shown_url}: no token of the continuation {continuation!r} came back")
        if any(logprobs[i] is None for i in picked):
            raise BackendError(
                f"{self.shown_url} gave no logprob for the prompt's first token; give a non-empty context"
            )
        return _summed([logprobs[i] for i in picked], [tops[i] for i in picked])

    def _rolling(self, text: str, max_tokens: int | None) -> LogLik:
        """Every echoed token that has a logprob, at most max_tokens - 1 of them (as many as a sequence of
        max_tokens from BOS scores). A server gives its first listed token no logprob, and llama-cpp-python's
        lists no BOS, so there the text's first token goes unscored; `tokens` says how many were scored."""
        if not text:
            return LogLik(0.0, True, 0)
        _, logprobs, tops = self._echo(text, "texts")
        kept = [i for i, lp in enumerate(logprobs) if lp is not None][: None if max_tokens is None else max_tokens - 1]
        return _summed([logprobs[i] for i in kept], [tops[i] for i in kept])

    def _echo(self, prompt: str, what: str) -> tuple[list[int], list[float | None], list[dict[str, float] | None]]:
        """The prompt's tokens as the server scores them: text offsets, logprobs, top logprobs. It asks for one
        generated token (0 means "no limit" to llama-cpp-python) and drops it."""
        body = {"model": self.model, "prompt": prompt, "max_tokens": 1, "temperature": 0, "echo": True, "logprobs": 1}
        data, raw = self._post("/completions", body)
        try:
            choice = data["choices"][0]
            lp = choice["logprobs"]
            offsets, logprobs, tops = lp["text_offset"], lp["token_logprobs"], lp["top_logprobs"]
        except (KeyError, IndexError, TypeError):
            raise BackendError(
                f"{self.shown_url}/completions returned no prompt logprobs (echo=true, logprobs=1), so it cannot "
                f"score {what}; use a server that does (llama.cpp, llama-cpp-python, vLLM): {raw[:300]!r}"
            ) from None
        n = len(offsets) - int((data.get("usage") or {}).get("completion_tokens", 1))
        return offsets[:n], logprobs[:n], tops[:n]

    def _find_tokenizer(self) -> tuple[str, int]:
        """The first tokenize endpoint the server has, and how many special tokens it adds (the length of
        the empty text's tokens), so counts match the text alone as they do on the other backends."""
        for path in TOKENIZE_ENDPOINTS:
            try:
                return path, len(self._tokenize(path, ""))
            except HTTPStatusError as e:
                if e.status not in (404, 405):
                    raise
        raise BackendError(
            f"{self._root(self.shown_url)} has no tokenize endpoint (tried {', '.join(TOKENIZE_ENDPOINTS)}): token "
            "counts need a llama.cpp, llama-cpp-python or vLLM server"
        )

    def _tokenize(self, path: str, text: str) -> list[int]:
        body = {"model": self.model, "input": text, "content": text, "prompt": text, "add_special": False,
                "add_special_tokens": False}  # fmt: skip
        data, raw = self._post(path, body, root=True)
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list):
            raise BackendError(f"{self._root(self.shown_url)}{path} answered JSON without a tokens list: {raw[:300]!r}")
        return tokens

    @staticmethod
    def _root(base_url: str) -> str:
        """The server root: tokenize endpoints sit beside /v1, not under it."""
        return base_url.removesuffix("/v1")

    def _post(self, path: str, body: dict[str, Any], root: bool = False) -> tuple[Any, str]:
        """POST with retries; returns the decoded JSON and the raw text (for error messages)."""
        url = (self._root(self.base_url) if root else self.base_url) + path
        shown = (self._root(self.shown_url) if root else self.shown_url) + path
        error, retry_after = "", None
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(attempt - 1, retry_after)
            if self._limiter:
                self._limiter.wait()
            retry_after = None
            try:
                r = self._http.post(url, json=body)
            except httpx.TimeoutException:
                error = f"{shown} did not answer within {self.timeout:g} s"
                continue
            except httpx.TransportError as e:
                error = (
                    f"nothing answers at {shown} ({type(e).__name__}: {e}): is the server running, is base_url right?"
                )
                continue
            if r.status_code >= 400:
                error = f"{shown} answered HTTP {r.status_code}: {_server_message(r)}"
                if r.status_code not in RETRY_STATUS and r.status_code < 500:
                    raise HTTPStatusError(error, r.status_code)
                retry_after = r.headers.get("retry-after")
                continue
            try:
                return r.json(), r.text
            except ValueError:
                raise BackendError(f"{shown} answered something that is not JSON: {r.text[:300]!r}") from None
        tries = self.retries + 1
        raise BackendError(f"{error} ({tries} {'try' if tries == 1 else 'tries'})")

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        """Retry-After when the server sets it, else exponential backoff with jitter (so that threads that
        failed together do not retry together)."""
        delay = _retry_after_seconds(retry_after)
        if delay is None:
            delay = random.uniform(0.5, 1.0) * self.backoff * 2**attempt
        time.sleep(delay)


def _summed(logprobs: list[float], tops: list[dict[str, float] | None]) -> LogLik:
    """The tokens' total logprob, and whether each was the server's top choice."""
    greedy = all(lp >= max((top or {}).values(), default=lp) - 1e-6 for lp, top in zip(logprobs, tops, strict=True))
    return LogLik(sum(logprobs), greedy, len(logprobs))


def _is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: traffic that never leaves this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _server_message(r: httpx.Response) -> str:
    """The server's own words: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or the body's start."""
    try:
        data = r.json()
    except ValueError:
        return r.text[:300] or r.reason_phrase
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:1000]
        if error:
            return str(error)[:1000]
        if "detail" in data:
            return json.dumps(data["detail"])[:500]
    return r.text[:300]
