"""Whether a predicted SQL query is right: the same query once both are in canonical form, or the same rows when
both run on the example's database.

Gold queries follow Defog's sql-eval convention for answers that may take several forms: alternatives separated
by `;`, and `SELECT {a, b} ... GROUP BY {}` meaning any non-empty subset of the columns (in order), grouped by
the same columns. A prediction matches when it matches any one form.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlglot import exp
from sqlglot.errors import SqlglotError

from lmtailor.sql.canonical import canonical_sql
from lmtailor.sql.parse import parse_sql
from lmtailor.sql.sqlite import to_sqlite

_OUTSIDE_QUOTES = r"(?=(?:[^']*'[^']*')*[^']*$)"  # followed by an even number of quotes
_SEMICOLON = re.compile(";" + _OUTSIDE_QUOTES)
_CHOICE = re.compile(r"\{([^{}']+)\}")
_FENCE = re.compile(r"```[a-zA-Z]*\n?(.*?)(?:```|$)", re.DOTALL)
_MAX_VARIANTS = 64
_MAX_COLUMN_ORDERS = 120
_DECIMALS = 6  # floats are compared rounded: AVG(x) and SUM(x) / COUNT(x) differ in the last bits


class QueryError(Exception):
    """A query that does not translate, fails in SQLite, runs too long or returns too many rows."""


def extract_sql(text: str) -> str:
    """The query in a model's answer: the first statement of its first fenced code block, or of the whole
    text when it has none (a base model goes on after the query: "SELECT …; This query …")."""
    fenced = _FENCE.search(text)
    return _SEMICOLON.split(fenced.group(1) if fenced else text)[0].strip()


def gold_variants(reference: str) -> list[str]:
    """Every acceptable form of a gold query (Defog's `;` alternatives and `{a, b}` column choices)."""
    out: list[str] = []
    for query in _SEMICOLON.split(reference):
        if query.strip():
            out += _expanded(query.strip())
    return out[:_MAX_VARIANTS] or [reference.strip()]


def _expanded(query: str) -> list[str]:
    choice = _CHOICE.search(query)
    if choice is None:
        return [query]
    columns = [c.strip() for c in choice.group(1).split(",")]
    out = []
    for k in range(1, len(columns) + 1):
        for subset in itertools.combinations(columns, k):
            chosen = ", ".join(subset)
            rest = query[choice.end() :].replace("{}", chosen)
            out += _expanded(query[: choice.start()] + chosen + rest)
    return out


def canonical_match(prediction: str, variants: Sequence[str], dialect: str) -> bool:
    """The prediction equals a gold form once both are in canonical SQL (normalize's form for `dialect`)."""
    predicted = _canonical(prediction, dialect)
    return predicted is not None and any(predicted == (_canonical(v, dialect) or _collapsed(v)) for v in variants)


def _canonical(sql: str, dialect: str) -> str | None:
    try:
        return canonical_sql(sql, dialect) or None
    except SqlglotError:
        return None


def _collapsed(sql: str) -> str:
    return " ".join(sql.split()).rstrip(";")


def is_ordered(sql: str, dialect: str) -> bool:
    """Whether the query's result has a defined order (an ORDER BY on the outermost query)."""
    try:
        trees = parse_sql(sql, dialect)
    except SqlglotError:
        return False
    return bool(trees) and isinstance(trees[0], exp.Query) and trees[0].args.get("order") is not None


def execute(db: Path, sql: str, dialect: str, timeout_s: float = 5.0, max_rows: int = 100_000) -> list[tuple]:
    """Rows of one query on a read-only SQLite database (a predicted DROP TABLE changes nothing)."""
    try:
        statements = to_sqlite(sql, dialect)
    except SqlglotError as e:
        raise QueryError(f"does not parse as {dialect}: {str(e).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryError(f"expected one statement, got {len(statements)}")
    con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    deadline = time.monotonic() + timeout_s
    con.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
    try:
        rows = con.execute(statements[0]).fetchmany(max_rows + 1)
    except sqlite3.Error as e:
        timed_out = time.monotonic() > deadline
        raise QueryError(f"timed out after {timeout_s:g} s" if timed_out else f"SQLite: {e}") from None
    finally:
        con.close()
    if len(rows) > max_rows:
        raise QueryError(f"returns more than {max_rows} rows")
    return rows


def same_result(gold: list[tuple], predicted: list[tuple], ordered: bool) -> bool:
    """Rows equal as multisets (as sequences when `ordered`), floats rounded, columns in any order."""
    if len(gold) != len(predicted):
        return False
    if not gold:
        return True
    g = [_row(r) for r in gold]
    p = [_row(r) for r in predicted]
    if len(g[0]) != len(p[0]):
        return False
    for order in _column_orders(g, p):
        moved = [tuple(r[i] for i in order) for r in p]
        if (moved == g) if ordered else (Counter(moved) == Counter(g)):
            return True
    return False


def _row(row: tuple) -> tuple:
    return tuple(round(v, _DECIMALS) if isinstance(v, float) else v for v in row)


def _column_orders(gold: list[tuple], predicted: list[tuple]) -> Iterator[tuple[int, ...]]:
    """Orders of the predicted columns that put, under each gold column, a column with the same values."""
    width = len(gold[0])
    gold_cols = [Counter(r[j] for r in gold) for j in range(width)]
    pred_cols = [Counter(r[i] for r in predicted) for i in range(width)]
    candidates = [[i for i in range(width) if pred_cols[i] == gold_cols[j]] for j in range(width)]
    orders = (o for o in itertools.product(*candidates) if len(set(o)) == width)
    return itertools.islice(orders, _MAX_COLUMN_ORDERS)
