"""correctness: answers a program can verify, checked by computing them.

Arithmetic, aggregates (sum, product, average, median), percentages, powers and roots, GCD/LCM, primality,
linear equations and substitution, areas and volumes, unit conversions, sorting and alphabetising, counting
words/letters/vowels, and date arithmetic. Each solver only accepts a question it can parse without guessing;
a record is flagged only when none of the answer's numbers agrees with the computed one (allowing for the
answer's own rounding). Machine-generated sets like Alpaca carry many confidently wrong answers of this kind.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from lmtailor.audit.check import Check, CheckContext
from lmtailor.audit.finding import Finding
from lmtailor.core.records import Example

_N = r"-?\d+(?:,\d{3})*(?:\.\d+)?"
_NUMBER = re.compile(
    r"(?<![\w.])([-−]?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:\s*/\s*(\d+)(?![\d/]))?(?!\d|(?:st|nd|rd|th)\b)"
)
_SCALE = re.compile(r"\s*(thousand|million|billion|trillion)\b", re.I)
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_WORD_NUMBERS = {
    w: i
    for i, w in enumerate(
        re.findall(
            r"\w+",
            "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
            "seventeen eighteen nineteen twenty",
        )
    )
}
_WORD_NUMBER = re.compile(r"\b(" + "|".join(_WORD_NUMBERS) + r")\b", re.I)


def _value(text: str) -> float:
    """A number matched by `_N`: thousands separators dropped ("1,200" is 1200)."""
    return float(text.replace(",", ""))


@dataclass(frozen=True, slots=True)
class Number:
    """A number as written in an answer: its value and how precisely it was written."""

    value: float
    text: str
    at: int
    step: float  # the rounding unit the writer used: 0.01 for "3.14", 1 for "42", 1e5 for "1.2 million"
    exact: bool = False  # a fraction such as "7/2" is exact, whatever its digits


def numbers(text: str) -> list[Number]:
    """Every number written in `text`, with number words up to twenty."""
    out: list[Number] = []
    for m in _NUMBER.finditer(text):
        sign = -1.0 if m.group(1) else 1.0
        whole, frac, denom = m.group(2).replace(",", ""), m.group(3) or "", m.group(4)
        if denom is not None and not frac:
            if int(denom) == 0:
                continue
            out.append(Number(sign * int(whole) / int(denom), m.group(0), m.start(), 0.0, exact=True))
            continue
        value = sign * float(whole + frac)
        step = 10.0 ** -(len(frac) - 1) if frac else 1.0
        if scale := _SCALE.match(text, m.end()):
            factor = _SCALES[scale.group(1).lower()]
            value, step = value * factor, step * factor
        out.append(Number(value, m.group(0), m.start(), step))
    out += [
        Number(float(_WORD_NUMBERS[m.group(1).lower()]), m.group(0), m.start(), 1.0)
        for m in _WORD_NUMBER.finditer(text)
    ]
    return sorted(out, key=lambda n: n.at)


def agrees(expected: float, found: Number, rel_tol: float = 0.0) -> bool:
    """`found` is `expected` written to the writer's precision (rounded or cut off), or within `rel_tol`."""
    diff = abs(found.value - expected)
    if diff <= 1e-9 * max(1.0, abs(expected)) or (rel_tol and diff <= rel_tol * abs(expected)):
        return True
    if found.exact or found.step == 0:
        return False
    if diff <= found.step / 2 + 1e-9 * max(1.0, abs(expected)):
        return True
    # Cut off rather than rounded: 14.2857 written as 14.28.
    return diff < found.step and abs(math.trunc(expected / found.step) * found.step - found.value) < found.step / 100


@dataclass(slots=True)
class Task:
    """A question a solver understood: what it is, the acceptable answers, and how to compare."""

    kind: str
    question: str
    expected: list[float] = field(default_factory=list)
    rel_tol: float = 0.0
    items: list[str] | None = None  # sorting: the items given, in their order
    order: list[str] | None = None  # numeric sorting: the items sorted
    descending: bool = False
    weekday: str | None = None
    units: tuple[str, str] | None = None  # conversion: (from, to), to read "5 feet 6 inches" as one length


