"""Algebra: one linear equation in one variable, or an expression evaluated at given values."""

from __future__ import annotations

import re

from lmtailor.audit.checks.correctness.arithmetic import evaluate
from lmtailor.audit.checks.correctness.task import Task

_SPAN = re.compile(r"(?:(?<![A-Za-z])[A-Za-z](?![A-Za-z'’])|\d+(?:\.\d+)?|[-+*/^()=×÷−\s])+")
_ASSIGN = re.compile(r"(?<![\w^])([A-Za-z])\s*=\s*(-?\d+(?:\.\d+)?)(?![\w.]|\s*[-+*/^(]\s*[\w(])")
_ALGEBRA_BLOCKERS = re.compile(
    r"\b(derivative|integral|roots?|zeros?|intercepts?|slope|quadratic|factor|factori[sz]e|simplify|expand|"
    r"inequality|graph|system|variables\s+used|valid|code|program|function\s+in|python|explain\s+how|describe|"
    r"rewrite|convert|express|word\s+problem|create|write|generate|example|true|false|inverse)\b|[<>≤≥]",
    re.I,
)


def _python_math(expr: str) -> str:
    """'4x + 3', '2(x+1)', 'x^2' in the Python the evaluator reads; variables stay as letters."""
    expr = expr.replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**")
    expr = re.sub(r"([A-Za-z])(\d)", r"\1**\2", expr)  # "3x2" is 3x²
    expr = re.sub(r"(\d|\))\s*(?=[A-Za-z(])", r"\1*", expr)
    return re.sub(r"([A-Za-z])\s*(?=[\d(])", r"\1*", expr)


def _at(expr: str, values: dict[str, float]) -> float | None:
    for name, v in values.items():
        expr = re.sub(rf"(?<![A-Za-z]){name}(?![A-Za-z])", f"({v!r})", expr)
    return None if re.search(r"[A-Za-z]", expr) else evaluate(expr)


def solve(instruction: str, inp: str) -> Task | None:
    text = f"{instruction}\n{inp}"
    if "=" not in text or _ALGEBRA_BLOCKERS.search(instruction):
        return None
    spans = [m.group(0).strip() for m in _SPAN.finditer(text)]
    spans = [re.sub(r"^(?:[aAI]\s+)+|\s+[aAI]$", "", sp) for sp in spans]
    maths = [sp for sp in spans if re.search(r"\d", sp) and re.search(r"[A-Za-z]", sp) and re.search(r"[-+*/^=×÷]", sp)]
    assigned = {k.lower(): float(v) for k, v in _ASSIGN.findall(text)}
    exprs = [
        sp for sp in maths if not _ASSIGN.fullmatch(sp) and not re.fullmatch(r"(?:[A-Za-z]\s*=\s*-?[\d.]+\s*)+", sp)
    ]
    if len(exprs) != 1:
        return None
    expr = exprs[0].lower()
    names = set(re.findall(r"(?<![a-z])[a-z](?![a-z])", expr))
    if expr.count("=") == 1:
        left, right = (part.strip() for part in expr.split("="))
        if re.fullmatch(r"[a-z]", left) and left not in assigned and assigned and names - {left} <= set(assigned):
            expr, names = right, names - {left}  # "y = x^2 - 2x + 1 when x = 2"
        elif len(names) == 1 and not assigned:
            (var,) = names
            f = [_at(_python_math(f"({left})-({right})"), {var: float(x)}) for x in (0, 1, 2)]
            if any(v is None for v in f):
                return None
            slope = f[1] - f[0]  # type: ignore[operator]
            if not slope or abs((f[2] - f[1]) - slope) > 1e-9 * max(1.0, abs(slope)):  # type: ignore[operator]
                return None
            return Task("equation", exprs[0], [-f[0] / slope])  # type: ignore[operator]
        else:
            return None
    if "=" in expr or not names or names != set(assigned) & names or not names <= set(assigned):
        return None
    v = _at(_python_math(expr), {n: assigned[n] for n in names})
    return (
        Task("substitution", f"{exprs[0]} with " + ", ".join(f"{n}={assigned[n]:g}" for n in sorted(names)), [v])
        if v is not None
        else None
    )
