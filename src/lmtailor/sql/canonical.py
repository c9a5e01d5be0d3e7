"""One spelling per SQL query, so targets agree and exact match does not hinge on case or spacing."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from lmtailor.sql.parse import parse_sql


def canonical_sql(text: str, dialect: str) -> str:
    """One spelling per query: where the dialect folds unquoted names (SQLite: `T1` and `t1`, `CARS_DATA` and
    `cars_data` are one name), they are written folded, so targets agree and exact match does not hinge on case.
    Quoted names are left alone: in SQLite a double-quoted word may be a string, and sqlglot's own
    normalize_identifiers folds `"Asia"` to `"asia"` there."""
    d = sqlglot.Dialect.get_or_raise(dialect)
    statements = []
    for tree in parse_sql(text, d):
        for name in tree.find_all(exp.Identifier):
            if not name.quoted:
                d.normalize_identifier(name)
        statements.append(tree.sql(dialect=d))
    return "; ".join(statements)
