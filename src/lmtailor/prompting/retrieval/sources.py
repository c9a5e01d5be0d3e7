"""Raw records for retrieval, from any file lmtailor reads and from the shapes QA sets ship in.

Documents and questions arrive as JSONL/JSON arrays/CSV/Parquet records (read by core.io, with its precise
errors), as text files, as folders of either, and as two JSON objects core.io does not stream: SQuAD's
`{"data": [{"paragraphs": [{"context", "qas"}]}]}` (COVID-QA), one record per paragraph, and records keyed by
their id, `{"21645374": {"QUESTION": ..., "CONTEXTS": [...]}}` (PubMedQA), one record per key with the key as its
`id`. Each record comes with where it was found, so every later error can name the file and the record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmtailor.core.io import DataError, _renamed, check_value, container_of, parse_json, raw_records
from lmtailor.core.records import RecordError

TEXT_SUFFIXES = (".txt", ".md", ".text", ".rst")
DATA_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet", ".csv")


@dataclass(frozen=True, slots=True)
class Source:
    """One raw record and where it is: `path`, its 0-based `index` and, in line-based files, its `line`."""

    path: Path
    index: int
    record: dict[str, Any]
    line: int | None = None

    @property
    def where(self) -> str:
        return f"{self.path}: record {self.index}" + (f" (line {self.line})" if self.line else "")

    def error(self, problem: str) -> DataError:
        return DataError(self.path, self.index, problem, self.line)


def read_sources(path: Path, columns: dict[str, str] | None = None) -> Iterator[Source]:
    """Every record under `path` (a file, or a folder read recursively in name order), fields renamed by
    `columns`. A text file is one record whose id is its path within the folder given. Files of other kinds in
    a folder are skipped; `skipped_files` names them."""
    if path.is_dir() and not _saved_dataset(path):
        files = [p for p in sorted(path.rglob("*")) if _readable(p, path)]
        if not files:
            raise DataError(path, None, f"holds no text ({', '.join(TEXT_SUFFIXES)}) or data files")
        for p in files:
            yield from _renamed_sources(p, str(p.relative_to(path)), columns)
    else:
        yield from _renamed_sources(path, path.name, columns)


def _renamed_sources(path: Path, name: str, columns: dict[str, str] | None) -> Iterator[Source]:
    for source in _records(path, name):
        if columns:
            try:
                source = Source(source.path, source.index, _renamed(source.record, columns), source.line)
            except RecordError as e:
                raise source.error(str(e)) from None
        yield source


def skipped_files(path: Path) -> list[Path]:
    """The files of a folder `read_sources` does not read (neither text nor data), so a run can say so."""
    if not path.is_dir() or _saved_dataset(path):
        return []
    return [p for p in sorted(path.rglob("*")) if p.is_file() and not _hidden(p, path) and not _readable(p, path)]


def _records(path: Path, name: str) -> Iterator[Source]:
    if not path.exists():
        raise DataError(path, None, "no such file or directory")
    if path.suffix.lower() in TEXT_SUFFIXES:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise DataError(path, None, f"is not UTF-8 text (byte {e.start})") from None
        yield Source(path, 0, {"id": name, "text": text})
        return
    if container_of(path) == "json" and _first_char(path) == "{":
        yield from _object_records(path)
        return
    for raw in raw_records(path):
        if raw.error is not None:
            raise DataError(path, raw.index, raw.error, raw.line)
        if not isinstance(raw.record, dict):
            raise DataError(path, raw.index, f"is a JSON {type(raw.record).__name__}, not an object", raw.line)
        try:
            check_value(raw.record)
        except RecordError as e:
            raise DataError(path, raw.index, str(e), raw.line) from None
        yield Source(path, raw.index, raw.record, raw.line)


def _object_records(path: Path) -> Iterator[Source]:
    """A JSON object: SQuAD's articles and paragraphs, or records keyed by id."""
    try:
        data = parse_json(path.read_text(encoding="utf-8-sig"))
        check_value(data)
    except (RecordError, UnicodeDecodeError) as e:
        raise DataError(path, None, str(e)) from None
    articles = data.get("data")
    if isinstance(articles, list) and all(isinstance(a, dict) and "paragraphs" in a for a in articles):
        index = 0
        for a, article in enumerate(articles):
            for p, paragraph in enumerate(article["paragraphs"]):
                if not isinstance(paragraph, dict):
                    raise DataError(path, index, f"data[{a}].paragraphs[{p}] is not an object")
                doc_id = paragraph.get("document_id", f"{path.stem}:{a}.{p}")
                record = {"id": str(doc_id), **({"title": article["title"]} if "title" in article else {})}
                yield Source(path, index, {**record, **{k: v for k, v in paragraph.items() if k != "document_id"}})
                index += 1
        return
    for index, (key, value) in enumerate(data.items()):
        if not isinstance(value, dict):
            raise DataError(
                path,
                index,
                f"the value of key {key!r} is a JSON {type(value).__name__}: expected SQuAD's {{'data': [...]}} or "
                "an object of records keyed by id",
            )
        yield Source(path, index, {"id": key, **value})


def _first_char(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4096).decode("utf-8-sig", "replace").lstrip()
    return head[:1]


def _saved_dataset(path: Path) -> bool:
    return (path / "state.json").is_file() or (path / "dataset_info.json").is_file()


def _hidden(p: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in p.relative_to(root).parts)


def _readable(p: Path, root: Path) -> bool:
    return p.is_file() and not _hidden(p, root) and p.suffix.lower() in TEXT_SUFFIXES + DATA_SUFFIXES


def pick(record: dict[str, Any], names: tuple[str, ...]) -> str | None:
    """The record's field for the first of `names`, matched regardless of case (PubMedQA writes CONTEXTS)."""
    folded = {k.casefold(): k for k in record}
    return next((folded[n] for n in names if n in folded), None)


def text_of(source: Source, key: str) -> str:
    """A field's text: a string, or a list of strings (PubMedQA's abstract sections) joined by newlines."""
    value = source.record[key]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    if not isinstance(value, str):
        raise source.error(f"field {key!r} is a JSON {type(value).__name__}, not text")
    return value
