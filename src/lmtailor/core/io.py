"""Streaming dataset readers and atomic writers for JSONL, JSON, Parquet, CSV and `datasets` directories.

Readers yield one record at a time and writers hold at most one batch, so memory stays flat however many
records flow through. Every problem is reported with the file, the 0-based record index and, for
line-based files, the line number.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import os
import re
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from lmtailor.core.records import (
    FORMAT_KEYS,
    FORMATS,
    Example,
    Format,
    RecordError,
    detect_format,
    from_example,
    to_example,
)

if TYPE_CHECKING:
    import pyarrow as pa

Container = Literal["jsonl", "json", "parquet", "csv", "hf"]
_SUFFIX: dict[str, Container] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}
_NESTED = ("conversations", "messages", "history")
_BOM = b"\xef\xbb\xbf"
_BATCH = 1024
_BLOCK = 1 << 20  # bytes read at a time from a JSON array
# Rows per Parquet row group: a writer keeps every group's metadata (column statistics) until it closes,
# so groups of one batch (~1,000 groups per million rows) would make memory grow with the file.
_ROW_GROUP = 16 * _BATCH
OnError = Literal["fail", "skip"]
ON_ERROR = ("fail", "skip")
# Deeper records are refused: nothing in a training example nests this deep, and Python's own parser and
# serialiser recurse (a file nested 10,000 levels would end a run with RecursionError far from the reader).
MAX_DEPTH = 100


class DataError(ValueError):
    """A problem in an input file, located precisely enough to find and fix it."""

    def __init__(self, path: Path | str, index: int | None, problem: str, line: int | None = None):
        self.path, self.index, self.problem, self.line = str(path), index, problem, line
        where = "" if index is None else f": record {index}" + (f" (line {line})" if line else "")
        super().__init__(f"{self.path}{where}: {problem}")


@dataclass
class Reject:
    """A record that could not be read, kept with the reason so nothing is lost silently."""

    source: str
    index: int
    line: int | None
    reason: str
    raw: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ReadOptions:
    format: Format | None = None
    columns: dict[str, str] = field(default_factory=dict)
    on_error: OnError = "fail"
    max_record_mb: float = 16.0


def container_of(path: Path) -> Container:
    if path.is_dir() or (not path.suffix and not path.exists()):
        return "hf"
    try:
        return _SUFFIX[path.suffix.lower()]
    except KeyError:
        raise DataError(
            path, None, f"unknown file type {path.suffix!r}; use {', '.join(_SUFFIX)} or a datasets directory"
        ) from None


# ---------------------------------------------------------------- raw records


@dataclass(slots=True)
class _Raw:
    index: int
    line: int | None
    record: Any = None
    error: str | None = None
    text: str = ""


def _over_limit(what: str, limit: int) -> str:
    return f"{what} over the {limit / 2**20:g} MB limit (raise max_record_mb / --max-record-mb)"


class _DuplicateKey(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are unique: a repeated key would silently keep only its last value."""
    out = dict(pairs)
    if len(out) != len(pairs):
        keys = [k for k, _ in pairs]
        twice = next(k for k in keys if keys.count(k) > 1)
        raise _DuplicateKey(f"the key {twice!r} appears twice in one object (which value is meant?)")
    return out


