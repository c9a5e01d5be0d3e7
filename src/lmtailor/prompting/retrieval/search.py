"""Top-k chunks for questions: BM25, dense, or both fused by reciprocal rank fusion.

Hybrid search asks each retriever for its `depth` best chunks and scores a chunk by
sum over retrievers of weight / (c + rank), rank counted from 1 and c = 60 (Cormack, Clarke and Büttcher, 2009):
only ranks matter, so BM25's unbounded scores and cosines need no common scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lmtailor.core.io import DataError
from lmtailor.prompting.retrieval import dense, lexical
from lmtailor.prompting.retrieval.index import Index
from lmtailor.text.embeddings import embed

Mode = Literal["bm25", "dense", "hybrid"]
MODES: tuple[Mode, ...] = ("bm25", "dense", "hybrid")
Ranking = list[tuple[int, float]]  # (chunk row, score), best first


class SearchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Mode = "hybrid"
    k: int = Field(5, ge=1)  # chunks returned
    depth: int = Field(100, ge=1)  # candidates each retriever gives the fusion
    rrf_c: float = Field(60.0, ge=0)
    bm25_weight: float = Field(1.0, ge=0)
    dense_weight: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _weighted(self) -> SearchConfig:
        if self.mode == "hybrid" and self.bm25_weight == self.dense_weight == 0:
            raise ValueError("hybrid search needs a weight above 0 for bm25 or dense")
        return self


@dataclass(frozen=True, slots=True)
class Hit:
    id: str  # the chunk id, `<doc id>#<n>`: the citation
    doc: str
    start: int
    end: int
    text: str
    score: float
    rank: int  # from 1

    def to_json(self) -> dict[str, object]:
        return {"rank": self.rank, "id": self.id, "doc": self.doc, "start": self.start, "end": self.end,
                "score": round(self.score, 6), "text": self.text}  # fmt: skip


def search(index: Index, questions: Sequence[str], cfg: SearchConfig | None = None) -> list[list[Hit]]:
    """Each question's best `cfg.k` chunks, best first."""
    cfg = cfg or SearchConfig()
    rankings = rank(index, questions, cfg.mode, max(cfg.depth, cfg.k), cfg)
    chunks = index.chunks
    return [
        [
            Hit(chunks.ids[r], chunks.docs[r], chunks.starts[r], chunks.ends[r], chunks.texts[r], score, n)
            for n, (r, score) in enumerate(ranking[: cfg.k], 1)
        ]
        for ranking in rankings
    ]


def rank(index: Index, questions: Sequence[str], mode: Mode, depth: int, cfg: SearchConfig) -> list[Ranking]:
    """Each question's best `depth` chunk rows with their scores (RRF scores for hybrid)."""
    if mode != "bm25" and index.vectors is None:
        raise DataError(
            index.path,
            None,
            f"is a lexical-only index (built with --no-dense): {mode} search needs vectors; search it with bm25",
        )
    if mode == "bm25":
        return lexical.top(index.lexical, questions, depth)
    if mode == "dense":
        return dense.top(index.vectors, embed(list(questions)), depth)
    lexical_top = lexical.top(index.lexical, questions, depth)
    both = zip(lexical_top, dense.top(index.vectors, embed(list(questions)), depth), strict=True)
    weights = (cfg.bm25_weight, cfg.dense_weight)
    return [fuse([[r for r, _ in b], [r for r, _ in d]], weights, cfg.rrf_c)[:depth] for b, d in both]


def fuse(rankings: Sequence[Sequence[int]], weights: Sequence[float], c: float = 60.0) -> Ranking:
    """Reciprocal rank fusion: sum of weight / (c + rank) over the rankings an item is in; ties keep the order
    in which items were first met."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for n, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + weight / (c + n)
    return sorted(scores.items(), key=lambda kv: -kv[1])
