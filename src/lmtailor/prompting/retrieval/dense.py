"""Exact dense search: inner products of unit vectors (cosine) in numpy.

A batch of questions is one matrix product against the whole matrix, on every BLAS thread. A few questions
(the retrieval prompter asks one at a time) are scored on a single BLAS thread: waking a second thread for a
matrix-vector product costs more than it saves, and on a busy machine it made one question 30 times slower.
Against faiss's flat inner-product index (bench/rag.py), faiss is up to twice as fast on a corpus of a few
thousand chunks and numpy faster one question at a time on 100k; either way a search costs less than embedding
its question, so exact search in numpy it is, with no other index or library.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from typing import Any

import numpy as np

_BLOCK = 256  # queries scored at once: a block of scores stays at 256 x rows floats
_ONE_THREAD = 16  # fewer queries than this are scored on one BLAS thread


@lru_cache(maxsize=1)
def _threadpools() -> Any:
    from threadpoolctl import ThreadpoolController  # a scikit-learn dependency

    return ThreadpoolController()


def _threads(queries: int) -> AbstractContextManager[Any]:
    return _threadpools().limit(limits=1, user_api="blas") if queries < _ONE_THREAD else nullcontext()


def top(vectors: np.ndarray, queries: np.ndarray, depth: int) -> list[list[tuple[int, float]]]:
    """Each query's `depth` nearest rows by inner product and their scores, best first."""
    k = min(depth, len(vectors))
    out: list[list[tuple[int, float]]] = []
    for lo in range(0, len(queries), _BLOCK):
        with _threads(len(queries)):
            scores = queries[lo : lo + _BLOCK] @ vectors.T
        best = (
            np.argpartition(-scores, k - 1, axis=1)[:, :k]
            if k < len(vectors)
            else np.tile(np.arange(k), (len(scores), 1))
        )
        picked = np.take_along_axis(scores, best, axis=1)
        order = np.argsort(-picked, axis=1, kind="stable")
        for rows, values in zip(
            np.take_along_axis(best, order, axis=1), np.take_along_axis(picked, order, axis=1), strict=True
        ):
            out.append([(int(r), float(s)) for r, s in zip(rows, values, strict=True)])
    return out