def parse_json(text: str) -> Any:
    """Strict JSON: RecordError for syntax, duplicate keys, nesting too deep or integers Python refuses."""
    try:
        return json.loads(text, object_pairs_hook=_pairs)
    except json.JSONDecodeError as e:
        where = f"line {e.lineno} column {e.colno}" if "\n" in text.rstrip("\n") else f"column {e.colno}"
        raise RecordError(f"invalid JSON: {e.msg} at {where}") from None
    except RecursionError:
        raise RecordError(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:
        raise RecordError(_problem(e)) from None


def _problem(e: ValueError) -> str:
    """A refused value's problem: a key twice, or an integer past Python's limit on digits (int("9" * 5000))."""
    if isinstance(e, _DuplicateKey):
        return str(e)
    return f"holds a number Python will not read ({str(e).split(':')[0]})"


def check_value(value: Any) -> None:
    """Refuse what lmtailor could not write back unchanged as standard UTF-8 JSON: lone surrogates (an
    escaped half of a pair, `\\ud800`), NaN and infinities, and nesting past MAX_DEPTH. One policy for every
    container, applied as records are read, so no step or writer meets them."""
    if type(value) is dict and all(type(v) is str for v in value.values()):  # alpaca and the like: one pass in C
        try:
            "".join([*value, *value.values()]).encode("utf-8")
            return
        except UnicodeEncodeError:
            pass  # find the field below, for the message
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(value, 0, ())]
    while stack:
        v, depth, where = stack.pop()
        if isinstance(v, str):
            if bad := _lone_surrogate(v):
                half = f"a lone surrogate {bad!r} (half of a UTF-16 pair)"
                raise RecordError(f"{_path(where)} holds {half}, which UTF-8 cannot encode")
        elif isinstance(v, float):
            if not math.isfinite(v):
                name = "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
                raise RecordError(f"{_path(where)} is {name}, which standard JSON cannot hold")
        elif isinstance(v, dict | list):
            if depth >= MAX_DEPTH:
                raise RecordError(f"nested deeper than {MAX_DEPTH} levels")
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for k, x in items:
                if isinstance(k, str) and _lone_surrogate(k):
                    raise RecordError(f"a key in {_path(where)} holds a lone surrogate, which UTF-8 cannot encode")
                stack.append((x, depth + 1, (*where, k)))


def _lone_surrogate(text: str) -> str | None:
    """The first lone surrogate in `text`, if any (ASCII text, the common case, is known at once)."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as e:
        return text[e.start]


def _path(where: tuple[Any, ...]) -> str:
    """`conversations[2].value` for the keys and indexes down to a value."""
    if not where:
        return "the record"
    text = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in where).lstrip(".")
    return f"field {text!r}"


def _skip_bom(f: IO[bytes]) -> None:
    """Step past a UTF-8 byte-order mark at the start of the file, so no reader has to look for it per line."""
    if f.read(len(_BOM)) != _BOM:
        f.seek(0)


def _raw_jsonl(path: Path, limit: int) -> Iterator[_Raw]:
    index = 0
    with open(path, "rb") as f:
        _skip_bom(f)
        for line_no, chunk in enumerate(iter(lambda: f.readline(limit + 1), b""), 1):
            if len(chunk) > limit and not chunk.endswith(b"\n"):
                head, size = chunk[:2000].decode("utf-8", "replace"), len(chunk)
                while not chunk.endswith(b"\n") and (chunk := f.readline(1 << 20)):
                    size += len(chunk)
                yield _Raw(index, line_no, error=_over_limit(f"record is {size / 2**20:.1f} MB,", limit), text=head)
            elif chunk.isspace():
                continue
            else:
                yield _jsonl_record(index, line_no, chunk)
            index += 1


def _jsonl_record(index: int, line: int, chunk: bytes) -> _Raw:
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = chunk[e.start : e.start + 4]
        return _Raw(
            index,
            line,
            error=f"not valid UTF-8 (byte {e.start} of the line: {bad!r})",
            text=chunk.decode("utf-8", "replace"),
        )
    try:
        return _Raw(index, line, parse_json(text), text=text)
    except RecordError as e:
        return _Raw(index, line, error=str(e), text=text)


class _TextError(Exception):
    """The file's text cannot be read on from here."""


