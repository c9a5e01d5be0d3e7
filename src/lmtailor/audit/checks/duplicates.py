"""duplicates: exact and near-duplicate records, and records that leak into an evaluation set.

Repetition makes a model overweight what is repeated, and a test question seen in training makes the score
meaningless. The keys are curate's own (`fingerprint` of exact_dedup, MinHash + LSH of near_dedup, the
13-gram keys of decontaminate), so what the audit calls a duplicate is exactly what curate would drop.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from lmtailor.audit.check import Check, CheckContext
from lmtailor.audit.finding import Finding, Severity
from lmtailor.core.fields import FieldList
from lmtailor.core.inputs import InputSpec
from lmtailor.core.records import Example
from lmtailor.text.clusters import components
from lmtailor.text.keys import fingerprint, ngram_keys
from lmtailor.text.minhash import MAX_NGRAM, MinHasher, Shingler, near_duplicate_pairs

_WORD = re.compile(r"\w")


class Duplicates(Check):
    """One finding per non-first member of each duplicate group, and one per record overlapping `eval`.

    Exact copies are medium (pure waste of the budget and a thumb on the scale), near copies low (often
    a paraphrased request with the same answer), evaluation overlap high when it is a leak (it invalidates
    the evaluation) and info when it is a stock phrase (see `_eval_overlap`). Near matching runs on one
    representative per exact group, so an exact copy is reported once, as exact.
    """

    check: Literal["duplicates"] = "duplicates"
    fields: FieldList = ["instruction", "input", "output"]
    threshold: float = Field(0.8, gt=0, lt=1)
    num_perm: int = Field(128, ge=16, le=1024)
    shingle: Literal["word", "char"] = "word"
    ngram: int = Field(3, ge=1, le=MAX_NGRAM)
    seed: int = 1
    eval: list[InputSpec] = []
    eval_ngram: int = Field(13, ge=1)
    # decontaminate's fields: `input` is often context shared by many records, not the question
    eval_fields: FieldList = ["instruction", "output"]
    # shared n-grams at which an overlap inside the answer alone stops being a stock phrase
    eval_min_shared: int = Field(5, ge=1)

    def run(self, examples: Sequence[Example], ctx: CheckContext) -> Iterator[Finding]:
        n = len(examples)
        texts = [ex.fields(self.fields) for ex in examples]
        first: dict[bytes, int] = {}
        exact_of = np.arange(n)
        for i, ex in enumerate(examples):
            exact_of[i] = first.setdefault(fingerprint([ex.field(f) for f in self.fields]), i)
        # a text without a single word shingles to the same empty set as every other such text
        reps = [i for i in range(n) if exact_of[i] == i and (self.shingle == "char" or _WORD.search(texts[i]))]
        sigs = MinHasher(self.num_perm, self.seed).text_signatures(
            [texts[i] for i in reps], Shingler(self.shingle, self.ngram)
        )
        local, sims = near_duplicate_pairs(sigs, self.threshold)
        near = np.asarray(reps, dtype=np.int64)[local] if len(local) else local
        # each near member's twin is its most similar directly matched record, so the similarity is real
        twin: dict[int, tuple[float, int]] = {}
        for (i, j), s in zip(near.tolist(), sims.tolist(), strict=True):
            for a, b in ((i, j), (j, i)):
                if s > twin.get(a, (-1.0, -1))[0]:
                    twin[a] = (s, b)
        exact_pairs = np.array([(int(exact_of[i]), i) for i in range(n) if exact_of[i] != i], dtype=np.int64)
        roots = components(n, np.concatenate([near, exact_pairs.reshape(-1, 2)]))
        sizes = np.bincount(roots.astype(np.int64), minlength=n)
        counts = {"exact": 0, "near": 0, "eval_overlap": 0, "clusters": int((sizes > 1).sum())}
        for i, ex in enumerate(examples):
            root, size = int(roots[i]), int(sizes[roots[i]])
            if exact_of[i] != i:
                counts["exact"] += 1
                other = examples[int(exact_of[i])]
                yield ctx.finding(
                    ex,
                    "medium",
                    1.0,
                    f"exact duplicate of {other.id}",
                    twin=other.id,
                    similarity=1.0,
                    kind="exact",
                    cluster=examples[root].id,
                    cluster_size=size,
                )
            elif i in twin and root != i:
                counts["near"] += 1
                s, j = twin[i]
                yield ctx.finding(
                    ex,
                    "low",
                    s,
                    f"near duplicate of {examples[j].id} (estimated Jaccard {s:.2f} on {self.shingle} "
                    f"{self.ngram}-grams of {'+'.join(self.fields)})",
                    twin=examples[j].id,
                    similarity=round(s, 4),
                    kind="near",
                    cluster=examples[root].id,
                    cluster_size=size,
                )
        for f in self._eval_overlap(examples, ctx):
            counts["eval_overlap"] += 1
            yield f
        ctx.metrics.update(counts)

    def _eval_overlap(self, examples: Sequence[Example], ctx: CheckContext) -> Iterator[Finding]:
        """Records sharing an `eval_ngram`-word sequence with an evaluation record (the whole text when shorter).

        High when the shared text reaches into the request (the evaluation question itself is there) or runs
        to `eval_min_shared` n-grams; a few n-grams inside the answer alone are usually a stock phrase or a
        quoted fact ("an increase in the general price level of goods and services"), so they are info: listed,
        and what decontaminate would drop, but not a leak to act on.
        """
        owner: dict[int, tuple[str, str]] = {}
        for spec in self.eval:
            for ev in spec.read():
                for h in ngram_keys(ev.fields(self.eval_fields), self.eval_ngram):
                    owner.setdefault(h, (ev.id, str(spec.path)))
        if not owner:
            return
        for ex in examples:
            keys = ngram_keys(ex.fields(self.eval_fields), self.eval_ngram)
            hits = {h for h in keys if h in owner}
            if not hits:
                continue
            (twin, source), _ = Counter(owner[h] for h in hits).most_common(1)[0]
            asks = bool(hits - ngram_keys(ex.field("output"), self.eval_ngram))
            severity: Severity = "high" if asks or len(hits) >= self.eval_min_shared else "info"
            where = "reaching into the request" if asks else "in the answer only"
            yield ctx.finding(
                ex,
                severity,
                len(hits) / len(keys),
                f"shares {len(hits)} of its {len(keys)} {self.eval_ngram}-word sequences with evaluation record "
                f"{twin} ({where})",
                twin=twin,
                eval_source=source,
                shared=len(hits),
                in_request=asks,
                kind="eval_overlap",
            )