# ---------------------------------------------------------------- arithmetic expressions

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
    (re.compile(rf"\bmultiply\s+{_THE}({_N})\s+(?:by|and|with|times)\s+({_N})(?!\s*(?:,|and\b|\d))", re.I), "*", False),
    (re.compile(rf"\bdivide\s+{_THE}({_N})\s+by\s+({_N})(?!\s*(?:,|and\b|\d))", re.I), "/", False),
    (re.compile(rf"\badd\s+{_THE}({_N})\s+(?:and|to|plus|with)\s+({_N})(?!\s*(?:,|and\b|\d))", re.I), "+", False),
    (re.compile(rf"\bsubtract\s+{_THE}({_N})\s+from\s+({_N})(?!\s*(?:,|and\b|\d))", re.I), "-", True),
    (re.compile(rf"\bdifference\s+between\s+{_THE}({_N})\s+and\s+({_N})(?!\s*(?:,|and\b|\d))", re.I), "-", False),
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


def _evaluate(expr: str) -> float | None:
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


def _arithmetic(instruction: str, inp: str) -> Task | None:
    if not _ARITHMETIC_HINT.search(instruction) and not _ARITHMETIC_HINT.search(inp):
        return None
    for pattern, op, swap in _VERBAL:
        if m := pattern.search(instruction):
            a, b = (_value(g) for g in m.groups())
            a, b = (b, a) if swap else (a, b)
            v = _evaluate(f"({a!r}){op}({b!r})")
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
    v = _evaluate(expr)
    return Task("arithmetic", expr.replace("**", "^"), [v]) if v is not None else None


# ---------------------------------------------------------------- aggregates, percentages, powers, divisors

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
_LIST_NUMBER = re.compile(r"(?<![\w.,])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w.]|,\d{3})")
_PLAIN_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


def _list_numbers(text: str) -> list[float]:
    """Numbers of a written list: "1,200, 3" and "1,200,000" have thousands separators, "2,3,7" has none."""
    if re.search(r",\s", text) or not re.search(r",(?!\d{3}(?!\d))", text):
        return [_value(x) for x in _LIST_NUMBER.findall(text)]
    return [float(x) for x in _PLAIN_NUMBER.findall(text.replace(",", " "))]


_NUMERIC_LIST = re.compile(r"^[\s\d.,;:\-\[\]{}()]*$")
_INLINE_LIST = re.compile(
    rf"(?:\b(?:of|are|is|numbers|values)\b:?|:)\s*[(\[{{]?\s*({_N}(?:\s*(?:,|;|and|&)\s*(?:and\s+)?{_N})+)"
)


def _number_list(text: str) -> list[float] | None:
    """The numbers of a plain list ("3, 5, 9", "[1, 2]", "John: 80" lines); None when it holds anything else."""
    text = re.sub(r"(?m)^\s*[A-Za-z][\w ]{0,30}:|[$€£]", "", text)
    if not _NUMERIC_LIST.match(text) or re.search(r"\d\s+-?\d", text):
        return None
    values = _list_numbers(text)
    return values if len(values) >= 2 else None


def _aggregate(instruction: str, inp: str) -> Task | None:
    m = _AGG.search(instruction)
    if not m or _AGG_BLOCKERS.search(instruction):
        return None
    op = (m.group(1) or m.group(2) or m.group(3)).lower().split()[-1]
    op = {"total": "sum", "up": "sum", "add": "sum", "multiply": "product", "average": "mean"}.get(op, op)
    inline = _INLINE_LIST.search(instruction, m.start())
    if inline:
        values = _list_numbers(inline.group(1))
        others = _list_numbers(instruction.rstrip("."))
        # "the average of these 5 numbers: 2, 4, 10, 11, 13" also states how many there are.
        if (
            inp.strip()
            or len(others) not in (len(values), len(values) + 1)
            or (len(others) > len(values) and len(values) not in others)
        ):
            return None
    elif inp.strip() and not _LIST_NUMBER.search(instruction):
        values = _number_list(inp.strip()) or []
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