class _Text:
    """A growing window of a file's decoded text, addressed by absolute character positions."""

    def __init__(self, f: IO[bytes]):
        self._f, self._decode = f, codecs.getincrementaldecoder("utf-8")()
        self.buf, self.base, self.eof = "", 0, False
        self._at, self._line = 0, 1  # a position and its line number, moved forward as reading goes on
        self.bad_at: int | None = None  # where the first byte that is not UTF-8 is: reading ends there

    def more(self) -> bool:
        """Read the next block; False at the end of the file (or at a byte that is not UTF-8)."""
        if self.eof:
            return False
        block = self._f.read(_BLOCK)
        self.eof = not block
        try:
            self.buf += self._decode.decode(block, final=self.eof)
        except UnicodeDecodeError as e:  # keep the text before the bad byte, so the records there are read
            self.bad_at = self.base + len(self.buf) + len(e.object[: e.start].decode("utf-8"))
            self._bad = e.object[e.start : e.start + 1]
            self.buf += e.object[: e.start].decode("utf-8") + "\ufffd"
            self.eof = True
        return True

    def check(self, end: int) -> None:
        """Raise if the text up to `end` holds a byte that is not UTF-8."""
        if self.bad_at is not None and self.bad_at < end:
            raise _TextError(f"not valid UTF-8 (the byte {self._bad!r} on line {self.line_of(self.bad_at)})")

    def char(self, pos: int) -> str:
        """The character at `pos`, or "" past the end of the file."""
        while pos - self.base >= len(self.buf) and self.more():
            pass
        self.check(pos + 1)
        return self.buf[pos - self.base] if pos - self.base < len(self.buf) else ""

    def shown(self, pos: int, size: int = 2000) -> str:
        """The text from `pos`, for a reject."""
        return self.buf[pos - self.base : pos - self.base + size]

    def skip_space(self, pos: int) -> int:
        while (c := self.char(pos)) and c in " \t\r\n":  # JSON's whitespace, not all that isspace() allows
            pos = self.base + _SPACE.match(self.buf, pos - self.base).end()  # type: ignore[union-attr]
        return pos

    def line_of(self, pos: int) -> int:
        self._line += self.buf.count("\n", self._at - self.base, pos - self.base)
        self._at = pos
        return self._line

    def forget_before(self, pos: int) -> None:
        """Let go of the text before `pos` once it is large (memory stays flat over a long array)."""
        if pos - self.base > 4 * _BLOCK:
            self.line_of(pos)
            self.buf, self.base = self.buf[pos - self.base :], pos


_SPACE = re.compile(r"[ \t\r\n]*")
# A JSON string or a bracket: enough to find where a value that parses but is refused (too deep, a key twice)
# ends, so that reading goes on with the next record.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
_SCALAR = re.compile(r"[^,\]\s]*")


def _value_end(buf: str, start: int) -> int | None:
    """Where the JSON value at `start` ends, by matching brackets outside strings; None if it is cut off."""
    if buf[start] not in "[{":
        return _SCALAR.match(buf, start).end()  # type: ignore[union-attr]
    depth = 0
    for m in _TOKEN.finditer(buf, start):
        token = m.group()
        if token in ("[", "{"):
            depth += 1
        elif token in ("]", "}"):
            depth -= 1
            if depth == 0:
                return m.end()
    return None


def _raw_json(path: Path, limit: int) -> Iterator[_Raw]:
    """A JSON array's records, each parsed as strictly as a JSONL line (the same rules as `parse_json`).

    A record that parses but is refused (nested too deep, a key twice, a huge integer) costs only itself. A
    syntax error ends the file: there is no telling where the next record starts, so what follows becomes one
    rejected record naming the line where reading stopped; the records before it are read as usual.
    """
    decoder = json.JSONDecoder(object_pairs_hook=_pairs)
    index = pos = 0
    with open(path, "rb") as f:
        _skip_bom(f)
        text = _Text(f)
        try:
            pos = text.skip_space(0)
            if not text.char(pos):
                raise DataError(path, None, "the file is empty: it holds no records")
            if text.char(pos) != "[":
                raise DataError(
                    path, None, "expected a JSON array of records (for one record per line, name the file .jsonl)"
                )
            pos = text.skip_space(pos + 1)
            if text.char(pos) == "]":
                if text.char(tail := text.skip_space(pos + 1)):
                    yield _stopped(text, index, tail, "text after the array's closing ']'")
                return
            while True:
                raw, end = _json_item(text, decoder, index, pos, limit)
                yield raw
                if end is None:
                    return
                index += 1
                pos = text.skip_space(end)
                after = text.char(pos)
                if after == ",":
                    pos = text.skip_space(pos + 1)
                    text.forget_before(pos)
                    continue
                if after != "]":
                    problem = "expected ',' or ']' after a record" if after else "the file ends inside the array"
                    yield _stopped(text, index, pos, problem)
                elif text.char(tail := text.skip_space(pos + 1)):
                    yield _stopped(text, index, tail, "text after the array's closing ']'")
                return
        except _TextError as e:
            yield _stopped(text, index, pos, str(e))


