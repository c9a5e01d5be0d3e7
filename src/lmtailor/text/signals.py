"""Pure text signals shared by curate's filters and audit's checks: garbage characters, repetition, parroting,
language, and instructions that point at context the model cannot see."""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from functools import lru_cache

WORD = re.compile(r"\w+")
_URL = re.compile(r"(https?://|www\.)\S+", re.I)
_THING = (
    r"(article|text|passage|paragraph|sentence|sentences|document|email|e-mail|letter|poem|story|essay|"
    r"report|tweet|review|code|program|function|snippet|table|data|dataset|list|statement|conversation|"
    r"dialogue|excerpt|news|speech|recipe|song|lyrics|quote|input|message|summary|description|script|"
    r"equation|expression|word|words|phrase|string|number|numbers|json|xml|html|csv|query)"
)
_FOLLOWING = re.compile(
    rf"\b(following|provided|below|above|this|these)\s+(\w+\s+){{0,2}}?{_THING}\b|"
    rf"\b{_THING}\s+(below|above|provided)\b",
    re.I,
)
_INLINE = re.compile(r"[:\"“'«\n]\s*\S|[\d=\[(]")
_MEDIA = re.compile(
    r"\b(this|the|attached|following|given|above|below|uploaded|provided)\s+"
    r"(image|images|photo|photos|photograph|picture|pictures|screenshot|diagram|video|audio|"
    r"recording|clip|chart|graph|attachment)\b|\battached\s+(file|document|image|photo|pdf)\b",
    re.I,
)
_MEDIA_INPUT = re.compile(r"^\s*(<(image|img|photo|video|audio)[^>]*>|attached\b|\[(image|photo|video)[^\]]*\])", re.I)
_READ_URL = re.compile(
    r"\b(summari[sz]e|read|watch|visit|open|describe|analy[sz]e|review|explain|listen|"
    r"what does|what is in|based on|from)\b",
    re.I,
)
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”|«[^»]*»|'[^']{3,}'")
_STOPWORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "to",
        "and",
        "is",
        "are",
        "in",
        "for",
        "on",
        "with",
        "that",
        "this",
        "what",
        "how",
        "which",
        "be",
        "as",
        "by",
        "it",
        "from",
        "or",
    ]
)


def unseen_context(instruction: str, inp: str) -> str | None:
    """Why the instruction depends on something absent, or None."""
    if _MEDIA.search(instruction) or _MEDIA_INPUT.search(inp):
        return "refers to an image, audio, video or attached file the model cannot see"
    url = _URL.search(instruction) or _URL.search(inp)
    if url:
        rest = _URL.sub("", f"{instruction} {inp}")
        if _READ_URL.search(instruction) and len(WORD.findall(rest)) < 40:
            return f"asks the model to read {url.group(0)[:80]}, which it cannot open"
    match = _FOLLOWING.search(instruction)
    if match and not inp.strip() and not _INLINE.search(instruction[match.end() :]):
        return f"mentions '{match.group(0).strip()}' but no such content is given"
    return None


def looks_english(text: str) -> bool:
    """Cheap first pass: ordinary English has many of these words; saves a detector call on most records."""
    words = WORD.findall(text.lower())
    return bool(words) and sum(w in _STOPWORDS for w in words) / len(words) >= 0.15


def is_garbage(c: str) -> bool:
    """Characters no reader can use: replacement marks, private-use, unassigned or surrogate code points,
    stray controls, and block elements (redaction bars, broken renderings). Emoji and symbols are text."""
    category = unicodedata.category(c)
    return (
        category in ("Co", "Cn", "Cs")
        or (category == "Cc" and not c.isspace())
        or c == "\ufffd"
        or "\u2580" <= c <= "\u259f"
    )


# is_garbage restricted to ASCII: the controls that are not whitespace (\x1c-\x1f count as whitespace)
_ASCII_GARBAGE = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")


def garbage_ratio(text: str) -> float:
    """Share of the text's characters that are garbage; most answers are ASCII, checked by one regex."""
    if not text:
        return 0.0
    bad = len(_ASCII_GARBAGE.findall(text)) if text.isascii() else sum(map(is_garbage, text))
    return bad / len(text)


def repeated_ngram_ratio(words: list[str], n: int = 6) -> float:
    """Share of word n-gram occurrences that repeat an earlier one.

    Long n-grams over real words (not digits or single letters) single out degenerate loops while
    leaving tables, vectors and numbered plans alone.
    """
    words = [w for w in words if len(w) > 1 and not w.isdigit()]
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def parrots(instruction: str, answer: str) -> bool:
    """The answer is the instruction again, give or take a few words, instead of an answer to it."""
    a, q = WORD.findall(answer.lower()), WORD.findall(instruction.lower())
    if len(a) < 4 or not q or not 0.8 * len(q) <= len(a) <= 1.25 * len(q):
        return False
    return a == q or SequenceMatcher(None, a, q, autojunk=False).ratio() >= 0.92


# Candidates besides the allowed languages: the most written ones. Loading all 75 of lingua's models costs
# ~13 s and lets rare ones (Latin, Esperanto) win on short English lines.
COMMON_LANGUAGES = (
    *("en", "de", "fr", "es", "it", "pt", "nl", "ru", "zh", "ja", "ko", "ar", "hi", "tr", "pl"),
    *("sv", "da", "fi", "nb", "cs", "el", "he", "id", "vi", "th", "uk", "ro", "hu", "fa", "bn"),
)


@lru_cache(maxsize=4)
def _detector(codes: tuple[str, ...]):
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_iso_codes_639_1(*(getattr(IsoCode639_1, c.upper()) for c in codes)).build()


def foreign_language(text: str, allowed: list[str], min_confidence: float) -> str | None:
    """The language `text` is confidently in when that is not an allowed one, else None.

    Short English instructions fool detectors now and then, so only confident calls count.
    """
    text = _QUOTED.sub(" ", text)  # "Translate 'Dónde está…' into English" is an English instruction
    if "en" in allowed and looks_english(text):
        return None
    detector = _detector(tuple(sorted(set(allowed) | set(COMMON_LANGUAGES))))
    best = detector.compute_language_confidence_values(text)[0]
    code = best.language.iso_code_639_1.name.lower()
    if code in allowed or best.value < min_confidence:
        return None
    return f"{best.language.name.title()} ({best.value:.0%} confident)"
