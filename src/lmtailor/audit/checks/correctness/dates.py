"""Dates: the weekday of a date, and the days between two dates."""

from __future__ import annotations

import re
from datetime import date

from lmtailor.audit.checks.correctness.task import Task

_MONTHS = {
    m: i
    for i, m in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ],
        1,
    )
}
_MONTHS |= {m[:3]: i for m, i in list(_MONTHS.items())} | {"sept": 9}
_MONTH_RE = r"(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DATE_PATTERNS = [
    (re.compile(rf"\b{_MONTH_RE}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I), "mdy"),
    (re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_RE},?\s+(\d{{4}})\b", re.I), "dmy"),
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), "iso"),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b"), "slash"),
]
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_RE = re.compile(r"\b(" + "|".join(_WEEKDAYS) + r")\b", re.I)


def _safe_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def dates(text: str) -> list[tuple[int, list[date]]]:
    """(position, readings) of each full date in `text`; a numeric d/m/y date may read two ways."""
    found: list[tuple[int, list[date]]] = []
    for pattern, form in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            g = m.groups()
            if form == "mdy":
                readings = [_safe_date(int(g[2]), _MONTHS[g[0].lower()], int(g[1]))]
            elif form == "dmy":
                readings = [_safe_date(int(g[2]), _MONTHS[g[1].lower()], int(g[0]))]
            elif form == "iso":
                readings = [_safe_date(int(g[0]), int(g[1]), int(g[2]))]
            else:
                readings = [_safe_date(int(g[2]), int(g[0]), int(g[1])), _safe_date(int(g[2]), int(g[1]), int(g[0]))]
            valid = list(dict.fromkeys(r for r in readings if r is not None))
            if valid and not any(abs(p - m.start()) < 3 for p, _ in found):
                found.append((m.start(), valid))
    return sorted(found, key=lambda x: x[0])


def solve(instruction: str, inp: str) -> Task | None:
    text = f"{instruction}\n{inp}"
    if "day" not in instruction.lower() or re.search(
        r"\b(code|program|function|algorithm|script|write|business|working|weekdays?)\b", instruction, re.I
    ):
        return None
    if re.search(r"\bday\s+of\s+the\s+week\b|\bwhat\s+day\s+(?:is|was|will)\b|\bwhich\s+day\b", instruction, re.I):
        readings = {tuple(r) for _, r in dates(text)}
        if len(readings) == 1 and len(r := readings.pop()) == 1:
            return Task("date", f"weekday of {r[0].isoformat()}", [], weekday=_WEEKDAYS[r[0].weekday()])
        return None
    if re.search(
        r"\b(?:number\s+of|how\s+many|amount\s+of|count)\s+(?:calendar\s+)?days\b|\bdays\s+between\b", instruction, re.I
    ):
        found = dates(text)
        if len(found) == 2 and len(found[0][1]) == 1 and len(found[1][1]) == 1:
            a, b = found[0][1][0], found[1][1][0]
            span = abs((b - a).days)
            return Task("date", f"days between {a.isoformat()} and {b.isoformat()}", [float(span), float(span + 1)])
    return None


def judge(task: Task, output: str) -> tuple[str, str] | None:
    """(expected, found) when the answer names one weekday and it is the wrong one."""
    assert task.weekday is not None
    named = {w.lower() for w in _WEEKDAY_RE.findall(output)}
    if len(named) == 1 and task.weekday not in named:
        return task.weekday.title(), named.pop().title()
    return None