def _json_item(text: _Text, decoder: json.JSONDecoder, index: int, pos: int, limit: int) -> tuple[_Raw, int | None]:
    """The record at `pos` and where it ends; None for the end when reading cannot go on past it."""
    line = text.line_of(pos)
    while True:
        at = pos - text.base
        try:
            record, end = decoder.raw_decode(text.buf, at)
            if end < len(text.buf) or not text.more():  # a number cut off at the block's end reads as shorter
                text.check(text.base + end)
                return _Raw(index, line, record), text.base + end
        except json.JSONDecodeError as e:
            text.check(text.base + len(text.buf))  # text ends at a bad byte: that is what cut the record off
            if len(text.buf) - at <= limit and text.more():
                continue  # the record may only be cut off at the block's end
            if len(text.buf) - at > limit:
                return _stopped(text, index, pos, _over_limit("the record is", limit)), None
            where = f"line {text.line_of(text.base + e.pos)} column {e.colno}"
            return _stopped(text, index, pos, f"invalid JSON: {e.msg} at {where}"), None
        except (RecursionError, ValueError) as e:
            problem = f"nested deeper than {MAX_DEPTH} levels" if isinstance(e, RecursionError) else _problem(e)
            end = _value_end(text.buf, at)
            if end is None and text.more():
                continue
            text.check(text.base + (end or len(text.buf)))
            raw = _Raw(index, line, error=problem, text=text.shown(pos))
            return raw, None if end is None else text.base + end


def _stopped(text: _Text, index: int, pos: int, problem: str) -> _Raw:
    """The rest of a file that cannot be read as records, as one rejected record."""
    message = f"{problem}; reading stopped there, the rest of the file is not read"
    return _Raw(index, text.line_of(pos), error=message, text=text.shown(pos))


class _CsvLines:
    """A CSV file's decoded lines, keeping those of the record being parsed so that the record can be parsed
    again, or given up and parsing resumed on its second line.

    Lines are decoded one at a time so that a bad byte costs its own record, not the rest of the file.
    """

    def __init__(self, f: IO[bytes]):
        self._f, self._number = f, 0
        self._again: deque[tuple[int, str, str | None]] = deque()
        self.record: list[tuple[int, str, str | None]] = []  # (line number, text, UTF-8 problem)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._again:
            item = self._again.popleft()
        else:
            data = next(self._f)
            self._number += 1
            try:
                item = (self._number, data.decode("utf-8"), None)
            except UnicodeDecodeError as e:
                problem = f"not valid UTF-8 (line {self._number}, byte {e.start}: {data[e.start : e.start + 4]!r})"
                item = (self._number, data.decode("utf-8", "replace"), problem)
        self.record.append(item)
        return item[1]

    def start(self) -> int:
        """Begin a record; returns its first line's number."""
        self.record = []
        return self._again[0][0] if self._again else self._number + 1

    def rewind(self) -> None:
        """Read the record's lines again."""
        self._again.extendleft(reversed(self.record))
        self.record = []

    def give_up(self) -> str:
        """Drop the record's first line and read its other lines again; returns the dropped record's text."""
        text = "".join(t for _, t, _ in self.record)
        self._again.extendleft(reversed(self.record[1:]))
        self.record = []
        return text

    def problem(self) -> str | None:
        return next((p for _, _, p in self.record if p), None)


