"""The SQL metric finds an example's database only inside `databases`: a db_id that climbs out (`../x`), is an
absolute path, holds a path separator, is blank, or names a symlink to a file outside is refused and reported,
and the file it points at is never opened. Real SQLite files in tmp_path; opens are seen by an audit hook."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lmtailor.core.records import Example
from lmtailor.evaluate.task import TaskConfig, score_answers

GOLD = "SELECT x FROM t ORDER BY x"
ANSWER = "SELECT x FROM t WHERE x > 0"  # not the gold's form, but the same rows: right only by execution
_connects: list[list[str]] = []  # the databases sqlite3 connected to, while a `watching()` block runs


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "sqlite3.connect" and _connects:
        _connects[-1].append(str(args[0]))


sys.addaudithook(_audit)  # hooks cannot be removed; this one records nothing outside `watching()`


@contextmanager
def watching() -> Iterator[list[str]]:
    _connects.append([])
    try:
        yield _connects[-1]
    finally:
        _connects.pop()


def _database(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.executescript("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);")
    con.commit()
    con.close()
    return path


def _example(db_id: str) -> Example:
    messages = [{"role": "user", "content": "Every x, in order."}, {"role": "assistant", "content": GOLD}]
    return Example(f"ex-{db_id}", messages, metadata={"db_id": db_id})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    dbs = tmp_path / "dbs"
    (dbs / "sub").mkdir(parents=True)
    _database(dbs / "inside.sqlite")
    _database(dbs / "sub" / "inside.sqlite")
    _database(tmp_path / "outside.sqlite")  # a real database one level up, where `../outside` points
    (dbs / "link.sqlite").symlink_to(tmp_path / "outside.sqlite")
    return dbs


def test_a_database_inside_the_folder_is_used(folder: Path) -> None:
    with watching() as connects:
        [row] = score_answers([_example("inside")], [ANSWER], TaskConfig(metric="sql", databases=folder)).predictions
    assert row["execution"] is True and row["correct"] is True and "db_error" not in row
    assert any("inside.sqlite" in c for c in connects)


@pytest.mark.parametrize(
    ("db_id", "why"),
    [
        ("../outside", "a path"),
        ("ABSOLUTE", "a path"),  # tmp_path/outside, spelled out in the test
        ("sub/inside", "a path"),  # inside the folder, but a name is one name
        ("..", "a path"),
        ("  ", "blank"),
        ("link", "outside"),  # dbs/link.sqlite -> tmp_path/outside.sqlite
    ],
)
def test_a_db_id_that_leaves_the_folder_is_refused_and_never_opened(folder: Path, db_id: str, why: str) -> None:
    if db_id == "ABSOLUTE":
        db_id = str(folder.parent / "outside")
    cfg = TaskConfig(metric="sql", databases=folder)
    with watching() as connects:
        result = score_answers([_example(db_id), _example("inside")], [ANSWER, ANSWER], cfg)
    refused, fine = result.predictions
    assert refused["execution"] is None and refused["correct"] is False  # scored by its form alone, as without one
    assert refused["db_error"].startswith(f"db_id {db_id!r}") and why in refused["db_error"]
    assert str(folder.resolve()) in refused["db_error"]
    assert fine["execution"] is True  # the other example still runs
    assert connects and not any("outside.sqlite" in c for c in connects)
    summary = result.summary
    assert summary["database_errors"] == {"n": 1, "examples": [{"id": refused["id"], "error": refused["db_error"]}]}
    assert summary["without_database"] == 1 and summary["execution"]["n"] == 1
