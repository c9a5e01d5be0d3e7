"""SQL parsing for text that may be anything: model answers, dataset records.

sqlglot's parser recurses once per level of nesting, so a generated answer that opens a hundred brackets raises
RecursionError rather than ParseError (a Spider evaluation died on one after 47 minutes of training). Every
caller treats unparseable SQL as a verdict, a wrong answer or an invalid record, so it gets one exception."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import DialectType
from sqlglot.errors import ParseError


def parse_sql(text: str, dialect: DialectType) -> list[exp.Expression]:
    """The statements of `text`; sqlglot's ParseError where it does not parse, nesting too deep included."""
    try:
        return [tree for tree in sqlglot.parse(text, read=dialect) if tree is not None]
    except RecursionError:
        raise ParseError(f"nested too deeply to parse: {text[:80]}...") from None