def _csv_row(lines: _CsvLines, limit: int) -> list[str] | None:
    """The next record's cells (None at the end), or RecordError for a malformed record.

    A record is parsed strictly first. One that fails is parsed again as Python's csv does by default, which
    keeps a stray quote inside a quoted field as text (Defog's questions have `"... to be "in inventory" if
    ..."`), unless that reading runs over several lines: then a quote left open has swallowed the rows after
    it, and the record is malformed.
    """
    try:
        return next(csv.reader(lines, strict=True), None)
    except csv.Error as e:
        error = e
    lines.rewind()
    try:
        cells = next(csv.reader(lines, strict=False), None)
        if cells is not None and len(lines.record) == 1:
            return cells
    except csv.Error:
        pass
    if "field larger" in str(error):
        raise RecordError(_over_limit("a field is", limit))
    raise RecordError(f"malformed CSV: {error} (a quote left open?)")


def _raw_csv(path: Path, limit: int) -> Iterator[_Raw]:
    """Rows as dicts; columns named like a chat format's lists hold JSON (as `write_examples` writes them).

    A malformed record is rejected alone (see `_csv_row`) instead of silently taking the rows after it.
    """
    csv.field_size_limit(limit)
    with open(path, "rb") as f:
        _skip_bom(f)
        lines = _CsvLines(f)
        line = lines.start()
        try:
            header = _csv_row(lines, limit)
        except RecordError as e:
            raise DataError(path, None, f"the header is {e}", line=line) from None
        if header is None:
            return
        if problem := lines.problem():
            raise DataError(path, None, f"the header is {problem}")
        if twice := sorted({name for name in header if header.count(name) > 1}):  # one value would be lost
            raise DataError(path, None, f"the header names a column twice: {', '.join(map(repr, twice))}")
        index = 0
        while True:
            line = lines.start()
            try:
                if (cells := _csv_row(lines, limit)) is None:
                    return
            except RecordError as e:
                yield _Raw(index, line, error=str(e), text=lines.give_up())
                index += 1
                continue
            if not cells:
                continue
            text = json.dumps(cells, ensure_ascii=False)
            if undecodable := lines.problem():
                yield _Raw(index, line, error=undecodable, text=text)
            elif len(cells) != len(header):
                yield _Raw(index, line, error=f"has {len(cells)} cells but the header has {len(header)}", text=text)
            else:
                yield _csv_record(index, line, dict(zip(header, cells, strict=True)))
            index += 1


def _csv_record(index: int, line: int, row: dict[str, str]) -> _Raw:
    record: dict[str, Any] = dict(row)
    for key in _NESTED:
        value = row.get(key, "")
        if value.startswith("["):
            try:
                record[key] = parse_json(value)
            except RecordError as e:
                problem = f"column {key!r} is not valid JSON: {e}"
                return _Raw(index, line, error=problem, text=json.dumps(row, ensure_ascii=False))
    return _Raw(index, line, record)


