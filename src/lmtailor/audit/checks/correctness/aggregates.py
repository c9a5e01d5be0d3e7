"""Aggregates of a list of numbers: sum, product, average, median."""

from __future__ import annotations

import math
import re

from lmtailor.audit.checks.correctness.numbers import LIST_NUMBER, NUM, list_numbers, number_list
from lmtailor.audit.checks.correctness.task import Task

_AGG = re.compile(
    r"\b(sum|total|product|average|mean|median)\s+(?:value\s+)?of\b|"
    r"\b(add\s+up|add|multiply|average|sum)\s+(?:together\s+)?(?:all\s+)?(?:the\s+|these\s+)?"
    r"(?:following|given|numbers|values|list)\b|"
    r"\b(?:calculate|compute|find|determine|what\s+is|output|give)\s+(?:the\s+)?(sum|average|median|mean|total)\b",
    re.I,
)
_AGG_BLOCKERS = re.compile(
    r"\b(weighted|squares?|squared|cubes?|even|odd|primes?|first|last|excluding|except|reciprocals?|multiples?|"
    r"between|from\s+\d|to\s+\d|digits?|consecutive|integers\s+from|series|sequence|rolls?|dice|probability|"
    r"deviation|variance|mode|range|weights?|each|per|interest|rate|percent|percentage|column|row|table|"
    r"code|program|function|write|algorithm|matrix|vector|fractions?|ratio|half|double|times|maximum|minimum|max|"
    r"min|largest|smallest|subsequence|subarray|adjacent|missing)\b|%",
    re.I,
)
_INLINE_LIST = re.compile(
    rf"(?:\b(?:of|are|is|numbers|values)\b:?|:)\s*[(\[{{]?\s*({NUM}(?:\s*(?:,|;|and|&)\s*(?:and\s+)?{NUM})+)"
)


def solve(instruction: str, inp: str) -> Task | None:
    m = _AGG.search(instruction)
    if not m or _AGG_BLOCKERS.search(instruction):
        return None
    op = (m.group(1) or m.group(2) or m.group(3)).lower().split()[-1]
    op = {"total": "sum", "up": "sum", "add": "sum", "multiply": "product", "average": "mean"}.get(op, op)
    inline = _INLINE_LIST.search(instruction, m.start())
    if inline:
        values = list_numbers(inline.group(1))
        others = list_numbers(instruction.rstrip("."))
        # "the average of these 5 numbers: 2, 4, 10, 11, 13" also states how many there are.
        if (
            inp.strip()
            or len(others) not in (len(values), len(values) + 1)
            or (len(others) > len(values) and len(values) not in others)
        ):
            return None
    elif inp.strip() and not LIST_NUMBER.search(instruction):
        values = number_list(inp.strip()) or []
    else:
        return None
    if len(values) < 2:
        return None
    if op == "sum":
        expected = math.fsum(values)
    elif op == "product":
        expected = math.prod(values)
    elif op == "mean":
        expected = math.fsum(values) / len(values)
    else:
        s = sorted(values)
        mid = len(s) // 2
        expected = s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
    shown = ", ".join(f"{v:g}" for v in values)
    return Task(op if op != "mean" else "average", f"{op} of {shown}", [expected])
