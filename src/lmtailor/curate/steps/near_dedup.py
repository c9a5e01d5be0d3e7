"""near_dedup: MinHash + LSH over word or character shingles; one example kept per cluster."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from pydantic import Field

from lmtailor.core.fields import FieldList
from lmtailor.core.records import Example
from lmtailor.curate.clusters import KeepPolicy, drop_duplicates
from lmtailor.curate.step import SetStep, StepContext
from lmtailor.text.minhash import MAX_NGRAM, MinHasher, Shingler, near_duplicate_pairs


class NearDedup(SetStep):
    """Drops examples whose estimated Jaccard similarity to another reaches `threshold`."""

    step: Literal["near_dedup"] = "near_dedup"
    groups_duplicates = True
    fields: FieldList = ["instruction", "input", "output"]
    threshold: float = Field(0.8, gt=0, lt=1)
    num_perm: int = Field(128, ge=16, le=1024)
    shingle: Literal["word", "char"] = "word"
    ngram: int = Field(3, ge=1, le=MAX_NGRAM)
    keep: KeepPolicy = "first"
    score_field: str = "score"
    seed: int = 1

    def run(self, examples: Iterable[Example], ctx: StepContext) -> Iterator[Example]:
        items = list(examples)
        texts = [ex.fields(self.fields) for ex in items]
        task = ctx.progress.add_task("near_dedup: minhash", total=len(texts))
        sigs = MinHasher(self.num_perm, self.seed).text_signatures(
            texts, Shingler(self.shingle, self.ngram), on_batch=lambda n: ctx.progress.advance(task, n)
        )
        pairs, sims = near_duplicate_pairs(sigs, self.threshold)
        yield from drop_duplicates(
            items, pairs, sims, ctx, reason="near_duplicate", keep=self.keep, score_field=self.score_field
        )
