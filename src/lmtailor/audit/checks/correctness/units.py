"""Unit conversions: length, mass, volume, time, speed, data and temperature."""

from __future__ import annotations

import re

from lmtailor.audit.checks.correctness.numbers import NUM, parse_number
from lmtailor.audit.checks.correctness.task import Task

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
_QUANTITY = rf"({NUM})\s*(?:degrees?\s+|°\s*|º\s*)?({_UNIT_RE})\b"
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
_INPUT_VALUE = re.compile(rf"^\s*(?:[A-Za-z][\w ]{{0,30}}:\s*)?({NUM})\s*\.?\s*$")


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


def solve(instruction: str, inp: str) -> Task | None:
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
    expected = _convert(parse_number(value), src, dst)
    if not expected:
        return None
    return Task("conversion", f"{value} {src} to {dst}", expected, rel_tol=0.02, units=(src.lower(), dst.lower()))


def compound(output: str, src: str, dst: str) -> float | None:
    """A quantity written in parts ("5 feet 6 inches", "2 hours and 5 minutes"), in `dst` units; None if none."""
    parts = [(parse_number(v), u.lower()) for v, u in re.findall(_QUANTITY, output, re.I)]
    parts = [(v, u) for v, u in parts if u != src and u in _UNITS and _UNITS[u][0] == _UNITS.get(dst, ("",))[0]]
    if len({u for _, u in parts}) < 2:
        return None
    return sum(v * _UNITS[u][1][0] for v, u in parts) / _UNITS[dst][1][0]
