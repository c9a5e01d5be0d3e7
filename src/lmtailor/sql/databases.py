"""Databases for text-to-SQL evaluation: Defog's sql-eval databases as SQLite files, Spider schemas as prompt text.

Defog ships each database as PostgreSQL DDL plus INSERT rows. Executing a predicted query needs those rows, and
SQLite needs no server, so each file is translated statement by statement (sqlite_sql.py) and built once into
the lmtailor cache, atomically. The file name carries the source's hash and the day: rows such as
`CURRENT_DATE - INTERVAL '8 days'` are relative to the day the database is built, as questions like "in the
last 30 days" are to the day they are asked.

A table that cannot be created fails the build; a row that cannot be converted is left out and reported.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from lmtailor.core.cachedir import cache_dir
from lmtailor.sql.sqlite import sqlite_text

# Part of every cached file's key: a change to the translation rebuilds the databases.
BUILD_VERSION = 1


class DatabaseBuildError(RuntimeError):
    """A database whose tables cannot all be created in SQLite."""


@dataclass(frozen=True)
class SqliteDatabase:
    path: Path
    source: Path
    built_on: str  # the UTC day relative dates in the rows were resolved against
    rows: dict[str, int]  # rows per table
    failed: list[dict[str, str]]  # {statement, error} for each statement or row that could not be converted

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path), "source": str(self.source)}


def defog_database(name: str, databases: Path) -> SqliteDatabase:
    """Defog database `name` (e.g. "academic") from its `databases` folder as SQLite, built on first use each day."""
    source = databases / name / f"{name}.sql"
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such Defog database source")
    return sqlite_from_postgres(source)


def sqlite_from_postgres(source: Path) -> SqliteDatabase:
    """The PostgreSQL dump `source` as a cached SQLite file; earlier builds of the same source are removed."""
    text = source.read_text(encoding="utf-8")
    digest = hashlib.sha256(f"{BUILD_VERSION}\n{text}".encode()).hexdigest()[:12]
    day = datetime.now(UTC).date().isoformat()  # SQLite's CURRENT_DATE is UTC too
    target = cache_dir("sqlite") / f"{source.stem}-{digest}-{day}.sqlite"
    report = target.with_suffix(".json")
    if target.is_file() and report.is_file():
        data = json.loads(report.read_text(encoding="utf-8"))
        return SqliteDatabase(target, source, data["built_on"], data["rows"], data["failed"])
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        rows, failed = _build(text, tmp, source)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    db = SqliteDatabase(target, source, day, rows, failed)
    report_tmp = report.with_name(f"{report.name}.tmp{os.getpid()}")
    report_tmp.write_text(json.dumps(db.to_json(), indent=1), encoding="utf-8")
    report_tmp.replace(report)  # the report first: a database file in place always has its report
    tmp.replace(target)
    _remove_stale(source.stem, {target.name, report.name})
    return db


def _remove_stale(stem: str, keep: set[str]) -> None:
    pattern = re.compile(rf"{re.escape(stem)}-[0-9a-f]{{12}}-\d{{4}}-\d\d-\d\d\.(sqlite|json)")
    for path in cache_dir("sqlite").iterdir():
        if pattern.fullmatch(path.name) and path.name not in keep:
            path.unlink(missing_ok=True)


def _build(text: str, path: Path, source: Path) -> tuple[dict[str, int], list[dict[str, str]]]:
    try:
        statements = [s for s in sqlglot.parse(text, read="postgres") if s is not None]
    except SqlglotError as e:
        raise DatabaseBuildError(f"{source}: does not parse as PostgreSQL: {str(e).splitlines()[0]}") from None
    failed: list[dict[str, str]] = []
    typed: dict[str, dict[str, str]] = {}  # table -> {column: "date" | "timestamp"}
    con = sqlite3.connect(path)
    try:
        for statement in statements:
            if isinstance(statement, exp.Create) and statement.kind == "SCHEMA":
                continue  # SQLite has no schemas: every name is used unqualified
            if isinstance(statement, exp.Create) and statement.kind == "TABLE":
                table = statement.find(exp.Table)
                _create(con, statement, source, table.name if table else "?")
                typed[table.name if table else "?"] = _date_columns(statement)
            elif isinstance(statement, exp.Insert):
                failed += _insert(con, statement)
            else:
                failed += _run(con, statement)
        for table, columns in typed.items():
            _as_postgres_stores(con, table, columns)
        con.commit()
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        rows = {t: con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        con.close()
    return rows, failed


def _create(con: sqlite3.Connection, statement: exp.Create, source: Path, table: str) -> None:
    try:
        con.execute(sqlite_text(statement))
    except (sqlite3.Error, SqlglotError) as e:
        raise DatabaseBuildError(f"{source}: table {table!r} cannot be created in SQLite: {e}") from None


def _date_columns(statement: exp.Create) -> dict[str, str]:
    out = {}
    for column in statement.find_all(exp.ColumnDef):
        kind = column.args.get("kind")
        if kind is not None and kind.is_type("date"):
            out[column.name] = "date"
        elif kind is not None and kind.is_type("timestamp", "timestamptz", "timestampntz", "datetime"):
            out[column.name] = "timestamp"
    return out


def _insert(con: sqlite3.Connection, statement: exp.Insert) -> list[dict[str, str]]:
    """Run an INSERT; when it fails as a whole, its rows one by one, reporting only the rows that fail."""
    failed = _run(con, statement)
    values = statement.expression
    if not failed or not isinstance(values, exp.Values) or len(values.expressions) < 2:
        return failed
    out = []
    for row in values.expressions:
        single = statement.copy()
        single.set("expression", exp.Values(expressions=[row.copy()]))
        out += _run(con, single)
    return out


def _run(con: sqlite3.Connection, statement: exp.Expression) -> list[dict[str, str]]:
    try:
        con.execute(sqlite_text(statement))
    except (sqlite3.Error, SqlglotError) as e:
        return [{"statement": statement.sql(dialect="postgres")[:300], "error": str(e).splitlines()[0]}]
    return []


def _as_postgres_stores(con: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    """Store DATE values as dates and TIMESTAMP values with a time, as PostgreSQL would hold the same inserts,
    so that comparisons with date strings behave the same."""
    for column, kind in columns.items():
        function, length = ("DATE", "> 10") if kind == "date" else ("DATETIME", "= 10")
        con.execute(
            f'UPDATE "{table}" SET "{column}" = {function}("{column}") '
            f'WHERE LENGTH("{column}") {length} AND DATE("{column}") IS NOT NULL'
        )


def spider_schema(db_id: str, data_root: Path) -> str:
    """Spider database `db_id` as prompt text: one `table(column, ...)` line per table, then one
    `-- table.column = table.column` line per foreign key (the joins a query needs)."""
    schemas = _spider_tables(data_root / "text2sql" / "spider" / "tables.json")
    if db_id not in schemas:
        raise KeyError(f"Spider has no database {db_id!r}")
    schema = schemas[db_id]
    tables = schema["table_names_original"]
    columns = schema["column_names_original"]
    lines = [f"{table}({', '.join(c for t, c in columns if t == i)})" for i, table in enumerate(tables)]
    for a, b in schema["foreign_keys"]:
        (ta, ca), (tb, cb) = columns[a], columns[b]
        lines.append(f"-- {tables[ta]}.{ca} = {tables[tb]}.{cb}")
    return "\n".join(lines)


@lru_cache(maxsize=4)
def _spider_tables(path: Path) -> dict[str, dict[str, Any]]:
    return {s["db_id"]: s for s in json.loads(path.read_text(encoding="utf-8"))}
