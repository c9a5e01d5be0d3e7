"""Which example of a duplicate cluster stays: the first, the longest or the best scored; the rest go to the
ledger with their kept twin."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np

from lmtailor.core.records import Example
from lmtailor.curate.step import StepContext
from lmtailor.text.clusters import components

KeepPolicy = Literal["first", "longest", "score"]


def score_of(ex: Example, key: str) -> float:
    """A numeric score from the record's own fields or lmtailor metadata; missing scores rank last."""
    value: Any = ex.metadata.get("extra", {}).get(key, ex.metadata.get(key))
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("-inf")


def _rank(ex: Example, index: int, keep: KeepPolicy, score_field: str) -> tuple:
    if keep == "longest":
        return (-len(ex.field("output")), index)
    if keep == "score":
        return (-score_of(ex, score_field), index)
    return (index,)


def drop_duplicates(
    items: Sequence[Example],
    pairs: np.ndarray,
    similarity: np.ndarray,
    ctx: StepContext,
    *,
    reason: str,
    keep: KeepPolicy = "first",
    score_field: str = "score",
) -> Iterator[Example]:
    """Yield one example per cluster (in input order) and ledger each other member with its kept twin."""
    roots = components(len(items), pairs)
    best_sim: dict[int, float] = {}
    for (i, j), s in zip(pairs.tolist(), similarity.tolist(), strict=True):
        best_sim[i] = max(best_sim.get(i, 0.0), s)
        best_sim[j] = max(best_sim.get(j, 0.0), s)
    keeper: dict[int, int] = {}
    for idx, root in enumerate(roots.tolist()):
        cur = keeper.get(root)
        if cur is None or _rank(items[idx], idx, keep, score_field) < _rank(items[cur], cur, keep, score_field):
            keeper[root] = idx
    sizes = np.bincount(roots, minlength=len(items))
    for idx, ex in enumerate(items):
        k = keeper[int(roots[idx])]
        if k == idx:
            yield ex
            continue
        sim = round(best_sim.get(idx, 0.0), 4)
        ctx.drop(
            ex,
            reason,
            f"in a cluster of {sizes[roots[idx]]} kept as {items[k].id} (similarity {sim})",
            twin=items[k].id,
            similarity=sim,
        )