_PERCENT_OF = re.compile(rf"(?<![\w.])({_N})\s*(?:%|percent)\s+of\s+(?:a\s+|an\s+|the\s+)?[$€£]?({_N})(?!\.?\d)", re.I)
_WHAT_PERCENT = re.compile(
    rf"\bwhat\s+(?:percent|percentage)\s+of\s+[$€£]?({_N})\s+is\s+[$€£]?({_N})\b|"
    rf"(?<![\w.])[$€£]?({_N})\s+is\s+what\s+(?:percent|percentage)\s+of\s+[$€£]?({_N})\b",
    re.I,
)
_PERCENT_CHANGE = re.compile(
    rf"\bpercent(?:age)?\s+(increase|decrease|change)\b.*?\bfrom\s+[$€£]?({_N})\s+to\s+[$€£]?({_N})\b", re.I | re.S
)


def _percent(instruction: str, inp: str) -> Task | None:
    text = f"{instruction}\n{inp}"
    if "%" not in text and "percent" not in text.lower():
        return None
    if re.search(r"\b(increase|decrease|discount|tax|tip|interest|off|more|less|after|reduc|rais)", instruction, re.I):
        if m := _PERCENT_CHANGE.search(text):
            a, b = (_value(g) for g in m.groups()[1:])
            if a:
                return Task("percentage", m.group(0), [abs(b - a) / a * 100, (b - a) / a * 100])
        return None
    if m := _WHAT_PERCENT.search(text):
        whole, part = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
        w, p = _value(whole), _value(part)
        return Task("percentage", m.group(0), [p / w * 100]) if w else None
    found = list(_PERCENT_OF.finditer(instruction))
    if len(found) == 1 and not inp.strip():
        p, w = (_value(g) for g in found[0].groups())
        return Task("percentage", found[0].group(0), [p * w / 100])
    return None


