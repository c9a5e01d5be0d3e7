"""Which solved examples (shots) a query is shown: the pool they come from and six ways to choose among it.

A selector returns its choice in order of preference, so a token budget that cannot hold them all leaves out
the least wanted. Strategies that compare texts compare the part that tells examples apart: a question's text
from the last occurrence of the shared-context marker (a Spider prompt is mostly its schema, and the embedder
reads only its first 256 word pieces), embedded with all-MiniLM-L6-v2 (unit length: a dot product is the
cosine).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from lmtailor.core.io import DataError
from lmtailor.core.records import Example, RecordError
from lmtailor.prompting.template import turns
from lmtailor.text.embeddings import embed

# Vote-k (Su et al. 2022, "Selective annotation makes language models better few-shot learners"): each example
# votes for its nearest neighbours, and a vote counts 1/DISCOUNT less for every neighbour already chosen.
VOTE_NEIGHBOURS = 10
VOTE_DISCOUNT = 10.0
_BLOCK = 1024  # pool rows compared at a time while building the neighbour graph


def solved(ex: Example) -> list[dict[str, Any]]:
    """The example's turns up to and with its last answer (a shot), without system turns."""
    messages = turns(ex)
    return [m for m in messages[: last_answer(ex, messages) + 1] if m["role"] != "system"]


def asked(ex: Example) -> list[dict[str, Any]]:
    """The example's turns before its last answer: the question."""
    messages = turns(ex)
    return messages[: last_answer(ex, messages)]


def last_answer(ex: Example, messages: list[dict[str, Any]]) -> int:
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        raise RecordError(f"{ex.id}: has no answer (assistant turn)")
    return last


def question_of(messages: Sequence[dict[str, Any]]) -> str:
    """The text of the last user turn: what makes a query itself (and a shot the same question)."""
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


def from_marker(text: str, marker: str | None) -> str:
    """`text` from the last occurrence of `marker`: the part after the context many questions share."""
    cut = text.rfind(marker) if marker else -1
    return text[cut:] if cut >= 0 else text


class Pool:
    """The solved examples shots are drawn from, grouped by the metadata field they must share with a query."""

    def __init__(self, examples: Sequence[Example], same: str | None = None, marker: str | None = None):
        self.examples, self.same, self.marker = list(examples), same, marker
        self.shots = [solved(ex) for ex in self.examples]
        self.questions = [question_of(shot) for shot in self.shots]
        self.answers = [shot[-1]["content"] for shot in self.shots]
        self.groups: dict[Hashable, list[int]] = defaultdict(list)
        for i, ex in enumerate(self.examples):
            self.groups[_key(ex.meta(same)) if same else None].append(i)
        self._query_vectors: dict[str, np.ndarray] = {}

    def group(self, query: Example) -> Hashable:
        return _key(query.meta(self.same)) if self.same else None

    def candidates(self, query: Example, question: str) -> list[int]:
        """The pool examples a query may be shown, in pool order: those of its group, less the query itself (the
        same id, or the same question)."""
        return [
            i
            for i in self.groups.get(self.group(query), [])
            if self.examples[i].id != query.id and self.questions[i] != question
        ]

    @cached_property
    def vectors(self) -> np.ndarray:
        return embed([from_marker(q, self.marker) for q in self.questions])

    def embed_queries(self, questions: Sequence[str]) -> None:
        """Embed many queries' questions in one call, ahead of asking them one by one."""
        texts = [from_marker(q, self.marker) for q in questions]
        todo = [t for t in dict.fromkeys(texts) if t not in self._query_vectors]
        self._query_vectors.update(zip(todo, embed(todo), strict=True))

    def similarity(self, question: str, indices: Sequence[int]) -> np.ndarray:
        """Cosine similarity of the query's question to each of the pool examples `indices`."""
        text = from_marker(question, self.marker)
        if text not in self._query_vectors:
            self.embed_queries([question])
        return self.vectors[list(indices)] @ self._query_vectors[text]


