"""Powers, roots and factorials of one number, and the GCD or LCM of two."""

from __future__ import annotations

import math
import re

from lmtailor.audit.checks.correctness.numbers import NUM, parse_number
from lmtailor.audit.checks.correctness.task import Task

_POWER = [
    (
        re.compile(rf"\bsquare\s+root\s+of\s+({NUM})(?![\d.]|\s*[+\-*/^x×])", re.I),
        lambda x: math.sqrt(x) if x >= 0 else None,
    ),
    (
        re.compile(rf"\bcube\s+root\s+of\s+({NUM})(?![\d.]|\s*[+\-*/^x×])", re.I),
        lambda x: math.copysign(abs(x) ** (1 / 3), x),
    ),
    (
        re.compile(rf"\b(?:the\s+)?square\s+of\s+({NUM})(?![\d.]|\s*[+\-*/^x×])|(?<![\w.])({NUM})\s+squared\b", re.I),
        lambda x: x * x,
    ),
    (
        re.compile(rf"\b(?:the\s+)?cube\s+of\s+({NUM})(?![\d.]|\s*[+\-*/^x×])|(?<![\w.])({NUM})\s+cubed\b", re.I),
        lambda x: x**3,
    ),
    (
        re.compile(r"\bfactorial\s+of\s+(\d{1,2})\b|(?<![\w.])(\d{1,2})\s+factorial\b", re.I),
        lambda x: float(math.factorial(int(x))),
    ),
]
_GCD = re.compile(
    r"\b(?:greatest\s+common\s+(?:divisor|factor)|highest\s+common\s+factor|gcd|gcf|hcf)\s+(?:of\s+)?"
    r"(?:the\s+numbers\s+)?(\d+)\s*(?:,|and|&)\s*(\d+)(?!\s*,?\s*(?:and\s+)?\d)",
    re.I,
)
_LCM = re.compile(
    r"\b(?:least|lowest|smallest)\s+common\s+multiple\s+(?:of\s+)?(?:the\s+numbers\s+)?(\d+)\s*(?:,|and|&)\s*(\d+)"
    r"(?!\s*,?\s*(?:and\s+)?\d)|\blcm\s+(?:of\s+)?(\d+)\s*(?:,|and|&)\s*(\d+)(?!\s*,?\s*(?:and\s+)?\d)",
    re.I,
)


def solve(instruction: str, inp: str) -> Task | None:
    low = instruction.lower()
    if not any(w in low for w in ("square", "cube", "factorial", "common", "gcd", "gcf", "hcf", "lcm")):
        return None
    if _POWER_BLOCKERS.search(instruction) or inp.strip():
        return None
    hits = [(p, f, m) for p, f in _POWER for m in p.finditer(instruction)]
    if len(hits) == 1 and not _THEN_OPERATOR.match(instruction, hits[0][2].end()):
        _, fn, m = hits[0]
        arg = parse_number(next(g for g in m.groups() if g))
        if abs(arg) > 1e12:
            return None
        v = fn(arg)
        return Task("power_root", m.group(0), [v]) if v is not None else None
    if m := _GCD.search(instruction):
        a, b = (int(g) for g in m.groups())
        return Task("gcd", m.group(0), [float(math.gcd(a, b))])
    if m := _LCM.search(instruction):
        a, b = (int(g) for g in m.groups() if g)
        return Task("lcm", m.group(0), [float(math.lcm(a, b))])
    return None


_POWER_BLOCKERS = re.compile(
    r"\b(python|code|program|function|algorithm|explain|why|how\s+to|formula|area|perimeter|side|sides|length|"
    r"rectangle|triangle|circle|volume|diagonal|square\s+(?:feet|foot|meters?|metres?|miles?|km|cm|inches|units?))\b",
    re.I,
)
_THEN_OPERATOR = re.compile(
    r"\s*(?:[-+*/^x×÷]|(?:divided|multiplied|times|plus|minus|added|subtracted|and|over)\b)", re.I
)
