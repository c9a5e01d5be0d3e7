"""Greedy generation for evaluation: a score must not change from one run to the next, so no sampling.

Prompts are batched by length (left padding, so every row continues from the same position) and the answers
come back in the caller's order. An answer ends at an end-of-generation id (the tokenizer's and the generation
config's, e.g. Gemma's <end_of_turn>) or at the first stop string, which is cut off.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from rich.progress import Progress
from transformers import StoppingCriteria, StoppingCriteriaList


def greedy(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    max_new_tokens: int,
    stop: Sequence[str] = (),
    batch_size: int = 8,
    progress: Progress | None = None,
) -> list[str]:
    """The greedy continuation of each fully rendered prompt (special tokens such as <bos> already in it)."""
    eos = end_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos)
    encoded = [tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    out = [""] * len(prompts)
    task = progress.add_task("generate", total=len(prompts)) if progress is not None else None
    with evaluating(model):
        for lo in range(0, len(order), batch_size):
            batch = order[lo : lo + batch_size]
            texts = _generate(model, tokenizer, [encoded[i] for i in batch], max_new_tokens, stop, eos, pad)
            for i, text in zip(batch, texts, strict=True):
                out[i] = text
            if progress is not None and task is not None:
                progress.advance(task, len(batch))
    return out


@contextmanager
def evaluating(model: Any) -> Iterator[None]:
    """Eval mode (no dropout) and no autograd; a model in training mode goes back to it afterwards."""
    training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(training)


def end_ids(model: Any, tokenizer: Any) -> set[int]:
    """Ids that end an answer: the tokenizer's end-of-sequence and the generation config's end ids."""
    configured = model.generation_config.eos_token_id
    ids = {configured} if isinstance(configured, int) else set(configured or [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    if not ids:
        raise ValueError("the model and tokenizer name no end-of-sequence token: generation could not stop")
    return ids


def _generate(
    model: Any,
    tokenizer: Any,
    encoded: list[list[int]],
    max_new_tokens: int,
    stop: Sequence[str],
    eos: set[int],
    pad: int,
) -> list[str]:
    width = max(len(ids) for ids in encoded)
    input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, ids in enumerate(encoded):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        mask[row, width - len(ids) :] = 1
    criteria = StoppingCriteriaList([_StopStrings(tokenizer, stop, width)]) if stop else None
    output = model.generate(
        input_ids=input_ids,
        attention_mask=mask,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        temperature=None,
        top_p=None,
        top_k=None,
        eos_token_id=sorted(eos),
        pad_token_id=pad,
        stopping_criteria=criteria,
    )
    texts = []
    for row in output[:, width:].tolist():
        ended = next((k for k, t in enumerate(row) if t in eos), len(row))
        texts.append(cut_at_stop(tokenizer.decode(row[:ended], skip_special_tokens=True), stop))
    return texts


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to its first stop string."""
    cut = min((text.find(s) for s in stop if s and s in text), default=len(text))
    return text[:cut]


class _StopStrings(StoppingCriteria):
    """Ends a row once its answer (not the prompt) contains a stop string."""

    def __init__(self, tokenizer: Any, stop: Sequence[str], prompt_width: int):
        self.tokenizer, self.stop, self.width = tokenizer, [s for s in stop if s], prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.width :], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stop) for t in texts], dtype=torch.bool)
