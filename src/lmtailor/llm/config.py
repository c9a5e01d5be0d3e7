"""Which backend to use, as a recipe block or CLI flags; `open_llm` turns it into a ready client."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer
from rich.progress import Progress

from lmtailor.llm.backend import Backend
from lmtailor.llm.cache import ResponseCache
from lmtailor.llm.client import LLM
from lmtailor.llm.types import BackendError, redact_url

# USD per million (prompt, completion) tokens: list prices when this table was written. Set `price` in the
# backend config for any other model or when prices change; servers you run yourself cost nothing per call.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-3.5-turbo": (0.50, 1.50),
}


class BackendConfig(BaseModel):
    """`kind: llamacpp` with no model is the embedded Gemma 3 270M: no configuration needed."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["llamacpp", "openai", "transformers"] = "llamacpp"
    model: str | None = None  # GGUF file, server model name, or Hugging Face model folder
    lora: str | None = None  # llamacpp: a GGUF LoRA adapter applied on top of the model (train.export)
    base_url: str | None = None  # openai: e.g. http://127.0.0.1:8000/v1
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(4, ge=1)
    rate_limit: float | None = Field(None, gt=0)  # requests per second
    timeout: float = Field(120.0, gt=0)
    retries: int = Field(3, ge=0)
    n_ctx: int = Field(2048, ge=128)
    price: tuple[float, float] | None = None
    # openai: how a JSON schema is sent. json_object suits llama.cpp servers; OpenAI and vLLM take json_schema.
    schema_format: Literal["json_object", "json_schema"] = "json_object"
    extra_body: dict[str, Any] = {}  # openai: server-specific request fields, e.g. {repeat_penalty: 1.0}
    cache: bool = True

    @field_serializer("base_url")
    def _redacted(self, url: str | None) -> str | None:
        """Every dump (the manifest's recipe, step fingerprints) holds the URL without its credentials; the
        field itself keeps them for the requests."""
        return redact_url(url) if url else url

    def describe(self) -> dict[str, str | None]:
        model = self.model or "embedded gemma-3-270m"
        return {"backend": self.kind, "model": model, "lora": self.lora, "base_url": self._redacted(self.base_url)}


def open_backend(cfg: BackendConfig) -> Backend:
    if cfg.lora and cfg.kind != "llamacpp":
        raise ValueError(f"lora takes a GGUF adapter for the llamacpp backend, not {cfg.kind}; serve a merged model")
    if cfg.kind == "llamacpp":
        from lmtailor.llm.llamacpp import LlamaCppBackend

        if cfg.lora and not Path(cfg.lora).is_file():
            raise BackendError(f"{cfg.lora}: no such GGUF LoRA file")
        return LlamaCppBackend(cfg.model, n_ctx=cfg.n_ctx, lora_path=cfg.lora)
    if cfg.kind == "openai":
        from lmtailor.llm.openai_http import OpenAIBackend

        if not cfg.base_url or not cfg.model:
            raise ValueError("the openai backend needs base_url and model (e.g. http://127.0.0.1:8000/v1, gpt-4o-mini)")
        return OpenAIBackend(
            cfg.base_url,
            cfg.model,
            api_key_env=cfg.api_key_env,
            concurrency=cfg.concurrency,
            rate_limit=cfg.rate_limit,
            timeout=cfg.timeout,
            retries=cfg.retries,
            price=cfg.price or PRICES.get(cfg.model),
            schema_format=cfg.schema_format,
            extra_body=cfg.extra_body,
        )
    from lmtailor.llm.transformers_backend import TransformersBackend

    return TransformersBackend(Path(cfg.model) if cfg.model else None)


def open_llm(cfg: BackendConfig, progress: Progress | None = None) -> LLM:
    backend = open_backend(cfg)
    batch = cfg.concurrency * 2 if cfg.kind == "openai" else 8
    return LLM(backend, ResponseCache() if cfg.cache else None, progress, batch_size=batch)