_POWER = [
    (
        re.compile(rf"\bsquare\s+root\s+of\s+({_N})(?![\d.]|\s*[+\-*/^x×])", re.I),
        lambda x: math.sqrt(x) if x >= 0 else None,
    ),
    (
        re.compile(rf"\bcube\s+root\s+of\s+({_N})(?![\d.]|\s*[+\-*/^x×])", re.I),
        lambda x: math.copysign(abs(x) ** (1 / 3), x),
    ),
    (
        re.compile(rf"\b(?:the\s+)?square\s+of\s+({_N})(?![\d.]|\s*[+\-*/^x×])|(?<![\w.])({_N})\s+squared\b", re.I),
        lambda x: x * x,
    ),
    (
        re.compile(rf"\b(?:the\s+)?cube\s+of\s+({_N})(?![\d.]|\s*[+\-*/^x×])|(?<![\w.])({_N})\s+cubed\b", re.I),
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


def _powers(instruction: str, inp: str) -> Task | None:
    low = instruction.lower()
    if not any(w in low for w in ("square", "cube", "factorial", "common", "gcd", "gcf", "hcf", "lcm")):
        return None
    if _POWER_BLOCKERS.search(instruction) or inp.strip():
        return None
    hits = [(p, f, m) for p, f in _POWER for m in p.finditer(instruction)]
    if len(hits) == 1 and not _THEN_OPERATOR.match(instruction, hits[0][2].end()):
        _, fn, m = hits[0]
        arg = _value(next(g for g in m.groups() if g))
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
_IS_PRIME = re.compile(
    r"^\s*(?:is|determine\s+(?:if|whether))\s+(?:the\s+number\s+)?(\d{1,12})\s+(?:is\s+)?(?:a\s+)?prime"
    r"(?:\s+number)?\s*\??\s*$",
    re.I,
)


def _primality(instruction: str, inp: str) -> Task | None:
    prime = _IS_PRIME.match(instruction)
    if prime is None or inp.strip():
        return None
    return Task("primality", prime.group(0).strip(), [1.0 if _is_prime(int(prime.group(1))) else 0.0])


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


# ---------------------------------------------------------------- algebra: one linear equation, or substitution

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
    return None if re.search(r"[A-Za-z]", expr) else _evaluate(expr)


def _algebra(instruction: str, inp: str) -> Task | None:
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


# ---------------------------------------------------------------- geometry

_SHAPES = {
    "square": ("square",),
    "rectangle": ("rectangle",),
    "rectangular": ("rectangle",),
    "circle": ("circle",),
    "circular": ("circle",),
    "triangle": ("triangle",),
    "cube": ("cube",),
    "sphere": ("sphere",),
    "cylinder": ("cylinder",),
    "cone": ("cone",),
    "trapezoid": ("trapezoid",),
    "trapezium": ("trapezoid",),
    "prism": ("box",),
    "box": ("box",),
    "cuboid": ("box",),
}
_SHAPE_RE = re.compile(r"\b(" + "|".join(_SHAPES) + r")\b", re.I)
_MEASURE = re.compile(r"\b(surface\s+area|area|perimeter|circumference|volume|hypotenuse|diagonal)\b", re.I)
_DIM_NAMES = (
    r"(radius|diameter|side\s+length|side|length|width|breadth|height|base|edge|top\s+width|bottom\s+width|leg)"
)
_LENGTH_UNITS = (
    r"(?:cm|mm|m|km|in|inch(?:es)?|ft|feet|foot|meters?|metres?|centimeters?|centimetres?|units?|yards?|miles?)"
)
_DIM_AFTER = re.compile(
    rf"\b{_DIM_NAMES}s?\b(?:\s+(?:of|is|=|:|measuring|measures|that\s+measures?|equal\s+to))*\s*[=:]?\s*"
    rf"(\d+(?:\.\d+)?)",
    re.I,
)
_DIM_BEFORE = re.compile(rf"(\d+(?:\.\d+)?)\s*-?\s*{_LENGTH_UNITS}?\s*(?:in\s+)?{_DIM_NAMES}\b", re.I)
_BY = re.compile(
    rf"(\d+(?:\.\d+)?)\s*-?\s*{_LENGTH_UNITS}?\s*(?:by|x|×)\s*(\d+(?:\.\d+)?)(?:\s*-?\s*{_LENGTH_UNITS}?\s*"
    rf"(?:by|x|×)\s*(\d+(?:\.\d+)?))?",
    re.I,
)
_SIDES = re.compile(
    rf"\b(?:sides|legs|sides\s+of\s+length|side\s+lengths|measuring)\s+(?:of\s+)?(\d+(?:\.\d+)?)"
    rf"(?:\s*{_LENGTH_UNITS})?(?:\s*,\s*|\s+and\s+)(\d+(?:\.\d+)?)(?:\s*{_LENGTH_UNITS})?"
    rf"(?:(?:\s*,\s*|\s*,?\s+and\s+)(\d+(?:\.\d+)?))?",
    re.I,
)


def _squash(name: str) -> str:
    """The key `_formula` knows a matched name by, however the text spaced or broke it ("surface  area")."""
    return re.sub(r"\s+", " ", name.lower())


def _geometry(instruction: str, inp: str) -> Task | None:
    if not _MEASURE.search(instruction):
        return None
    text = f"{instruction} {inp}"
    shapes = {_SHAPES[m.lower()][0] for m in _SHAPE_RE.findall(text)}
    measures = {_squash(m) for m in _MEASURE.findall(instruction)}
    if (
        len(shapes) != 1
        or len(measures) != 1
        or re.search(
            r"\b(code|program|function|formula|explain|how\s+to|"
            r"estimate|ratio|percent|cost|price|shaded|inscribed)\b",
            text,
            re.I,
        )
    ):
        return None
    units = {u.lower().rstrip("s") for u in re.findall(rf"\d\s*{_LENGTH_UNITS}\b", text, re.I)}
    if len({re.sub(r"\d|\s", "", u) for u in units}) > 1 or re.search(
        r"\bin\s+(?:square|cubic)\s+\w+", instruction, re.I
    ):
        return None
    shape, measure = shapes.pop(), measures.pop()
    dims: dict[str, float] = {}
    used: list[str] = []
    for m in _DIM_AFTER.finditer(text):
        dims.setdefault(_squash(m.group(1)), float(m.group(2)))
        used.append(m.group(2))
    for m in _DIM_BEFORE.finditer(text):
        if m.group(1) not in used:
            dims.setdefault(_squash(m.group(2)), float(m.group(1)))
            used.append(m.group(1))
    sides: list[float] = []
    if (by := _BY.search(text)) or (by := _SIDES.search(text)):
        sides = [float(g) for g in by.groups() if g]
        used += [g for g in by.groups() if g]
    values = re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]|\.\d)", text)
    if sorted(values) != sorted(used) or not values:
        return None  # every number must be a dimension we understood
    expected = _formula(shape, measure, dims, sides)
    if expected is None:
        return None
    shown = ", ".join([f"{k} {v:g}" for k, v in dims.items()] + [f"{v:g}" for v in sides])
    return Task("geometry", f"{measure} of {shape} ({shown})", expected, rel_tol=0.01)


