"""The figures every rung is scored with: SQuAD's answer normalisation, token F1, a bootstrap confidence
interval, percentiles of per-query cost.

SQuAD's rules (the official evaluation script's): lower case, punctuation and the articles a/an/the removed,
whitespace collapsed; F1 over the bag of tokens; an example with several gold answers takes the best.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
BOOTSTRAP_SAMPLES = 1000


def squad_normalize(text: str) -> str:
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = squad_normalize(prediction).split(), squad_normalize(gold).split()
    if not pred or not ref:
        return float(pred == ref)  # both empty: a match; one empty: none
    common = sum((Counter(pred) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def squad_scores(prediction: str, golds: Sequence[str]) -> tuple[float, float]:
    """(exact match, F1) against the best of the gold answers."""
    normal = squad_normalize(prediction)
    exact = max(float(normal == squad_normalize(g)) for g in golds)
    return exact, max(token_f1(prediction, g) for g in golds)


def contains_answer(context: str, golds: Sequence[str]) -> bool:
    """Whether any gold answer appears in `context` once both are SQuAD-normalised (answer-in-context: did
    retrieval hand the model what it needed?)."""
    text = f" {squad_normalize(context)} "
    return any(f" {g} " in text for g in map(squad_normalize, golds) if g)


def bootstrap_ci(values: Sequence[float], seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> tuple[float, float]:
    """The 95% percentile-bootstrap interval of the mean: the examples resampled with replacement. Seeded, so
    the same scores always give the same interval."""
    if not values:
        return (0.0, 0.0)
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(samples, len(data)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return (float(lo), float(hi))


def spread(values: Sequence[float]) -> dict[str, float] | None:
    """p50 and p95 of per-query figures (tokens, seconds); None where there are none."""
    if not values:
        return None
    p50, p95 = np.percentile(np.asarray(values, dtype=np.float64), [50, 95])
    return {"p50": round(float(p50), 4), "p95": round(float(p95), 4)}
