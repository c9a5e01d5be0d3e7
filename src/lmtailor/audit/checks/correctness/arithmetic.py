"""Arithmetic expressions, written ("9 - 4 + 8 x 5") or spoken ("multiply 6 by 7"), evaluated safely."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

from lmtailor.audit.checks.correctness.numbers import NUM, parse_number
from lmtailor.audit.checks.correctness.task import Task

_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_TOKEN = re.compile(r"\s*(?:(\d+(?:,\d{3})*(?:\.\d+)?)|(\*\*|[-+*/×÷^−–()x]))")
_ASKS_VALUE = re.compile(
    r"\b(what\s+is|what's|what\s+does|calculate|compute|evaluate|solve|simplify|work\s+out|how\s+much\s+is|"
    r"find\s+the\s+(?:value|result|answer|sum|product|difference|quotient)|result\s+of|value\s+of|answer\s+to|"
    r"equal|equals|add|multiply|divide|subtract)\b",
    re.I,
)
_MATH_WORDS = re.compile(
    r"\b(calculate|compute|evaluate|solve|result|answer|value|expression|equation|math|arithmetic|sum|product|"
    r"multiplication|addition|subtraction|division|simplify)\b",
    re.I,
)
_THE = r"(?:the\s+)?(?:numbers?\s+)?"
_VERBAL = [
    (
        re.compile(rf"\bmultiply\s+{_THE}({NUM})\s+(?:by|and|with|times)\s+({NUM})(?!\s*(?:,|and\b|\d))", re.I),
        "*",
        False,
    ),
    (re.compile(rf"\bdivide\s+{_THE}({NUM})\s+by\s+({NUM})(?!\s*(?:,|and\b|\d))", re.I), "/", False),
    (re.compile(rf"\badd\s+{_THE}({NUM})\s+(?:and|to|plus|with)\s+({NUM})(?!\s*(?:,|and\b|\d))", re.I), "+", False),
    (re.compile(rf"\bsubtract\s+{_THE}({NUM})\s+from\s+({NUM})(?!\s*(?:,|and\b|\d))", re.I), "-", True),
    (re.compile(rf"\bdifference\s+between\s+{_THE}({NUM})\s+and\s+({NUM})(?!\s*(?:,|and\b|\d))", re.I), "-", False),
]
_WORD_OPS = [
    (re.compile(r"\s+(?:multiplied\s+by|times)\s+", re.I), " * "),
    (re.compile(r"\s+divided\s+by\s+", re.I), " / "),
    (re.compile(r"\s+plus\s+", re.I), " + "),
    (re.compile(r"\s+minus\s+", re.I), " - "),
    (re.compile(r"\s+(?:raised\s+to\s+the\s+power\s+of|to\s+the\s+power\s+of|raised\s+to)\s+", re.I), " ^ "),
]
# Words that make a bare expression mean something else: other bases, code, calculus, ratios, percentages.
_NOT_ARITHMETIC = re.compile(
    r"\b(binary|hex|hexadecimal|octal|base|modulo|mod|remainder|ratio|significant|scientific\s+notation|roman|"
    r"python|code|program|function|derivative|integral|matrix|vector|prime|factors?|percent|percentage|variable|"
    r"equation\s+for|inequality|true\s+or\s+false|correct|incorrect|error|mistake|notation|convert|rewrite|words?|"
    r"digits?|series|sequence|pattern|next|missing|approximately)\b|%|\.\.\.|…|[x×]\s*10\s*\^|\d[eE][+-]?\d",
    re.I,
)
_ALGEBRA = re.compile(r"\d[a-z]\b|\b[a-z]\s*[\^=]|[+\-*/=]\s*[a-z]\b|=\s*[\d(]")


def evaluate(expr: str) -> float | None:
    """Value of a +-*/^ expression of numbers and parentheses; None for anything else or anything huge."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return None

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            v = value(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
                raise ValueError("too large")
            return float(_OPS[type(node.op)](left, right))
        raise ValueError("not arithmetic")

    try:
        result = value(tree.body)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return result if math.isfinite(result) else None


def find_expression(text: str) -> str | None:
    """The one arithmetic expression in `text` (two or more numbers joined by operators), as Python.

    A hyphen or slash between digits with no spaces ("9-11", "24/7", "3/4") is a range, date or fraction
    unless other operators show it is arithmetic; "x" multiplies only between spaces ("25 x 8", not "3x3").
    """
    found: list[str] = []
    consumed = 0
    for start in re.finditer(r"(?<![\w.,/^*+-])(?=[(\d])", text):
        if start.start() < consumed:
            continue
        pos, parts, expect_operand, depth, last = start.start(), [], True, 0, ""
        tight = 0
        while m := _TOKEN.match(text, pos):
            num, op = m.groups()
            if num is not None:
                if not expect_operand:
                    if last != ")":
                        break
                    parts.append("*")
                parts.append(num.replace(",", ""))
                expect_operand, last = False, "num"
            elif op == "(":
                if not expect_operand:
                    parts.append("*")  # 4(2+3)
                parts.append("(")
                depth, expect_operand, last = depth + 1, True, "("
            elif op == ")":
                if expect_operand or depth == 0:
                    break
                parts.append(")")
                depth, last = depth - 1, ")"
            elif op in "-−–" and expect_operand:
                parts.append("-")
                last = "sign"
            else:
                if expect_operand:
                    return None
                if op == "x" and not (m.group(0).startswith(" ") and text[m.end() : m.end() + 1] == " "):
                    break
                if op in "-/−–" and not m.group(0).startswith(" ") and text[m.end() : m.end() + 1] != " ":
                    tight += 1
                parts.append({"×": "*", "x": "*", "÷": "/", "^": "**", "−": "-", "–": "-"}.get(op, op))
                expect_operand, last = True, "op"
            pos = m.end()
        consumed = pos
        while parts and parts[-1] in ("*", "/", "+", "-", "**", "("):
            parts.pop()
        ops = sum(p in ("*", "/", "+", "-", "**") for p in parts[1:])
        if not ops or depth or re.match(r"[a-zA-Z]|\s*=\s*[\w(]", text[pos:]):
            continue
        if tight == ops:
            continue
        found.append("".join(parts))
    if len(found) != 1 or found[0].count("(") != found[0].count(")"):
        return None
    return found[0]


_ARITHMETIC_HINT = re.compile(
    r"\d\s*(?:[-+*/×÷^x−–])\s*[\d(]|\)\s*[-+*/×÷^]|\b(plus|minus|times|multiplied|divided|multiply|divide|add|"
    r"subtract|difference|power)\b",
    re.I,
)


def solve(instruction: str, inp: str) -> Task | None:
    if not _ARITHMETIC_HINT.search(instruction) and not _ARITHMETIC_HINT.search(inp):
        return None
    for pattern, op, swap in _VERBAL:
        if m := pattern.search(instruction):
            a, b = (parse_number(g) for g in m.groups())
            a, b = (b, a) if swap else (a, b)
            v = evaluate(f"({a!r}){op}({b!r})")
            if v is None or _NOT_ARITHMETIC.search(instruction):
                return None
            return Task("arithmetic", m.group(0), [v, -v] if "difference" in m.group(0).lower() else [v])
    if _NOT_ARITHMETIC.search(instruction):
        return None
    source = instruction
    for pattern, sub in _WORD_OPS:
        source = pattern.sub(sub, source)
    worded = source != instruction
    if inp.strip() and re.fullmatch(r"[\d\s.,+\-*/×÷^()−–x=?]+", inp.strip()) and _MATH_WORDS.search(instruction):
        source = inp.strip().rstrip("=? ")
    elif not _ASKS_VALUE.search(instruction) or inp.strip():
        return None
    if _ALGEBRA.search(source.lower()):
        return None
    expr = find_expression(source)
    # "5 plus 10 multiplied by 4" has no agreed precedence when spoken; "8/2(2+2)" none when written.
    if (
        expr is None
        or (worded and re.search(r"[+-]", expr[1:]) and re.search(r"[*/]", expr))
        or re.search(r"/[\d.]+\*\(", expr)
    ):
        return None
    v = evaluate(expr)
    return Task("arithmetic", expr.replace("**", "^"), [v]) if v is not None else None