def _formula(shape: str, measure: str, dims: dict[str, float], sides: list[float]) -> list[float] | None:
    """The measure of the shape from its dimensions, or None when they do not determine it."""
    side = dims.get("side") or dims.get("side length") or dims.get("edge") or dims.get("length")
    r = dims.get("radius") or (dims["diameter"] / 2 if "diameter" in dims else None)
    h = dims.get("height")
    pi = math.pi
    if shape == "square" and (side or len(sides) == 1) and len(dims) + len(sides) == 1:
        s = side or sides[0]
        return {"area": [s * s], "perimeter": [4 * s], "diagonal": [s * math.sqrt(2)]}.get(measure)
    if shape == "rectangle":
        lw = (
            sides
            if len(sides) == 2 and not dims
            else [dims[k] for k in ("length", "width") if k in dims]
            or [dims[k] for k in ("length", "breadth") if k in dims]
        )
        if len(lw) != 2 or (dims and len(dims) != 2):
            return None
        a, b = lw
        return {"area": [a * b], "perimeter": [2 * (a + b)], "diagonal": [math.hypot(a, b)]}.get(measure)
    if shape == "circle" and r and len(dims) == 1 and not sides:
        return {"area": [pi * r * r], "circumference": [2 * pi * r], "perimeter": [2 * pi * r]}.get(measure)
    if shape == "triangle":
        if measure == "area" and set(dims) == {"base", "height"} and not sides:
            return [dims["base"] * dims["height"] / 2]
        if measure == "hypotenuse" and len(sides) == 2 and not dims:
            return [math.hypot(*sides)]
        if measure == "perimeter" and len(sides) == 3 and not dims:
            return [sum(sides)]
        return None
    if shape == "cube" and side and len(dims) == 1 and not sides:
        return {"volume": [side**3], "surface area": [6 * side * side]}.get(measure)
    if shape == "box":
        lwh = sides if len(sides) == 3 and not dims else [dims.get(k) for k in ("length", "width", "height")]
        if any(v is None for v in lwh) or len(lwh) != 3 or (dims and len(dims) != 3):
            return None
        a, b, c = lwh  # type: ignore[misc]
        return {"volume": [a * b * c], "surface area": [2 * (a * b + a * c + b * c)]}.get(measure)
    if shape == "sphere" and r and len(dims) == 1 and not sides:
        return {"volume": [4 / 3 * pi * r**3], "surface area": [4 * pi * r * r]}.get(measure)
    if shape in ("cylinder", "cone") and r and h and len(dims) == 2 and not sides:
        if measure == "volume":
            return [pi * r * r * h / (3 if shape == "cone" else 1)]
        if measure == "surface area" and shape == "cylinder":
            return [2 * pi * r * (r + h), 2 * pi * r * h]
        return None
    if shape == "trapezoid" and measure == "area" and h and not sides:
        bases = [v for k, v in dims.items() if k in ("top width", "bottom width", "base", "length", "width")]
        return [(bases[0] + bases[1]) / 2 * h] if len(bases) == 2 and len(dims) == 3 else None
    return None


# ---------------------------------------------------------------- unit conversions

