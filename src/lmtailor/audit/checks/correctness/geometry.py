"""Areas, perimeters, volumes and diagonals of named shapes from their stated dimensions."""

from __future__ import annotations

import math
import re

from lmtailor.audit.checks.correctness.task import Task

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


def solve(instruction: str, inp: str) -> Task | None:
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
