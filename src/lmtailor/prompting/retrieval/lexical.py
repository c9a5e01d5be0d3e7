"""BM25 over chunk texts with bm25s (sparse matrices scored in numpy, far faster than rank-bm25).

Documents and queries are tokenized the same way: lower-cased words of two or more characters, English stop
words removed, Snowball English stems (PyStemmer). The settings are recorded in the index manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

_THREADED = 100  # questions from which a batch is scored on all cores
SETTINGS = {"library": "bm25s", "method": "lucene", "k1": 1.5, "b": 0.75, "stopwords": "en", "stemmer": "english"}


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer(SETTINGS["stemmer"])


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Texts as the index sees them: lower-cased words, stop words out, stemmed."""
    import bm25s

    return bm25s.tokenize(
        list(texts), stopwords=SETTINGS["stopwords"], stemmer=_stemmer(), return_ids=False, show_progress=False
    )


def build(texts: Sequence[str]):
    """A BM25 index of `texts`, row i being text i."""
    import bm25s

    index = bm25s.BM25(method=SETTINGS["method"], k1=SETTINGS["k1"], b=SETTINGS["b"])
    index.index(tokenize(texts), show_progress=False)
    return index


def save(index, folder: Path) -> None:
    index.save(str(folder), show_progress=False)


def load(folder: Path):
    import bm25s

    return bm25s.BM25.load(str(folder), show_progress=False, mmap=False)


def rows(index) -> int:
    """How many texts the index holds."""
    return int(index.scores["num_docs"])


def top(index, questions: Sequence[str], depth: int) -> list[list[tuple[int, float]]]:
    """Each question's best rows and scores, best first; rows sharing no term with it (score 0) are left out."""
    k = min(depth, rows(index))
    threads = -1 if len(questions) >= _THREADED else 1  # a batch of questions is scored on every core
    found, scores = index.retrieve(tokenize(questions), k=k, show_progress=False, n_threads=threads)
    return [
        [(int(r), float(s)) for r, s in zip(row, score, strict=True) if s > 0]
        for row, score in zip(np.atleast_2d(found), np.atleast_2d(scores), strict=True)
    ]