def _without_nulls(value: Any) -> Any:
    """Columnar files give every row every column (null where it had none): drop those to restore the row."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _textual(kind: pa.DataType) -> bool:
    """Types whose Python values JSON cannot hold but whose text it can (not `is_temporal`: no interval casts)."""
    import pyarrow as pa

    t = pa.types
    return t.is_timestamp(kind) or t.is_date(kind) or t.is_time(kind) or t.is_duration(kind) or t.is_decimal(kind)


def _arrow_rows(tables: Iterable[pa.Table | pa.RecordBatch]) -> Iterator[_Raw]:
    """Rows of Arrow batches as JSON-ready dicts: dates, times and decimals become their text."""
    import pyarrow as pa

    index = 0
    for table in tables:
        columns = [c.cast(pa.string()) if _textual(c.type) else c for c in table.columns]
        for record in pa.Table.from_arrays(columns, names=table.schema.names).to_pylist():
            yield _Raw(index, None, _without_nulls(record))
            index += 1


def _raw_parquet(path: Path) -> Iterator[_Raw]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=_BATCH)
        yield from _arrow_rows(batches)
    except (pa.ArrowException, OSError) as e:
        raise DataError(path, None, f"not a readable Parquet file: {e}") from None


def _raw_hf(path: Path) -> Iterator[_Raw]:
    import pyarrow as pa
    from datasets import Dataset, load_from_disk

    try:
        ds = load_from_disk(str(path))
        if not isinstance(ds, Dataset):
            raise DataError(
                path, None, f"holds the splits {', '.join(ds)}; point at one of them, e.g. {path}/{next(iter(ds))}"
            )
        yield from _arrow_rows(ds.with_format("arrow").iter(batch_size=_BATCH))
    except FileNotFoundError as e:
        raise DataError(path, None, f"not a saved `datasets` directory ({e})") from None
    except (json.JSONDecodeError, pa.ArrowException, OSError) as e:  # a cut-off .arrow file, a broken state.json
        raise DataError(path, None, f"not a readable saved `datasets` directory: {e}") from None


def raw_records(path: Path, max_record_mb: float = 16.0) -> Iterator[_Raw]:
    """The file's records as parsed values (or the error that stopped a record), in file order."""
    if not path.exists():
        raise DataError(path, None, "no such file or directory")
    kind = container_of(path)
    limit = int(max_record_mb * 2**20)
    if kind != "hf" and path.stat().st_size == 0:
        raise DataError(path, None, "the file is empty: it holds no records")
    if kind == "jsonl":
        yield from _raw_jsonl(path, limit)
    elif kind == "json":
        yield from _raw_json(path, limit)
    elif kind == "csv":
        yield from _raw_csv(path, limit)
    elif kind == "parquet":
        yield from _raw_parquet(path)
    else:
        yield from _raw_hf(path)


# ---------------------------------------------------------------- examples


