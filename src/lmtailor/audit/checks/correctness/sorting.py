"""Sorting numbers and alphabetising words, and whether an answer holds the items in the right order."""

from __future__ import annotations

import re

from lmtailor.audit.checks.correctness.numbers import number_list, numbers
from lmtailor.audit.checks.correctness.task import Task

_SORT_VERB = re.compile(r"\b(sort|arrange|order|rank|put|rearrange|organi[sz]e|list|alphabeti[sz]e|reorder)\b", re.I)
_NUMERIC_ORDER = re.compile(
    r"\b(ascending|descending|increasing|decreasing|numerical|smallest\s+to\s+(?:largest|biggest|greatest)|"
    r"(?:largest|biggest|greatest)\s+to\s+smallest|lowest\s+to\s+highest|highest\s+to\s+lowest|"
    r"least\s+to\s+greatest|greatest\s+to\s+least)\b",
    re.I,
)
_DESCENDING = re.compile(
    r"(?<!non-)(?<!non )\b(descending|decreasing|largest\s+to|biggest\s+to|greatest\s+to|highest\s+to|reverse|"
    r"z\s*(?:to|-)\s*a)\b|\bnon[- ]?increasing\b",
    re.I,
)
_ALPHA_ORDER = re.compile(
    r"\b(alphabetical(?:ly)?|alphabeti[sz]e|lexicographic(?:al)?(?:ly)?|a\s*(?:to|-)\s*z)\b", re.I
)
_SORT_BLOCKERS = re.compile(
    r"\b(by\s+(?!alphabet|ascending|descending|increasing|decreasing|(?:their\s+)?(?:value|name|first\s+letter)|"
    r"numerical|the\s+first\s+letter)\w+|length|size|population|price|date|age|popularity|frequency|last|top|"
    r"code|program|function|algorithm|python|write|reverse\s+alphabetical|vowels?|second|syllables?|"
    r"remove|delete|duplicates?|unique|group|categori[sz]e)\b",
    re.I,
)
_ITEM_STRIP = re.compile(r"^\s*(?:\d+[.)]\s+|[-*•]\s*|and\s+)|[\s.;:!?\"'“”‘’`()\[\]{}]+$|^[\s\"'“”‘’`(\[{]+")


def _items(text: str) -> list[str]:
    """Items of a written list: comma-, semicolon- or line-separated, else space-separated words."""
    text = text.strip()
    if "," in text or ";" in text:
        parts = re.split(r"\s*[,;]\s*(?:and\s+)?|\s+and\s+(?=[^,]*$)", text)
    elif "\n" in text:
        parts = text.splitlines()
    else:
        parts = text.split()
    return [p for p in (_ITEM_STRIP.sub("", x).strip() for x in parts) if p]


def _word_key(s: str) -> str:
    return re.sub(r"[^\w]", "", s.casefold())


def solve(instruction: str, inp: str) -> Task | None:
    numeric, alpha = _NUMERIC_ORDER.search(instruction), _ALPHA_ORDER.search(instruction)
    if not (numeric or alpha) or not _SORT_VERB.search(instruction) or _SORT_BLOCKERS.search(instruction):
        return None
    source = inp
    if not source.strip():
        m = re.search(r":\s*(.+)$", instruction, re.S)
        if not m:
            return None
        source = m.group(1)
    descending = bool(_DESCENDING.search(instruction))
    if numeric and (values := number_list(source.strip().rstrip("."))):
        order = sorted(values, reverse=descending)
        shown = [f"{v:g}" for v in values]
        return Task("sorting", "sort " + ", ".join(shown), items=shown, order=[f"{v:g}" for v in order])
    if alpha:
        items = _items(source)
        if len(items) < 3 or any(len(i.split()) > 4 or not re.search(r"[A-Za-z]", i) for i in items):
            return None
        return Task("alphabetical", "alphabetise " + ", ".join(items), items=items, descending=descending)
    return None


def judge(task: Task, output: str) -> tuple[str, str] | None:
    """(expected, found) when the answer holds exactly the items in a wrong order."""
    assert task.items is not None
    if task.order is not None:
        found = [n for n in numbers(output) if not n.exact]
        if len(found) < len(task.items):
            return None
        tail = [f"{n.value:g}" for n in found[-len(task.items) :]]
        if sorted(tail) != sorted(task.items) or tail == task.order:
            return None
        return ", ".join(task.order), ", ".join(tail)
    tail = output.strip().split("\n\n")[-1]
    got = _items(tail.rsplit(":", 1)[-1] if tail.count(":") == 1 and "\n" not in tail else tail)
    got_keys, want_keys = [_word_key(g) for g in got], [_word_key(i) for i in task.items]
    if sorted(got_keys) != sorted(want_keys) or len(set(want_keys)) != len(want_keys):
        return None
    reverse = task.descending
    accepted = [
        sorted(want_keys, reverse=reverse),
        [_word_key(i) for i in sorted(task.items, key=lambda s: s.casefold()[:1], reverse=reverse)],
        [_word_key(i) for i in sorted(task.items, reverse=reverse)],
        [
            _word_key(i)
            for i in sorted(task.items, key=lambda s: re.sub(r"^(the|a|an)\s+", "", s.casefold()), reverse=reverse)
        ],
    ]
    if got_keys in accepted:
        return None
    by_key = dict(zip(want_keys, task.items, strict=True))
    return ", ".join(by_key[k] for k in accepted[0]), ", ".join(got)
