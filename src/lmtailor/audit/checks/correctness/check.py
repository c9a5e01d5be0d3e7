"""The correctness check: each solver family tries the question in turn, and the answer is judged against
the first one that understands it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

from lmtailor.audit.check import Check, CheckContext
from lmtailor.audit.checks.correctness import (
    aggregates,
    algebra,
    arithmetic,
    counting,
    dates,
    geometry,
    percentages,
    powers,
    primes,
    sorting,
    units,
)
from lmtailor.audit.checks.correctness.numbers import Number, agrees, numbers
from lmtailor.audit.checks.correctness.task import Task
from lmtailor.audit.finding import Finding
from lmtailor.core.records import Example

# The first solver that understands a question takes it, so this order is part of what the check finds.
_SOLVERS: tuple[Callable[[str, str], Task | None], ...] = (
    dates.solve,
    counting.solve,
    sorting.solve,
    units.solve,
    percentages.solve,
    geometry.solve,
    powers.solve,
    aggregates.solve,
    algebra.solve,
    arithmetic.solve,
    primes.solve,
)
# Cheap gate: only instructions that could hold a checkable question reach the solvers.
_GATE = re.compile(
    r"\d|\b(sum|total|product|average|mean|median|how\s+many|count|number\s+of|sort|arrange|order|alphabeti|"
    r"convert|percent|square|cube|factorial|common|prime|days?\b|week|multiply|divide|add|subtract|"
    r"area|perimeter|volume|circumference|hypotenuse)",
    re.I,
)


class Correctness(Check):
    """Recomputes answers that a program can verify and flags those that clearly disagree."""

    check: Literal["correctness"] = "correctness"

    def run(self, examples: Sequence[Example], ctx: CheckContext) -> Iterator[Finding]:
        checked: dict[str, int] = {}
        wrong: dict[str, int] = {}
        for ex in examples:
            instruction, output = ex.field("instruction"), ex.field("output")
            if not output.strip() or not _GATE.search(instruction):
                continue
            task = solve(instruction, ex.input)
            if task is None:
                continue
            checked[task.kind] = checked.get(task.kind, 0) + 1
            if verdict := judge(task, output):
                wrong[task.kind] = wrong.get(task.kind, 0) + 1
                expected, found = verdict
                yield ctx.finding(
                    ex,
                    "high",
                    1.0,
                    f"wrong {task.kind.replace('_', ' ')} answer: expected {expected}, the answer says {found}",
                    task=task.kind,
                    question=task.question,
                    expected=expected,
                    found=found,
                )
        ctx.metrics["checked"] = dict(sorted(checked.items()))
        ctx.metrics["wrong"] = dict(sorted(wrong.items()))


def solve(instruction: str, inp: str) -> Task | None:
    """The first solver that understands the question, or None."""
    for solver in _SOLVERS:
        if task := solver(instruction, inp):
            return task
    return None


def _fmt(v: float) -> str:
    return f"{v:.6g}" if abs(v) < 1e15 else f"{v:.3e}"


def judge(task: Task, output: str) -> tuple[str, str] | None:
    """(expected, found) when the answer clearly disagrees with the computed result, else None."""
    if task.items is not None:
        return sorting.judge(task, output)
    if task.weekday is not None:
        return dates.judge(task, output)
    if task.kind == "primality":
        return primes.judge(task, output)
    found = numbers(output)
    if not found:
        return None
    if any(agrees(e, n, task.rel_tol) for e in task.expected for n in found):
        return None
    total = units.compound(output, *task.units) if task.units else None
    if total is not None and any(abs(total - e) <= task.rel_tol * abs(e) for e in task.expected):
        return None
    answer = _final_number(output, found)
    return " or ".join(dict.fromkeys(_fmt(e) for e in task.expected[:2])), answer.text


_FINAL = re.compile(
    r"(?:=|\bis\b|\bequals?\b|\bequal\s+to\b|\bare\b|:|\bhas\b|\bcontains\b)\s*"
    r"(?:approximately\s+|about\s+|roughly\s+)?$",
    re.I,
)


def _final_number(output: str, found: list[Number]) -> Number:
    """The number the answer gives as its result: the first one after '=' or 'is', else the last one."""
    for n in found:
        if _FINAL.search(output[: n.at].rstrip(" $€£")):
            return n
    return found[-1]