def _renamed(record: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = columns.get(key, key)
        if name in out:
            raise RecordError(f"renaming columns gives two fields named {name!r}")
        out[name] = value
    return out


def read_examples(
    path: Path | str, options: ReadOptions | None = None, reject: Callable[[Reject], None] | None = None
) -> Iterator[Example]:
    """Stream a dataset file as Examples.

    With `on_error="fail"` the first bad record raises DataError; with "skip" it goes to `reject` (if given)
    and reading goes on. Without a forced format the first readable record sets the file's format.
    """
    path = Path(path)
    opts = options or ReadOptions()
    fmt: Format | None = opts.format
    if fmt is not None and fmt not in FORMATS:
        raise DataError(path, None, f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if opts.on_error not in ON_ERROR:
        raise ValueError(f"on_error must be 'fail' or 'skip', not {opts.on_error!r}")
    stem = path.name if path.is_dir() else path.stem
    seen = 0
    for raw in raw_records(path, opts.max_record_mb):
        seen += 1
        try:
            if raw.error is not None:
                raise RecordError(raw.error)
            check_value(raw.record)
            example = _example(raw, opts, fmt, path, stem)
        except RecordError as e:
            if opts.on_error == "fail":
                raise DataError(path, raw.index, str(e), raw.line) from None
            if reject is not None:
                text = raw.text or json.dumps(raw.record, default=str)  # ASCII: lone surrogates stay escapes
                reject(Reject(str(path), raw.index, raw.line, str(e), text[: 1 << 20]))
            continue
        fmt = example.metadata["format"]
        yield example
    if seen == 0:
        raise DataError(path, None, "the file is empty: it holds no records")


def _example(raw: _Raw, opts: ReadOptions, fmt: Format | None, path: Path, stem: str) -> Example:
    """One parsed record as an Example in `fmt` (or the format it shows, when none is set yet)."""
    record = raw.record
    if opts.columns and isinstance(record, dict):
        record = _renamed(record, opts.columns)
    found = detect_format(record)
    target = fmt or found
    # A record sharing no field with the file's format is in none; one sharing some gets the precise problem.
    unrelated = isinstance(record, dict) and target is not None and not FORMAT_KEYS[target] & record.keys()
    if target is None or (found is None and unrelated):
        keys = sorted(record) if isinstance(record, dict) else f"a JSON {type(record).__name__}"
        raise RecordError(f"matches none of the formats ({', '.join(FORMATS)}): it has {keys}")
    if opts.format is None and found is not None and found != target:
        raise RecordError(f"is in {found} format but the file's records are {target} (set --format to force one)")
    meta = {"source": str(path), "index": raw.index, "format": target}
    try:
        return to_example(record, target, f"{stem}:{raw.index}", meta)
    except RecordError as e:
        raise RecordError(f"not a valid {target} record: {e}") from None


# ---------------------------------------------------------------- writing


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary sibling of `path` that replaces it only when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        if tmp.is_dir():
            old = path.with_name(f".{path.name}.old{os.getpid()}")
            if path.exists():
                path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


@contextmanager
def _atomic_text(path: Path, newline: str | None = None) -> Iterator[IO[str]]:
    """A UTF-8 text file that is on disk (fsync) before it replaces `path`, so a crash cannot leave it half."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline=newline) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def dumps(row: Any, where: Path | str = "") -> str:
    """Standard JSON only: NaN and infinities are refused, as no other JSON reader need accept them."""
    try:
        return json.dumps(row, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise RecordError(f"{where}: a value is NaN or infinite, which standard JSON cannot hold") from None


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write dicts one per line, atomically; returns the count."""
    n = 0
    with _atomic_text(path) as f:
        for row in rows:
            f.write(dumps(row, path) + "\n")
            n += 1
    return n


def _write_json(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    n = 0
    with _atomic_text(path) as f:
        f.write("[")
        for n, row in enumerate(rows, 1):
            f.write(("," if n > 1 else "") + "\n" + dumps(row, path))
        f.write("\n]\n")
    return n


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Read lmtailor's own JSONL files (ledgers, checkpoints, findings); a damaged line is a DataError naming
    the file and the line, as such files may also come from elsewhere (a findings file written by hand)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except (json.JSONDecodeError, RecursionError) as e:
                    raise DataError(path, None, f"line {number} is not JSON ({e})") from None


def _csv_cell(value: Any) -> str:
    return value if isinstance(value, str) else dumps(value)


def _batches(rows: Iterable[Any], size: int = _BATCH) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


Rows = list[dict[str, Any]]


@contextmanager
def _spool(
    rows: Iterable[dict[str, Any]], near: Path, seen: Callable[[Rows], None], replay: int = _BATCH
) -> Iterator[Iterator[Rows]]:
    """Stage rows on disk beside `near`, showing each batch to `seen`, then replay them in batches of `replay`.

    CSV and Arrow need every row's columns before they write the first one; staging keeps memory to a batch.
    """
    with tempfile.TemporaryFile("w+", encoding="utf-8", dir=near.parent) as f:
        for batch in _batches(rows):
            seen(batch)
            f.writelines(dumps(row, near) + "\n" for row in batch)
        f.seek(0)
        yield _batches(map(json.loads, f), replay)


def _write_csv(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    columns: dict[str, None] = {}

    def seen(batch: Rows) -> None:
        for row in batch:
            columns.update(dict.fromkeys(row))

    n = 0
    with (
        _spool(({k: _csv_cell(v) for k, v in row.items()} for row in rows), path, seen) as batches,
        _atomic_text(path, newline="") as f,
    ):
        writer = csv.DictWriter(f, list(columns))
        writer.writeheader()
        for batch in batches:
            writer.writerows(batch)
            n += len(batch)
    return n


@contextmanager
def _arrow_tables(
    path: Path, rows: Iterable[dict[str, Any]], fmt: Format, per_table: int = _BATCH
) -> Iterator[tuple[pa.Schema, Iterator[pa.Table]]]:
    """One schema for all rows (Arrow files have one), and the rows as tables of `per_table` in that schema.

    The schema starts from the format's own fields so that even an empty file has them.
    """
    import pyarrow as pa

    def table(batch: Rows, schema: pa.Schema | None = None) -> pa.Table:
        # Column by column: `Table.from_pylist` takes its columns from the first row and drops the rest.
        names = schema.names if schema else list(dict.fromkeys(k for row in batch for k in row))
        return pa.Table.from_pydict({k: [row.get(k) for row in batch] for k in names}, schema=schema)

    blank = Example("", [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}])
    schema = table([from_example(blank, fmt)]).schema

    def seen(batch: Rows) -> None:
        nonlocal schema
        schema = pa.unify_schemas([schema, table(batch).schema], promote_options="permissive")

    try:
        with _spool(rows, path, seen, per_table) as batches:
            yield schema, (table(batch, schema) for batch in batches)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise RecordError(f"{path}: the records do not fit one table (a field changes type?): {e}") from None


def _write_parquet(path: Path, rows: Iterable[dict[str, Any]], fmt: Format) -> int:
    import pyarrow.parquet as pq

    n = 0
    with (
        _arrow_tables(path, rows, fmt, _ROW_GROUP) as (schema, tables),
        atomic_path(path) as tmp,
        pq.ParquetWriter(tmp, schema) as writer,
    ):
        for table in tables:
            writer.write_table(table)
            n += table.num_rows
    return n


def _write_hf(path: Path, rows: Iterable[dict[str, Any]], fmt: Format) -> int:
    """Stage an Arrow stream that `datasets` memory-maps, so `save_to_disk` never holds the rows in memory."""
    import pyarrow as pa
    from datasets import Dataset

    n = 0
    with _arrow_tables(path, rows, fmt) as (schema, tables), tempfile.TemporaryDirectory(dir=path.parent) as folder:
        staged = str(Path(folder) / "data.arrow")
        with pa.OSFile(staged, "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            for table in tables:
                writer.write_table(table)
                n += table.num_rows
        with atomic_path(path) as tmp:
            # With no rows `datasets` would write no shard at all, and could not load the folder back.
            Dataset.from_file(staged).save_to_disk(str(tmp), num_shards=1 if n == 0 else None)
    return n


def check_target(source: Path, target: Path) -> None:
    """Refuse, before reading, a target under a file, a folder of other files, and one that is the source, holds
    it or lies in it: a conversion replaces the target whole once reading ends, destroying what was there."""
    if target.name in ("", ".."):  # '', '.', '/', 'a/..': a folder that holds others, never the output itself
        raise DataError(repr(str(target)), None, "names no output; give the converted file a name, e.g. out.jsonl")
    dst = target.resolve()
    blocker = next((p for p in dst.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise DataError(target, None, f"cannot be written: {blocker} is a file, not a folder")
    if source.exists():
        src = source.resolve()
        if (dst.exists() and dst.samefile(src)) or src in dst.parents or dst in src.parents:
            raise DataError(target, None, f"would overwrite the source {source}; write the conversion to another path")
    if dst.is_dir() and any(dst.iterdir()) and not (dst / "state.json").is_file():  # save_to_disk writes state.json
        raise DataError(
            target, None, "is a folder but not a saved `datasets` one; converting would replace it and all it holds"
        )


def write_examples(path: Path | str, examples: Iterable[Example], fmt: Format) -> int:
    """Write Examples in `fmt`, choosing the container by the path's suffix (a directory: `datasets`).

    The file appears only once every example is written: a failure leaves any previous file as it was.
    """
    path = Path(path)
    kind = container_of(path)
    if fmt not in FORMATS:
        raise RecordError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    rows = (from_example(ex, fmt) for ex in examples)
    if kind == "jsonl":
        return write_jsonl(path, rows)
    if kind == "json":
        return _write_json(path, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        return _write_csv(path, rows)
    if kind == "parquet":
        return _write_parquet(path, rows, fmt)
    return _write_hf(path, rows, fmt)
