"""Where a generated or judged record came from: backend, model, template, parameters and seed ids.

Provenance lives in `metadata["extra"]["provenance"]`, so it is written out with the record in every format.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lmtailor.core.records import Example
from lmtailor.curate.step import StepContext
from lmtailor.llm.client import LLM
from lmtailor.llm.config import BackendConfig, open_llm
from lmtailor.llm.types import GenParams


@contextmanager
def step_llm(cfg: BackendConfig, ctx: StepContext) -> Iterator[LLM]:
    """An LLM client for one step's run; its usage (tokens, cost, cache hits) goes into the manifest."""
    llm = open_llm(cfg, ctx.progress)
    try:
        yield llm
    finally:
        ctx.metrics["usage"] = llm.usage.to_json()
        ctx.metrics["backend"] = llm.identity
        if llm.cache is not None:
            llm.cache.close()
        llm.backend.close()


def template_id(name: str, text: str) -> str:
    """A template's name and a hash of its text, so a changed template is told apart in provenance."""
    return f"{name}@{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def provenance(
    llm: LLM, step: str, template: str, params: GenParams, seed_ids: list[str], **more: Any
) -> dict[str, Any]:
    identity = llm.identity
    return {
        "step": step,
        "backend": identity["kind"],
        "model": identity["model"],
        "template": template,
        "params": params.model_dump(mode="json", exclude={"json_schema"}),
        "seed_ids": seed_ids,
        **more,
    }


def generated(example_id: str, instruction: str, output: str, origin: dict[str, Any], input: str = "") -> Example:
    """A new alpaca-shaped example carrying its provenance."""
    messages = [{"role": "user", "content": instruction}, {"role": "assistant", "content": output}]
    return Example(
        example_id,
        messages,
        input,
        {"source": origin["step"], "index": None, "format": "alpaca", "extra": {"provenance": origin}},
    )