_UNITS: dict[str, tuple[str, tuple[float, ...]]] = {}


def _unit(dimension: str, factors: tuple[float, ...], *names: str) -> None:
    for n in names:
        _UNITS[n] = (dimension, factors)


_unit("length", (1e-3,), "mm", "millimeter", "millimeters", "millimetre", "millimetres")
_unit("length", (1e-2,), "cm", "centimeter", "centimeters", "centimetre", "centimetres")
_unit("length", (1.0,), "m", "meter", "meters", "metre", "metres")
_unit("length", (1e3,), "km", "kilometer", "kilometers", "kilometre", "kilometres")
_unit("length", (0.0254,), "inch", "inches")
_unit("length", (0.3048,), "ft", "foot", "feet")
_unit("length", (0.9144,), "yd", "yard", "yards")
_unit("length", (1609.344,), "mi", "mile", "miles")
_unit("mass", (1e-6,), "mg", "milligram", "milligrams")
_unit("mass", (1e-3,), "g", "gram", "grams", "gramme", "grammes")
_unit("mass", (1.0,), "kg", "kilogram", "kilograms", "kilo", "kilos")
_unit("mass", (0.45359237,), "lb", "lbs", "pound", "pounds")
_unit("mass", (6.35029318,), "stone", "stones")
_unit("ounce", (0.028349523125, 2.95735e-5, 2.84131e-5), "oz", "ounce", "ounces")
_unit("volume", (1e-6,), "ml", "milliliter", "milliliters", "millilitre", "millilitres")
_unit("volume", (1e-3,), "l", "liter", "liters", "litre", "litres")
_unit("volume", (3.785411784e-3, 4.54609e-3), "gal", "gallon", "gallons")
_unit("volume", (9.46352946e-4, 1.1365225e-3), "qt", "quart", "quarts")
_unit("volume", (4.73176473e-4, 5.68261e-4), "pt", "pint", "pints")
_unit("volume", (2.365882365e-4, 2.5e-4, 2.4e-4), "cup", "cups")
_unit("volume", (1.478676478e-5, 1.5e-5), "tbsp", "tablespoon", "tablespoons")
_unit("volume", (4.92892159e-6, 5e-6), "tsp", "teaspoon", "teaspoons")
_unit("volume", (2.95735e-5, 2.84131e-5), "fl oz", "fluid ounce", "fluid ounces")
_unit("time", (1e-3,), "ms", "millisecond", "milliseconds")
_unit("time", (1.0,), "s", "sec", "secs", "second", "seconds")
_unit("time", (60.0,), "min", "mins", "minute", "minutes")
_unit("time", (3600.0,), "h", "hr", "hrs", "hour", "hours")
_unit("time", (86400.0,), "day", "days")
_unit("time", (604800.0,), "week", "weeks")
_unit("time", (31536000.0, 31557600.0, 31556952.0), "year", "years")
_unit("speed", (0.44704,), "mph", "miles per hour")
_unit("speed", (1 / 3.6,), "km/h", "kmh", "kph", "kilometers per hour", "kilometres per hour")
_unit("speed", (1.0,), "m/s", "meters per second", "metres per second")
_unit("data", (1e3, 1024.0), "kb", "kilobyte", "kilobytes")
_unit("data", (1e6, 1024.0**2), "mb", "megabyte", "megabytes")
_unit("data", (1e9, 1024.0**3), "gb", "gigabyte", "gigabytes")
_unit("data", (1e12, 1024.0**4), "tb", "terabyte", "terabytes")
_unit("data", (1.0,), "byte", "bytes")
_SCALES_NAMED = {
    "C": ("c", "°c", "celsius", "centigrade", "degree celsius", "degrees celsius"),
    "F": ("f", "°f", "fahrenheit", "degree fahrenheit", "degrees fahrenheit"),
    "K": ("k", "kelvin", "kelvins"),
}
_TEMPERATURE = {name: scale for scale, names in _SCALES_NAMED.items() for name in names}
_UNIT_NAMES = sorted([*_UNITS, *_TEMPERATURE], key=len, reverse=True)
_UNIT_RE = "(?:" + "|".join(re.escape(u) for u in _UNIT_NAMES) + ")"
_QUANTITY = rf"({_N})\s*(?:degrees?\s+|°\s*|º\s*)?({_UNIT_RE})\b"
_CONVERT = [
    re.compile(
        rf"\bconvert\s+(?:the\s+following\s*:?\s*)?{_QUANTITY}\s+(?:in)?to\s+(?:degrees?\s+)?({_UNIT_RE})\b", re.I
    ),
    re.compile(
        rf"\b(?:what\s+is|what's|how\s+much\s+is|how\s+many\s+\w+\s+(?:is|are))\s+{_QUANTITY}\s+(?:in|to)\s+"
        rf"(?:degrees?\s+)?({_UNIT_RE})\b",
        re.I,
    ),
    re.compile(
        rf"\bhow\s+many\s+({_UNIT_RE})\s+(?:are\s+(?:there\s+)?|is\s+|make\s+up\s+|equal\s+)?(?:in|to)\s+{_QUANTITY}",
        re.I,
    ),
]
_CONVERT_TO = re.compile(
    rf"\b(?:convert|express|change|transform)\b.*\b(?:to|into|in)\s+(?:degrees?\s+)?({_UNIT_RE})\b", re.I
)
_CONVERT_FROM_TO = re.compile(
    rf"\b(?:convert|express|change|transform)\b.*?\bfrom\s+(?:degrees?\s+)?({_UNIT_RE})\s+"
    rf"(?:to|into)\s+(?:degrees?\s+)?({_UNIT_RE})\b",
    re.I,
)
_INPUT_QUANTITY = re.compile(rf"^\s*(?:[A-Za-z][\w ]{{0,30}}:\s*)?{_QUANTITY}\s*\.?\s*$", re.I)
_INPUT_VALUE = re.compile(rf"^\s*(?:[A-Za-z][\w ]{{0,30}}:\s*)?({_N})\s*\.?\s*$")


