"""ROUGE-L novelty: is a new text a near copy of one already kept? (Self-instruct's rule: F >= 0.7 is a copy.)

rouge-score scores a pair in pure Python in O(m·n), so checking thousands of candidates against thousands of
kept texts pair by pair takes minutes. ROUGE-L F is 2·LCS/(m+n), and a common subsequence can use each
token no more often than both texts hold it, so the shared bag of tokens bounds the score from above. One
vectorised pass computes that bound against every kept text; rouge-score then scores only the few texts whose
bound reaches the threshold. The answers are exactly rouge-score's.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"\w+")


def folded(text: str) -> str:
    """Case, punctuation and whitespace folded away: two texts equal here are one text."""
    return " ".join(_WORD.findall(text.casefold()))


@dataclass(frozen=True, slots=True)
class Match:
    key: str
    score: float  # ROUGE-L F; 1.0 for texts equal once folded, in any script
    exact: bool = False

    def describe(self, limit: float) -> str:
        if self.exact:
            return f"the same text as {self.key} once case, punctuation and spacing are folded"
        return f"ROUGE-L {self.score:.2f} with {self.key} (limit {limit})"


class RougeIndex:
    """Texts kept so far; `closest` finds the kept text most like a new one, when it reaches `threshold`."""

    def __init__(self, threshold: float = 0.7):
        from rouge_score import rouge_scorer, tokenizers  # imports nltk: seconds, paid only when used

        self.threshold = threshold
        self._tokenizer = tokenizers.DefaultTokenizer(use_stemmer=False)
        self._scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False, tokenizer=self._tokenizer)
        self._vocab: dict[str, int] = {}
        self._keys: list[str] = []
        self._folded: dict[str, str] = {}  # exact copies, in scripts rouge-score's tokens leave out too
        self._texts: list[str] = []
        self._lengths: list[int] = []
        # One row per (kept text, distinct token): which text, which token, how often. Grown by doubling.
        self._entry = np.zeros(1024, dtype=np.int32)
        self._token = np.zeros(1024, dtype=np.int32)
        self._count = np.zeros(1024, dtype=np.float32)
        self._rows = 0

    def __len__(self) -> int:
        return len(self._keys)

    def tokens(self, text: str) -> list[str]:
        """rouge-score's tokens: lower-cased ASCII letters and digits; other characters separate tokens."""
        return self._tokenizer.tokenize(text)

    def add(self, key: str, text: str) -> None:
        bag = Counter(self.tokens(text))
        n = len(bag)
        while self._rows + n > len(self._entry):
            for name in ("_entry", "_token", "_count"):
                old = getattr(self, name)
                setattr(self, name, np.concatenate([old, np.zeros_like(old)]))
        rows = slice(self._rows, self._rows + n)
        self._entry[rows] = len(self._keys)
        self._token[rows] = [self._vocab.setdefault(t, len(self._vocab)) for t in bag]
        self._count[rows] = list(bag.values())
        self._rows += n
        self._folded.setdefault(folded(text), key)
        self._keys.append(key)
        self._texts.append(text)
        self._lengths.append(sum(bag.values()))

    def closest(self, text: str) -> Match | None:
        """The kept text with the highest ROUGE-L F against `text`, if that F is at least the threshold."""
        key = folded(text)
        if key and (twin := self._folded.get(key)) is not None:
            return Match(twin, 1.0, exact=True)
        bag = Counter(self.tokens(text))
        if not bag or not self._keys:
            return None
        wanted = np.zeros(len(self._vocab) + 1, dtype=np.float32)  # the last slot stands for unseen tokens
        for token, count in bag.items():
            wanted[self._vocab.get(token, len(self._vocab))] = count
        rows = slice(0, self._rows)
        shared = np.minimum(self._count[rows], wanted[self._token[rows]])
        overlap = np.bincount(self._entry[rows], weights=shared, minlength=len(self._keys))
        bound = 2 * overlap / (np.asarray(self._lengths) + sum(bag.values()))
        best: Match | None = None
        for j in np.flatnonzero(bound >= self.threshold - 1e-9).tolist():
            score = self._scorer.score(self._texts[j], text)["rougeL"].fmeasure
            if score >= self.threshold and (best is None or score > best.score):
                best = Match(self._keys[j], score)
        return best
