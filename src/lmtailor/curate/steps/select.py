"""select: keep the best N examples by score while keeping them diverse (quality over quantity).

Examples are taken in score order; one is accepted only if its embedding is at least `min_distance`
(cosine distance) from every example already accepted, so near-identical high scorers cannot crowd out
the rest of the task.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Literal

import numpy as np
from pydantic import Field

from lmtailor.core.fields import FieldList
from lmtailor.core.records import Example
from lmtailor.curate.clusters import score_of
from lmtailor.curate.step import SetStep, StepContext
from lmtailor.text.embeddings import embed


def default_score(ex: Example) -> float:
    """Without a score field: prefer substantive answers, saturating so essays do not win by length alone."""
    return math.log1p(min(len(ex.field("output").split()), 400))


class Select(SetStep):
    step: Literal["select"] = "select"
    keeps_a_share = True
    n: int = Field(ge=1)
    min_distance: float = Field(0.1, ge=0, le=2)
    score_field: str | None = None
    fields: FieldList = ["instruction", "input"]

    def run(self, examples: Iterable[Example], ctx: StepContext) -> Iterator[Example]:
        items = list(examples)
        if not items:
            return
        key = self.score_field
        scores = np.array([score_of(ex, key) if key else default_score(ex) for ex in items])
        order = np.argsort(-scores, kind="stable")
        vecs = embed([ex.fields(self.fields) for ex in items], ctx.progress, "select: embed")
        chosen = np.zeros((min(self.n, len(items)), vecs.shape[1]), dtype=np.float32)
        chosen_idx: list[int] = []
        fate: dict[int, tuple[str, str, str | None]] = {}
        for i in ctx.track(order.tolist(), "select: rank"):
            if len(chosen_idx) == self.n:
                fate[i] = ("not_selected", f"score {scores[i]:.3g} below the best {self.n}", None)
                continue
            if chosen_idx:
                sims = chosen[: len(chosen_idx)] @ vecs[i]
                best = int(np.argmax(sims))
                if 1 - sims[best] < self.min_distance:
                    twin = items[chosen_idx[best]].id
                    fate[i] = ("too_similar", f"cosine distance {1 - sims[best]:.3f} to {twin}", twin)
                    continue
            chosen[len(chosen_idx)] = vecs[i]
            chosen_idx.append(i)
        for i, ex in enumerate(items):
            if i in fate:
                reason, detail, twin = fate[i]
                ctx.drop(ex, reason, detail, twin=twin)
            else:
                yield ex