def _to_kelvin(v: float, scale: str) -> float:
    return {"C": v + 273.15, "F": (v - 32) * 5 / 9 + 273.15, "K": v}[scale]


def _from_kelvin(v: float, scale: str) -> float:
    return {"C": v - 273.15, "F": (v - 273.15) * 9 / 5 + 32, "K": v}[scale]


def _convert(value: float, src: str, dst: str) -> list[float] | None:
    src, dst = src.lower(), dst.lower()
    if src in _TEMPERATURE and dst in _TEMPERATURE:
        a, b = _TEMPERATURE[src], _TEMPERATURE[dst]
        return [_from_kelvin(_to_kelvin(value, a), b)] if a != b else None
    if src not in _UNITS or dst not in _UNITS:
        return None
    (dim_a, fa), (dim_b, fb) = _UNITS[src], _UNITS[dst]
    if "ounce" in (dim_a, dim_b):
        other = dim_b if dim_a == "ounce" else dim_a
        if other not in ("mass", "volume", "ounce"):
            return None
        fa = fa[:1] if dim_a == "ounce" and other == "mass" else fa[1:] if dim_a == "ounce" else fa
        fb = fb[:1] if dim_b == "ounce" and other == "mass" else fb[1:] if dim_b == "ounce" else fb
    elif dim_a != dim_b:
        return None
    if src == dst:
        return None
    return [value * x / y for x in fa for y in fb]


_CONVERSION_HINT = re.compile(r"\b(convert|how\s+many|what\s+is|what's|how\s+much|express|change|transform)\b", re.I)


