"""Percentages: a share of a whole, what share one number is of another, and percent changes."""

from __future__ import annotations

import re

from lmtailor.audit.checks.correctness.numbers import NUM, parse_number
from lmtailor.audit.checks.correctness.task import Task

_PERCENT_OF = re.compile(
    rf"(?<![\w.])({NUM})\s*(?:%|percent)\s+of\s+(?:a\s+|an\s+|the\s+)?[$€£]?({NUM})(?!\.?\d)", re.I
)
_WHAT_PERCENT = re.compile(
    rf"\bwhat\s+(?:percent|percentage)\s+of\s+[$€£]?({NUM})\s+is\s+[$€£]?({NUM})\b|"
    rf"(?<![\w.])[$€£]?({NUM})\s+is\s+what\s+(?:percent|percentage)\s+of\s+[$€£]?({NUM})\b",
    re.I,
)
_PERCENT_CHANGE = re.compile(
    rf"\bpercent(?:age)?\s+(increase|decrease|change)\b.*?\bfrom\s+[$€£]?({NUM})\s+to\s+[$€£]?({NUM})\b", re.I | re.S
)


def solve(instruction: str, inp: str) -> Task | None:
    text = f"{instruction}\n{inp}"
    if "%" not in text and "percent" not in text.lower():
        return None
    if re.search(r"\b(increase|decrease|discount|tax|tip|interest|off|more|less|after|reduc|rais)", instruction, re.I):
        if m := _PERCENT_CHANGE.search(text):
            a, b = (parse_number(g) for g in m.groups()[1:])
            if a:
                return Task("percentage", m.group(0), [abs(b - a) / a * 100, (b - a) / a * 100])
        return None
    if m := _WHAT_PERCENT.search(text):
        whole, part = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        w, p = parse_number(whole), parse_number(part)
        return Task("percentage", m.group(0), [p / w * 100]) if w else None
    found = list(_PERCENT_OF.finditer(instruction))
    if len(found) == 1 and not inp.strip():
        p, w = (parse_number(g) for g in found[0].groups())
        return Task("percentage", found[0].group(0), [p * w / 100])
    return None
