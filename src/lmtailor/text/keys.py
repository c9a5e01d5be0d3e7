"""Content keys: an exact-duplicate fingerprint and word n-gram hashes, shared by dedup, decontamination and the
audit."""

from __future__ import annotations

import hashlib
import re

import xxhash


def fingerprint(fields: list[str]) -> bytes:
    """Content key: each field casefolded with whitespace collapsed, so 'Hello  World' and 'hello world' collide.

    Fields are folded one by one and joined with NUL, which no whitespace rule can swallow.
    """
    folded = "\x00".join(" ".join(f.casefold().split()) for f in fields)
    return hashlib.blake2b(folded.encode(), digest_size=16).digest()


_WORD = re.compile(r"\w+")


def ngram_keys(text: str, n: int) -> set[int]:
    """Hashes of the text's lower-cased word n-grams (or of its whole word sequence when shorter)."""
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {xxhash.xxh3_64_intdigest(" ".join(words).encode())} if words else set()
    return {xxhash.xxh3_64_intdigest(" ".join(words[i : i + n]).encode()) for i in range(len(words) - n + 1)}
