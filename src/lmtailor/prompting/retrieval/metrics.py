"""Retrieval quality on labelled questions: recall@k, MRR and nDCG@k over the chunks of an index.

A chunk is relevant to a question when it
- contains a gold answer span whole (SQuAD-shaped sets such as COVID-QA); where no chunk does (a long answer
  across a chunk boundary), the chunks holding part of it are the relevant ones;
- else contains a gold answer text (case and spacing folded), within the gold documents when they are known;
- else comes from a gold document (PubMedQA: the question's own abstract).

recall@k is the share of questions with a relevant chunk among the first k (DPR's top-k retrieval accuracy);
MRR@k the mean of 1 / rank of the first relevant chunk within the largest k (0 if none there); nDCG@k binary
gains over the ideal ordering of the question's relevant chunks. Questions with no relevant chunk in the index
count as misses and are reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lmtailor.prompting.retrieval.index import Chunks, Index
from lmtailor.prompting.retrieval.queries import Gold, Query
from lmtailor.prompting.retrieval.search import MODES, Mode, SearchConfig, rank


@dataclass
class Evaluation:
    summary: dict[str, Any]  # per mode: recall@k, MRR, nDCG; and the questions left out
    rows: list[dict[str, Any]]  # per question: its relevant chunks, and per mode the ranks they got and the top k


def evaluate(
    index: Index,
    queries: Sequence[Query],
    modes: Sequence[Mode] = MODES,
    ks: Sequence[int] = (1, 5, 20),
    cfg: SearchConfig | None = None,
    ndcg_k: int = 10,
) -> Evaluation:
    """Every mode's retrieval quality on the questions that have gold; those without are counted, not scored."""
    cfg = cfg or SearchConfig()
    labelled = [q for q in queries if q.gold]
    depth = max(*ks, ndcg_k)
    gold = [relevant(q.gold, index.chunks) for q in labelled]
    ids = index.chunks.ids
    rows: list[dict[str, Any]] = [
        {"id": q.id, "question": q.text, "relevant": sorted(ids[r] for r in rel), "partial_span": partial}
        for q, (rel, partial) in zip(labelled, gold, strict=True)
    ]
    out: dict[str, Any] = {"questions": len(queries), "without_gold": len(queries) - len(labelled), "modes": {}}
    for mode in modes:
        rankings = rank(index, [q.text for q in labelled], mode, max(cfg.depth, depth), cfg)
        judged = [
            judge([r for r, _ in ranking[:depth]], rel, partial)
            for ranking, (rel, partial) in zip(rankings, gold, strict=True)
        ]
        out["modes"][mode] = summary(judged, ks, ndcg_k)
        for row, j, ranking in zip(rows, judged, rankings, strict=True):
            row[mode] = {"ranks": list(j.ranks), "top": [ids[r] for r, _ in ranking[: max(ks)]]}
    return Evaluation(out, rows)


@dataclass(frozen=True)
class Judged:
    """One question's relevant chunk rows and the ranks (from 1) at which its ranking holds them."""

    relevant: frozenset[int]
    ranks: tuple[int, ...]
    partial: bool  # relevant by holding part of an answer span: none holds it whole


def relevant(gold: Gold, chunks: Chunks) -> tuple[frozenset[int], bool]:
    """The chunk rows that answer `gold`, and whether they only hold part of an answer span."""
    rows = [r for d in sorted(gold.doc_ids) for r in chunks.by_doc.get(d, [])] if gold.doc_ids else range(len(chunks))
    if gold.spans:
        whole = {
            r
            for r in rows
            for d, s, e in gold.spans
            if chunks.docs[r] == d and chunks.starts[r] <= s and chunks.ends[r] >= e
        }
        if whole:
            return frozenset(whole), False
        part = {
            r
            for r in rows
            for d, s, e in gold.spans
            if chunks.docs[r] == d and chunks.starts[r] < e and chunks.ends[r] > s
        }
        return frozenset(part), bool(part)
    if gold.answers:
        answers = [_folded(a) for a in gold.answers]
        return frozenset(r for r in rows if any(a in _folded(chunks.texts[r]) for a in answers)), False
    return frozenset(rows), False


def _folded(text: str) -> str:
    return " ".join(text.casefold().split())


def judge(ranking: Sequence[int], relevant_rows: frozenset[int], partial: bool = False) -> Judged:
    return Judged(relevant_rows, tuple(n for n, r in enumerate(ranking, 1) if r in relevant_rows), partial)


def summary(judged: Sequence[Judged], ks: Sequence[int] = (1, 5, 20), ndcg_k: int = 10) -> dict[str, float | int]:
    """recall@k for each k, MRR within the largest k and nDCG@ndcg_k over the questions, with the counts that
    qualify them."""
    n = len(judged) or 1
    out: dict[str, float | int] = {"questions": len(judged)}
    for k in ks:
        out[f"recall@{k}"] = sum(bool(j.ranks) and j.ranks[0] <= k for j in judged) / n
    depth = max(ks)
    out[f"mrr@{depth}"] = sum(1 / j.ranks[0] for j in judged if j.ranks and j.ranks[0] <= depth) / n
    out[f"ndcg@{ndcg_k}"] = sum(ndcg(j, ndcg_k) for j in judged) / n
    out["no_relevant_chunk"] = sum(not j.relevant for j in judged)
    out["partial_span"] = sum(j.partial for j in judged)
    return out


def ndcg(j: Judged, k: int) -> float:
    ideal = sum(1 / math.log2(i + 1) for i in range(1, min(k, len(j.relevant)) + 1))
    return sum(1 / math.log2(r + 1) for r in j.ranks if r <= k) / ideal if ideal else 0.0