def _conversion(instruction: str, inp: str) -> Task | None:
    if not _CONVERSION_HINT.search(instruction):
        return None
    if re.search(
        r"\b(currency|exchange|usd|eur|dollars?|euros?|code|program|function|formula|script)\b", instruction, re.I
    ):
        return None
    for pattern in _CONVERT:
        if m := pattern.search(instruction):
            g = m.groups()
            value, src, dst = (g[1], g[2], g[0]) if pattern is _CONVERT[2] else g
            if re.match(r"\s*(?:and|&)\s+\w", instruction[m.end() :]):
                return None  # "to hours and minutes": a compound answer
            break
    else:
        target, quantity = _CONVERT_TO.search(instruction), _INPUT_QUANTITY.match(inp)
        units, bare = _CONVERT_FROM_TO.search(instruction), _INPUT_VALUE.match(inp)
        if target and quantity:
            value, src, dst = quantity.group(1), quantity.group(2), target.group(1)
        elif units and bare:
            value, src, dst = bare.group(1), units.group(1), units.group(2)
        else:
            return None
    expected = _convert(_value(value), src, dst)
    if not expected:
        return None
    return Task("conversion", f"{value} {src} to {dst}", expected, rel_tol=0.02, units=(src.lower(), dst.lower()))


# ---------------------------------------------------------------- sorting and alphabetising

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


def _sorting(instruction: str, inp: str) -> Task | None:
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
    if numeric and (values := _number_list(source.strip().rstrip("."))):
        order = sorted(values, reverse=descending)
        shown = [f"{v:g}" for v in values]
        return Task("sorting", "sort " + ", ".join(shown), items=shown, order=[f"{v:g}" for v in order])
    if alpha:
        items = _items(source)
        if len(items) < 3 or any(len(i.split()) > 4 or not re.search(r"[A-Za-z]", i) for i in items):
            return None
        return Task("alphabetical", "alphabetise " + ", ".join(items), items=items, descending=descending)
    return None


def _check_order(task: Task, output: str) -> tuple[str, str] | None:
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


# ---------------------------------------------------------------- counting

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


def _counting(instruction: str, inp: str) -> Task | None:
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


# ---------------------------------------------------------------- dates

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


def _dates(instruction: str, inp: str) -> Task | None:
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


# ---------------------------------------------------------------- the check

_SOLVERS: tuple[Callable[[str, str], Task | None], ...] = (
    _dates,
    _counting,
    _sorting,
    _conversion,
    _percent,
    _geometry,
    _powers,
    _aggregate,
    _algebra,
    _arithmetic,
    _primality,
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
        return _check_order(task, output)
    if task.weekday is not None:
        named = {w.lower() for w in _WEEKDAY_RE.findall(output)}
        if len(named) == 1 and task.weekday not in named:
            return task.weekday.title(), named.pop().title()
        return None
    if task.kind == "primality":
        says = _yes_no(output)
        if says is None or says == bool(task.expected[0]):
            return None
        return ("prime" if task.expected[0] else "not prime"), ("prime" if says else "not prime")
    found = numbers(output)
    if not found:
        return None
    if any(agrees(e, n, task.rel_tol) for e in task.expected for n in found):
        return None
    total = _compound(output, *task.units) if task.units else None
    if total is not None and any(abs(total - e) <= task.rel_tol * abs(e) for e in task.expected):
        return None
    answer = _final_number(output, found)
    return " or ".join(dict.fromkeys(_fmt(e) for e in task.expected[:2])), answer.text


def _compound(output: str, src: str, dst: str) -> float | None:
    """A quantity written in parts ("5 feet 6 inches", "2 hours and 5 minutes"), in `dst` units; None if none."""
    parts = [(_value(v), u.lower()) for v, u in re.findall(_QUANTITY, output, re.I)]
    parts = [(v, u) for v, u in parts if u != src and u in _UNITS and _UNITS[u][0] == _UNITS.get(dst, ("",))[0]]
    if len({u for _, u in parts}) < 2:
        return None
    return sum(v * _UNITS[u][1][0] for v, u in parts) / _UNITS[dst][1][0]


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


def _yes_no(output: str) -> bool | None:
    text = output.strip().lower()
    negated = re.search(r"\bnot\s+(a\s+)?prime\b|\bcomposite\b", text)
    if (re.match(r"(yes|true)\b", text) or re.search(r"\bis\s+(a\s+)?prime\b", text)) and not negated:
        return True
    if re.match(r"(no|false)\b", text) or re.search(r"\bnot\s+(a\s+)?prime\b|\bis\s+(a\s+)?composite\b", text):
        return False
    return None
