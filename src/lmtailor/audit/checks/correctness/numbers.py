"""Numbers as written in questions and answers, and whether an answer's number agrees with a computed one."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

NUM = r"-?\d+(?:,\d{3})*(?:\.\d+)?"  # a number as a question states it ("1,200.5"), for the solvers' patterns
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


def parse_number(text: str) -> float:
    """A number matched by `NUM`: thousands separators dropped ("1,200" is 1200)."""
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


LIST_NUMBER = re.compile(r"(?<![\w.,])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w.]|,\d{3})")
_PLAIN_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


def list_numbers(text: str) -> list[float]:
    """Numbers of a written list: "1,200, 3" and "1,200,000" have thousands separators, "2,3,7" has none."""
    if re.search(r",\s", text) or not re.search(r",(?!\d{3}(?!\d))", text):
        return [parse_number(x) for x in LIST_NUMBER.findall(text)]
    return [float(x) for x in _PLAIN_NUMBER.findall(text.replace(",", " "))]


_NUMERIC_LIST = re.compile(r"^[\s\d.,;:\-\[\]{}()]*$")


def number_list(text: str) -> list[float] | None:
    """The numbers of a plain list ("3, 5, 9", "[1, 2]", "John: 80" lines); None when it holds anything else."""
    text = re.sub(r"(?m)^\s*[A-Za-z][\w ]{0,30}:|[$€£]", "", text)
    if not _NUMERIC_LIST.match(text) or re.search(r"\d\s+-?\d", text):
        return None
    values = list_numbers(text)
    return values if len(values) >= 2 else None
