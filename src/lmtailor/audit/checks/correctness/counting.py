"""Counting the words, letters, vowels or consonants of a given text, or one letter's occurrences."""

from __future__ import annotations

import re

from lmtailor.audit.checks.correctness.task import Task

_COUNT = re.compile(
    r"\b(?:how\s+many|count\s+(?:the\s+)?(?:total\s+)?(?:number\s+of\s+)?|(?:total\s+)?number\s+of|word\s+count)\s*"
    r"(words|letters|characters|vowels|consonants)\b",
    re.I,
)
_COUNT_LETTER = re.compile(
    r"\bhow\s+many\s+times\s+(?:does\s+)?(?:the\s+)?(?:letter|character)\s+['\"“‘]?([a-z])['\"”’]?\s+(?:appear|occur)|"
    r"\b(?:count|number\s+of)\s+(?:the\s+)?(?:occurrences?|instances?|times)\s+of\s+(?:the\s+)?(?:letter|character)\s+"
    r"['\"“‘]?([a-z])['\"”’]?",
    re.I,
)
_QUOTED = re.compile(r"\"([^\"]{2,})\"|“([^”]{2,})”|(?<!\w)'([^']{2,})'(?!\w)")
_COUNT_BLOCKERS = re.compile(
    r"\b(containing|contain|that|which|with|start|starting|begin|beginning|end|ending|unique|distinct|different|"
    r"same|longest|shortest|more\s+than|less\s+than|at\s+least|each|per|syllables?|"
    r"code|program|function|algorithm|write|script|common|between|three-letter|repeated|capital|upper|lower|"
    r"used|needed|can\s+be|could|should|would|minimum|maximum|limit|only|exactly|add|remove|rewrite|generate)\b",
    re.I,
)
_VOWELS = set("aeiouAEIOU")


def _counts(kind: str, text: str, letter: str | None) -> set[int]:
    """Every reasonable reading of the count: with or without punctuation, spaces, y as a vowel."""
    if letter:
        return {text.lower().count(letter.lower()), text.count(letter)}
    letters = [c for c in text if c.isalpha()]
    vowels = sum(c in _VOWELS for c in letters)
    ys = sum(c in "yY" for c in letters)
    if kind == "words":
        return {
            len(text.split()),
            len(re.findall(r"[A-Za-z0-9]+(?:['’-][A-Za-z0-9]+)*", text)),
            len(re.findall(r"\w+", text)),
            len(re.findall(r"[A-Za-z]+(?:['’-][A-Za-z]+)*", text)),
        }
    if kind in ("letters", "characters"):
        stripped = text.strip()
        return {
            len(letters),
            len(stripped),
            len(stripped.rstrip(".!?")),
            len(re.sub(r"\s", "", stripped)),
            len(re.sub(r"[\s\W]", "", stripped)),
            sum(c.isalnum() for c in stripped),
        }
    if kind == "vowels":
        return {vowels, vowels + ys}
    return {len(letters) - vowels, len(letters) - vowels - ys}


def solve(instruction: str, inp: str) -> Task | None:
    m, lm = _COUNT.search(instruction), _COUNT_LETTER.search(instruction)
    hit = m or lm
    if hit is None or len(_COUNT.findall(instruction)) > 1:
        return None
    rest = instruction[hit.end() :]
    if _COUNT_BLOCKERS.search(instruction.replace(hit.group(0), "")):
        return None
    quoted = [q for g in _QUOTED.findall(rest) for q in g if q]
    if len(quoted) == 1:
        text = quoted[0]
    elif not quoted and inp.strip() and len(inp) < 2000:
        text = re.sub(
            r"^(?:sentence|text|string|word|phrase|input|passage|paragraph)\s*[:=]\s*", "", inp.strip(), flags=re.I
        )
        if q := re.fullmatch(r"[\"“'](.+)[\"”']", text, re.S):
            text = q.group(1)
    elif not quoted and (c := re.search(r":\s*(.{2,})$", rest, re.S)):
        text = c.group(1).strip()
    else:
        return None
    letter = lm and (lm.group(1) or lm.group(2))
    kind = "letter" if letter else m.group(1).lower()  # type: ignore[union-attr]
    expected = sorted(_counts(kind, text, letter))
    what = f"'{letter}'" if letter else kind
    return Task("counting", f"number of {what} in {text[:120]!r}", [float(x) for x in expected])
