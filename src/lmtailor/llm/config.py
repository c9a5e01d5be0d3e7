"""Which backend to use, as a recipe block or CLI flags: one config class per kind, each with the settings that
kind takes; `open_llm` turns one into a ready client."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_serializer, model_validator
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


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _gguf_adapter(cls, data: Any) -> Any:
        """A GGUF adapter is llama.cpp's; the others serve the adapter merged into the model instead."""
        if isinstance(data, dict) and data.get("lora") is not None and "lora" not in cls.model_fields:
            kind = cls.model_fields["kind"].default
            raise ValueError(f"lora takes a GGUF adapter for the llamacpp backend, not {kind}; serve a merged model")
        return data


class LlamaCppConfig(_Config):
    """With no model, the embedded Gemma 3 270M: no configuration needed."""

    kind: Literal["llamacpp"] = "llamacpp"
    model: str | None = None  # a GGUF file
    lora: str | None = None  # a GGUF LoRA adapter applied on top of the model (train.export)
    n_ctx: int = Field(2048, ge=128)  # each sequence's window
    n_parallel: int = Field(8, ge=1)  # greedy sequences decoded together; 1: one prompt at a time
    cache: bool = True


class OpenAIConfig(_Config):
    """An OpenAI-compatible HTTP server: OpenAI itself, vLLM, llama.cpp's server."""

    kind: Literal["openai"] = "openai"
    model: str  # the server's model name
    base_url: str  # e.g. http://127.0.0.1:8000/v1
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(4, ge=1)
    rate_limit: float | None = Field(None, gt=0)  # requests per second
    timeout: float = Field(120.0, gt=0)
    retries: int = Field(3, ge=0)
    price: tuple[float, float] | None = None
    # How a JSON schema is sent. json_object suits llama.cpp servers; OpenAI and vLLM take json_schema.
    schema_format: Literal["json_object", "json_schema"] = "json_object"
    extra_body: dict[str, Any] = {}  # server-specific request fields, e.g. {repeat_penalty: 1.0}
    cache: bool = True

    @model_validator(mode="before")
    @classmethod
    def _server(cls, data: Any) -> Any:
        if isinstance(data, dict) and not (data.get("base_url") and data.get("model")):
            raise ValueError("the openai backend needs base_url and model (e.g. http://127.0.0.1:8000/v1, gpt-4o-mini)")
        return data

    @field_serializer("base_url")
    def _redacted(self, url: str) -> str:
        """Every dump (the manifest's recipe, step fingerprints) holds the URL without its credentials; the
        field itself keeps them for the requests."""
        return redact_url(url)


class TransformersConfig(_Config):
    """A Hugging Face model folder run in-process with transformers; with no model, the embedded Gemma 3 270M."""

    kind: Literal["transformers"] = "transformers"
    model: str | None = None  # a Hugging Face model folder
    adapter: str | None = None  # a PEFT adapter folder (train's `adapter` export), merged into the model
    cache: bool = True


BACKEND_CONFIGS: dict[str, type[_Config]] = {"llamacpp": LlamaCppConfig, "openai": OpenAIConfig,
                                            "transformers": TransformersConfig}  # fmt: skip


def _kind(value: Any) -> Any:
    """`kind` may be left out: the embedded llama.cpp model is the default."""
    return value.get("kind", "llamacpp") if isinstance(value, dict) else getattr(value, "kind", None)


# Which backend to use: a recipe's `backend` block, told apart by its `kind`.
BackendConfig = Annotated[
    Annotated[LlamaCppConfig, Tag("llamacpp")]
    | Annotated[OpenAIConfig, Tag("openai")]
    | Annotated[TransformersConfig, Tag("transformers")],
    Discriminator(
        _kind,
        custom_error_type="backend_kind",
        custom_error_message="kind should be 'llamacpp', 'openai' or 'transformers'",
    ),
]


def open_backend(cfg: BackendConfig) -> Backend:
    if isinstance(cfg, OpenAIConfig):
        from lmtailor.llm.openai_http import OpenAIBackend

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
    if isinstance(cfg, TransformersConfig):
        from lmtailor.llm.transformers_backend import TransformersBackend

        return TransformersBackend(Path(cfg.model) if cfg.model else None, adapter=cfg.adapter)
    from lmtailor.llm.llamacpp import LlamaCppBackend

    if cfg.lora and not Path(cfg.lora).is_file():
        raise BackendError(f"{cfg.lora}: no such GGUF LoRA file")
    return LlamaCppBackend(cfg.model, n_ctx=cfg.n_ctx, lora_path=cfg.lora, n_parallel=cfg.n_parallel)


def open_llm(cfg: BackendConfig, progress: Progress | None = None) -> LLM:
    backend = open_backend(cfg)
    batch = cfg.concurrency * 2 if isinstance(cfg, OpenAIConfig) else 8
    return LLM(backend, ResponseCache() if cfg.cache else None, progress, batch_size=batch)
