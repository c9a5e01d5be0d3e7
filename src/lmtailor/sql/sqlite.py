"""SQL written for another engine as SQLite runs it, so queries can be executed without a database server.

Defog's databases and gold queries are PostgreSQL. sqlglot transpiles most of that, but leaves date arithmetic
as PostgreSQL wrote it: `CURRENT_DATE - INTERVAL '8 days'`, DATE_TRUNC, EXTRACT and TO_TIMESTAMP become SQLite's DATE(),
DATETIME() and STRFTIME() here. SQLite has no schemas either, so `public.author` is plain `author`, and it
wants a column default that is an expression (`'0'::bigint`) in parentheses.

Date arithmetic on a date with whole days (or months, years) gives a date string; PostgreSQL gives a midnight
timestamp, but compares it with dates and timestamps as the date string compares in SQLite. Anything else gives
a DATETIME string.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from lmtailor.sql.parse import parse_sql

_UNITS = {
    "year": "years", "years": "years", "month": "months", "months": "months", "mon": "months", "mons": "months",
    "week": "weeks", "weeks": "weeks", "day": "days", "days": "days", "hour": "hours", "hours": "hours",
    "hr": "hours", "hrs": "hours", "minute": "minutes", "minutes": "minutes", "min": "minutes", "mins": "minutes",
    "second": "seconds", "seconds": "seconds", "sec": "seconds", "secs": "seconds",
    "millisecond": "milliseconds", "milliseconds": "milliseconds", "ms": "milliseconds",
}  # fmt: skip
_DATE_UNITS = {"years", "months", "weeks", "days"}
_INTERVAL_PART = re.compile(r"\s*([+-]?\d+(?:\.\d+)?)\s*([a-z]+)\s*")

# DATE_TRUNC(unit, x) and EXTRACT(part FROM x) in SQLite; X stands for the argument.
_TRUNC = {
    "YEAR": "DATE(X, 'start of year')",
    "QUARTER": "DATE(X, 'start of month', '-' || ((CAST(STRFTIME('%m', X) AS INTEGER) - 1) % 3) || ' months')",
    "MONTH": "DATE(X, 'start of month')",
    "WEEK": "DATE(X, '-6 days', 'weekday 1')",  # PostgreSQL's weeks start on Monday
    "DAY": "DATE(X)",
    "HOUR": "STRFTIME('%Y-%m-%d %H:00:00', X)",
    "MINUTE": "STRFTIME('%Y-%m-%d %H:%M:00', X)",
    "SECOND": "STRFTIME('%Y-%m-%d %H:%M:%S', X)",
}
_EXTRACT = {
    "YEAR": "CAST(STRFTIME('%Y', X) AS INTEGER)",
    "QUARTER": "(CAST(STRFTIME('%m', X) AS INTEGER) + 2) / 3",
    "MONTH": "CAST(STRFTIME('%m', X) AS INTEGER)",
    "DAY": "CAST(STRFTIME('%d', X) AS INTEGER)",
    "HOUR": "CAST(STRFTIME('%H', X) AS INTEGER)",
    "MINUTE": "CAST(STRFTIME('%M', X) AS INTEGER)",
    "SECOND": "CAST(STRFTIME('%S', X) AS INTEGER)",
    "DOW": "CAST(STRFTIME('%w', X) AS INTEGER)",
    "DOY": "CAST(STRFTIME('%j', X) AS INTEGER)",
    "EPOCH": "CAST(STRFTIME('%s', X) AS INTEGER)",
}


def to_sqlite(sql: str, dialect: str) -> list[str]:
    """Each statement of `sql` (written in `dialect`) as SQLite text; sqlglot's ParseError if it does not parse."""
    return [sqlite_text(s) for s in parse_sql(sql, dialect)]


def sqlite_text(statement: exp.Expression) -> str:
    return statement.transform(_rewrite).sql(dialect="sqlite")


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Table | exp.Column) and node.args.get("db"):
        node.set("db", None)
        node.set("catalog", None)
        return node
    if isinstance(node, exp.DefaultColumnConstraint) and not isinstance(node.this, exp.Literal | exp.Null | exp.Paren):
        node.set("this", exp.Paren(this=node.this))  # SQLite wants an expression default in parentheses
        return node
    if isinstance(node, exp.Add | exp.Sub):
        return _shifted(node) or node
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc | exp.DatetimeTrunc):
        template = _TRUNC.get(node.text("unit").upper())
        return _filled(template, node.this) if template else node
    if isinstance(node, exp.UnixToTime) and node.args.get("scale") is None:
        return _filled("DATETIME(X, 'unixepoch')", node.this)
    if isinstance(node, exp.Extract):
        template = _EXTRACT.get(node.this.name.upper())
        return _filled(template, node.expression) if template else node
    return node


def _shifted(node: exp.Add | exp.Sub) -> exp.Expression | None:
    """`x ± INTERVAL '…'` (or a date ± whole days) as DATE/DATETIME(x, modifiers); None when it is not one."""
    base = node.this
    sign = -1 if isinstance(node, exp.Sub) else 1
    parts = _interval(node.expression)
    if parts is None and isinstance(base, exp.CurrentDate) and node.expression.is_int:
        parts = [(int(node.expression.name), "days")]
    if parts is None:
        return None
    modifiers: list[exp.Expression] = []
    for amount, unit in parts:
        if unit == "weeks":
            amount, unit = amount * 7, "days"
        elif unit == "milliseconds":
            amount, unit = amount / 1000, "seconds"
        modifiers.append(exp.Literal.string(f"{sign * amount:+g} {unit}"))
    base = base.transform(_rewrite)
    whole_days = all(unit in _DATE_UNITS for _, unit in parts)
    function = "DATE" if whole_days and _is_date(base) else "DATETIME"
    return exp.Anonymous(this=function, expressions=[base, *modifiers])


def _interval(node: exp.Expression) -> list[tuple[float, str]] | None:
    """The (amount, unit) parts of an INTERVAL literal, or None for anything else."""
    if isinstance(node, exp.Interval):
        text = f"{node.this.name} {node.text('unit')}"
    elif isinstance(node, exp.Cast) and node.to.is_type("interval") and node.this.is_string:
        text = node.this.name
    else:
        return None
    text = text.lower()
    parts = []
    pos = 0
    while pos < len(text.rstrip()):
        match = _INTERVAL_PART.match(text, pos)
        if match is None or match.group(2) not in _UNITS:
            return None
        parts.append((float(match.group(1)), _UNITS[match.group(2)]))
        pos = match.end()
    return parts or None


def _is_date(node: exp.Expression) -> bool:
    """Whether a (rewritten) expression is a date without time of day."""
    if isinstance(node, exp.Cast):
        return node.to.is_type("date")
    if isinstance(node, exp.Anonymous):
        return node.name.upper() == "DATE"
    return isinstance(node, exp.CurrentDate | exp.Date)


def _filled(template: str, argument: exp.Expression) -> exp.Expression:
    """The SQLite `template` with its X replaced by `argument` (itself rewritten)."""
    value = argument.transform(_rewrite)
    tree = sqlglot.parse_one(template, read="sqlite")
    return tree.transform(lambda n: value.copy() if isinstance(n, exp.Column) and n.name == "X" else n)
