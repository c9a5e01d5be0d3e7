"""semantic_dedup: SemDeDup-style removal of examples whose embeddings are nearly parallel.

Catches paraphrases that share few words, which MinHash cannot see.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np
from pydantic import Field

from lmtailor.core.fields import FieldList
from lmtailor.core.records import Example
from lmtailor.curate.clusters import KeepPolicy, drop_duplicates
from lmtailor.curate.step import SetStep, StepContext
from lmtailor.text.embeddings import embed


def similar_pairs(vecs: np.ndarray, threshold: float, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) among each vector's `top_k` nearest neighbours with cosine >= threshold."""
    import torch
    from sentence_transformers.util import paraphrase_mining_embeddings

    found = paraphrase_mining_embeddings(torch.from_numpy(vecs), top_k=top_k, max_pairs=len(vecs) * top_k)
    kept = sorted((min(i, j), max(i, j), s) for s, i, j in found if s >= threshold)
    if not kept:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    arr = np.array(kept)
    return arr[:, :2].astype(np.int64), arr[:, 2]


class SemanticDedup(SetStep):
    """Drops examples whose cosine similarity to another reaches `threshold` (exact nearest-neighbour search)."""

    step: Literal["semantic_dedup"] = "semantic_dedup"
    groups_duplicates = True
    fields: FieldList = ["instruction", "input"]
    threshold: float = Field(0.95, gt=0, le=1)
    top_k: int = Field(10, ge=1)
    keep: KeepPolicy = "first"
    score_field: str = "score"

    def run(self, examples: Iterable[Example], ctx: StepContext) -> Iterator[Example]:
        items = list(examples)
        vecs = embed([ex.fields(self.fields) for ex in items], ctx.progress, "semantic_dedup: embed")
        pairs, sims = similar_pairs(vecs, self.threshold, self.top_k)
        yield from drop_duplicates(
            items, pairs, sims, ctx, reason="semantic_duplicate", keep=self.keep, score_field=self.score_field
        )