@dataclass(frozen=True)
class Query:
    """A query as selectors see it: the example, its question, and the random stream that is its own (drawn
    from the run's seed and the example's id, so it gets the same shots whatever else is asked, in any order)."""

    example: Example
    question: str
    seed: int

    def rng(self, purpose: str = "") -> random.Random:
        return random.Random(f"{self.seed}:{self.example.id}{purpose}")


class Selector(ABC):
    """Chooses a query's shots among its candidates."""

    takes_k = True  # False: the selector names its shots itself, whatever k says
    compares = False  # True: it compares the query's text with the pool's (embeddings)

    def bind(self, pool: Pool) -> None:  # noqa: B027 - most selectors need nothing of the pool up front
        """Check the selector against its pool before any query is asked."""

    @abstractmethod
    def choose(self, pool: Pool, query: Query, candidates: list[int], k: int) -> list[int]:
        """At most `k` of `candidates` (pool indices), the most wanted first."""


class RandomShots(Selector):
    """k drawn at random from the query's own stream: the baseline every other strategy must beat."""

    def choose(self, pool: Pool, query: Query, candidates: list[int], k: int) -> list[int]:
        return query.rng().sample(candidates, min(k, len(candidates)))


class NearestShots(Selector):
    """The k nearest to the query by embedding (KATE: Liu et al. 2022), nearest first; ties in pool order."""

    compares = True

    def choose(self, pool: Pool, query: Query, candidates: list[int], k: int) -> list[int]:
        order = np.argsort(-pool.similarity(query.question, candidates), kind="stable")
        return [candidates[j] for j in order[:k]]


class MmrShots(Selector):
    """Maximal marginal relevance: each next shot maximises `lam` x its similarity to the query minus (1 - `lam`)
    x its greatest similarity to a shot already chosen, so near-copies of one shot do not fill the prompt.
    `lam` 1 is NearestShots."""

    compares = True

    def __init__(self, lam: float):
        self.lam = lam

    def choose(self, pool: Pool, query: Query, candidates: list[int], k: int) -> list[int]:
        relevance = pool.similarity(query.question, candidates)
        vectors = pool.vectors[candidates]
        closest = np.zeros(len(candidates))  # each candidate's greatest similarity to those chosen
        left = np.ones(len(candidates), dtype=bool)
        chosen: list[int] = []
        for _ in range(min(k, len(candidates))):
            score = np.where(left, self.lam * relevance - (1 - self.lam) * closest, -np.inf)
            j = int(np.argmax(score))
            chosen.append(j)
            left[j] = False
            closest = np.maximum(closest, vectors @ vectors[j])
        return [candidates[j] for j in chosen]


class DiverseShots(Selector):
    """One set of shots for every query, chosen once per group to cover the pool (vote-k); a query that is
    itself among them gets the next in vote-k's order instead. Its neighbour graph compares every pair of a
    group's examples: seconds for thousands, far longer for a pool of 50,000 without `same`."""

    compares = True

    def __init__(self) -> None:
        self._orders: dict[Hashable, _VoteK] = {}

    def choose(self, pool: Pool, query: Query, candidates: list[int], k: int) -> list[int]:
        group = pool.group(query.example)
        if group not in self._orders:
            members = pool.groups.get(group, [])
            self._orders[group] = _VoteK(members, pool.vectors[members])
        allowed = set(candidates)
        excluded = len(pool.groups.get(group, [])) - len(allowed)  # the query itself, where it is in the pool
        return [i for i in self._orders[group].first(k + excluded) if i in allowed][:k]


