"""Is N prime: computed, and read from a yes/no answer."""

from __future__ import annotations

import math
import re

from lmtailor.audit.checks.correctness.task import Task

_IS_PRIME = re.compile(
    r"^\s*(?:is|determine\s+(?:if|whether))\s+(?:the\s+number\s+)?(\d{1,12})\s+(?:is\s+)?(?:a\s+)?prime"
    r"(?:\s+number)?\s*\??\s*$",
    re.I,
)


def solve(instruction: str, inp: str) -> Task | None:
    prime = _IS_PRIME.match(instruction)
    if prime is None or inp.strip():
        return None
    return Task("primality", prime.group(0).strip(), [1.0 if _is_prime(int(prime.group(1))) else 0.0])


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


def judge(task: Task, output: str) -> tuple[str, str] | None:
    """(expected, found) when the answer's yes or no disagrees with the computed primality."""
    says = _yes_no(output)
    if says is None or says == bool(task.expected[0]):
        return None
    return ("prime" if task.expected[0] else "not prime"), ("prime" if says else "not prime")


def _yes_no(output: str) -> bool | None:
    text = output.strip().lower()
    negated = re.search(r"\bnot\s+(a\s+)?prime\b|\bcomposite\b", text)
    if (re.match(r"(yes|true)\b", text) or re.search(r"\bis\s+(a\s+)?prime\b", text)) and not negated:
        return True
    if re.match(r"(no|false)\b", text) or re.search(r"\bnot\s+(a\s+)?prime\b|\bis\s+(a\s+)?composite\b", text):
        return False
    return None