class BalancedShots(Selector):
    """As many shots of each label as k allows (labels taken in turn, each label's shots in random order), so
    the prompt does not teach the model one label: a classification task's shots."""

    def __init__(self, label: str | None):
        self.label = label  # a metadata field; None: the answer is the label

    def bind(self, pool: Pool) -> None:
        self._labels = self.labels(pool)

    def labels(self, pool: Pool) -> list[str]:
        """Each pool example's label; RecordError naming the first that has none."""
        if self.label is None:
            return [answer.strip() for answer in pool.answers]
        found = [ex.meta(self.label) for ex in pool.examples]
        if missing := [ex for ex, value in zip(pool.examples, found, strict=True) if value is None]:
            raise RecordError(f"{missing[0].id}: has no {self.label!r} field, the label balanced shots are drawn by")
        return [str(value) for value in found]

    def choose(self, pool: Pool, query: Query, candidates: list[int], k: int) -> list[int]:
        by_label: dict[str, list[int]] = defaultdict(list)
        for i in candidates:
            by_label[self._labels[i]].append(i)
        rng = query.rng()
        queues = [rng.sample(members, len(members)) for _, members in sorted(by_label.items())]
        chosen: list[int] = []
        while len(chosen) < k and any(queues):
            chosen += [queue.pop(0) for queue in queues if queue][: k - len(chosen)]
        return chosen


class FixedShots(Selector):
    """The shots a person named, in the order named (less the query itself)."""

    takes_k = False

    def __init__(self, ids: Sequence[str]):
        self.ids = list(ids)

    def bind(self, pool: Pool) -> None:
        """Find the named shots by the pool's ids (FILE:INDEX), or by the records' own `id` field."""
        by_id = {str(ex.meta("id")): i for i, ex in enumerate(pool.examples) if ex.meta("id") is not None}
        by_id.update((ex.id, i) for i, ex in enumerate(pool.examples))
        if missing := [i for i in self.ids if i not in by_id]:
            source = pool.examples[0].metadata.get("source", "the pool") if pool.examples else "the pool"
            known = ", ".join(ex.id for ex in pool.examples[:3])
            raise DataError(source, None, f"holds no example with id {missing[0]!r} (its ids are such as {known})")
        self.indices = [by_id[i] for i in self.ids]

    def choose(self, pool: Pool, query: Query, candidates: list[int], k: int) -> list[int]:
        allowed = set(candidates)
        return [i for i in self.indices if i in allowed]


class _VoteK:
    """Vote-k's greedy order over one group, extended only as far as queries need it."""

    def __init__(self, members: list[int], vectors: np.ndarray):
        self.members = members
        n = len(members)
        degree = min(VOTE_NEIGHBOURS, n - 1)
        self.neighbours = np.zeros((n, max(degree, 0)), dtype=np.int64)
        for lo in range(0, n, _BLOCK):
            sims = vectors[lo : lo + _BLOCK] @ vectors.T
            sims[np.arange(len(sims)), np.arange(lo, lo + len(sims))] = -np.inf  # no example votes for itself
            if degree > 0:
                self.neighbours[lo : lo + len(sims)] = np.argpartition(-sims, degree - 1, axis=1)[:, :degree]
        self.covered = np.zeros(n)  # per voter: how many of its neighbours are chosen
        self.chosen = np.zeros(n, dtype=bool)
        self.order: list[int] = []

    def first(self, m: int) -> list[int]:
        """The first `m` of vote-k's order, as pool indices."""
        while len(self.order) < min(m, len(self.members)):
            weight = np.where(self.chosen, 0.0, VOTE_DISCOUNT**-self.covered)
            votes = np.bincount(self.neighbours.ravel(), np.repeat(weight, self.neighbours.shape[1]), len(self.members))
            votes[self.chosen] = -np.inf
            best = int(np.argmax(votes))
            self.chosen[best] = True
            self.covered += (self.neighbours == best).any(axis=1)
            self.order.append(best)
        return [self.members[j] for j in self.order[:m]]


def _key(value: Any) -> Hashable:
    return value if isinstance(value, Hashable) else repr(value)
