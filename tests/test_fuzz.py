"""Property-based fuzzing of `lmtailor curate` over hostile JSONL, JSON arrays and CSV.

The promise under test: bad input gets a clear error or a reject with its reason, and nothing is lost. Whatever
a file holds, `curate --on-error skip` exits 0, `--on-error fail` exits 0 or 2 with one `error:` line (never a
traceback), the manifest adds up, every record of the file appears exactly once (kept, dropped in the ledger, or
rejected with a reason), everything written is standard JSON and UTF-8, and a second run writes the same bytes.

Hypothesis builds each dataset from operations: alpaca records of arbitrary Unicode (lone surrogates, control
and zero-width characters, rich markup such as `[/b]`, very long words, empty strings), records with fields of
the wrong type, lines that are not JSON or not records (5,000-digit integers, nesting 10,000 deep, NaN, a key
twice, bytes that are not UTF-8, records cut short), blank lines, and exact or near copies of earlier records
(for the dedup steps). Each file's number of records is known from how it was written.
"""

from __future__ import annotations

import csv
import io
import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from lmtailor.cli import app

runner = CliRunner()
STEPS = "normalize,exact_dedup,near_dedup,filter"
SECONDS = 15  # one curate of these small files takes well under a second; past this it hangs
FUZZ = settings(
    max_examples=35,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

DEEP = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a": ' * 10_000 + b"1" + b"}" * 10_000
HUGE = b"1" + b"0" * 5000  # 10**5000, written out
# Valid JSON that is not a good record: each is one record, rejected (or, for a wrong type, maybe coerced).
ODD = [
    b"[1, 2, 3]",
    b'"just a string"',
    b"null",
    b"42",
    b"{}",
    DEEP,
    DEEP_OBJECT,
    b'{"instruction": "a", "output": ' + DEEP + b"}",
    b'{"instruction": "a", "output": "b", "n": ' + HUGE + b"}",
    b'{"instruction": ' + HUGE + b', "output": "b"}',
    b'{"instruction": "a", "output": NaN}',
    b'{"instruction": "a", "output": "b", "x": Infinity}',
    b'{"instruction": "a", "output": "b", "x": -Infinity}',
    b'{"instruction": "a", "output": "b", "output": "c"}',
    b'{"instruction": "a", "instruction": "a", "output": "b"}',
    b'{"instruction": "\\ud800", "output": "b"}',
    b'{"instruction": "a", "output": "\\udfff\\ud800"}',
    b'{"conversations": [{"from": "[/b]", "value": "q"}, {"from": "gpt", "value": "a"}]}',
    b'{"prompt": "p", "completion": "c"}',  # another format than the file's
]
# Not JSON, or not UTF-8: in JSONL each is one rejected line; in a JSON array reading stops there.
BROKEN = [
    b'{"instruction": "a", "output": ',
    b"{oops}",
    b'{"instruction": "a" "output": "b"}',
    b"[1, 2,]",
    b"nul",
    b"{'instruction': 'single quotes'}",
    b'{"instruction": "caf\xe9", "output": "latin-1"}',
    b'{"instruction": "\xff\xfe", "output": "b"}',
    b'{"instruction": "\xe2\x82", "output": "a cut multibyte character"}',
    b'{"instruction": "\xed\xa0\x80", "output": "a surrogate as UTF-8 bytes"}',
    b"\xef\xbb\xbf" + b'{"instruction": "a BOM mid-file", "output": "b"}',
]
BLANK = [b"", b" ", b"\t", b"  \t  ", b" \r"]

PIECES = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=10),  # every code point, lone surrogates included
    st.sampled_from(["\ud800", "\udfff", "\udbff\udc00", "\x00", "\x07", "\x1b", "\x7f", "\x85", "\u2028"]),
    st.sampled_from(["\u200b", "\u200d", "\u2060", "\ufeff", "\u202e", "e\u0301", "\U0001f600"]),
    st.sampled_from(["[/b]", "[red]", "[bold]x[/]", "[/]", "[link=x]", "\\[", "<noinput>", "N/A", "  ", "\n", "\t"]),
    st.sampled_from(["Name a dog breed.", "Write a haiku about rain.", "List three primes.", "Beagle.", "2, 3, 5."]),
    st.integers(100, 3000).map(lambda n: "x" * n),  # a very long word
    st.just(""),
)
TEXT = st.lists(PIECES, max_size=6).map("".join)
RECORD = st.fixed_dictionaries({"instruction": TEXT, "output": TEXT}, optional={"input": TEXT})
WRONG = st.one_of(
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False),  # infinities included: json.dumps writes them as Infinity
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
TYPED = st.tuples(RECORD, st.sampled_from(["instruction", "input", "output"]), WRONG).map(
    lambda t: {**t[0], t[1]: t[2]}
)
COPY = st.integers(0, 40)
# One operation per record (or blank line); the renderers below turn them into a file.
OP = st.one_of(
    RECORD.map(lambda r: ("record", r)),
    RECORD.map(lambda r: ("record", r)),
    TYPED.map(lambda r: ("record", r)),
    st.sampled_from(ODD).map(lambda b: ("odd", b)),
    st.sampled_from(BROKEN).map(lambda b: ("broken", b)),
    st.tuples(RECORD, st.integers(1, 10**6)).map(lambda t: ("cut", *t)),
    COPY.map(lambda i: ("copy", i)),
    st.tuples(COPY, TEXT).map(lambda t: ("near", *t)),
    st.sampled_from(BLANK).map(lambda b: ("blank", b)),
)
OPS = st.lists(OP, min_size=1, max_size=14)
ENDINGS = ["close", "close", "close", "open", "trailing"]
SEED = {"instruction": "Name a colour.", "input": "", "output": "Blue is a colour."}


def dumps(record: Any) -> bytes:
    """JSON as a user's tool writes it: ASCII only, so a lone surrogate stays a `\\ud800` escape."""
    return json.dumps(record, ensure_ascii=True).encode()


def _resolve(ops: list[tuple]) -> Iterator[tuple]:
    """Turn copies into the records they copy: ("record", dict) for an exact copy, a near copy with text
    appended to its output. Copies refer to earlier records (the seed record when there is none)."""
    records: list[dict] = []
    for op in ops:
        if op[0] in ("copy", "near"):
            base = records[op[1] % len(records)] if records else SEED
            op = ("record", base) if op[0] == "copy" else ("record", {**base, "output": f"{base['output']} {op[2]}"})
        if op[0] == "record" and all(isinstance(v, str) for v in op[1].values()):
            records.append(op[1])
        yield op


# ------------------------------------------------------------------ the three file shapes


def jsonl_file(ops: list[tuple], path: Path) -> dict:
    """One line per op. Every line that is not blank is one record; `lines` maps record index -> line number."""
    rows, lines = [], {}
    for op in _resolve(ops):
        if op[0] == "record":
            row = dumps(op[1])
        elif op[0] == "cut":  # a record cut short, never to nothing (that would be a blank line)
            row = dumps(op[1])[: op[2] % len(dumps(op[1])) or 1]
        else:
            row = op[1]
        rows.append(row)
        if row.strip():
            lines[len(lines)] = len(rows)
    path.write_bytes(b"\n".join(rows) + b"\n")
    return {"records": {len(lines)}, "lines": lines}


SEPARATORS = [b",", b", ", b",\n", b"\n,\t", b",\r\n  "]
# Not JSON whitespace (str.isspace() holds for all but the last): reading must stop there, not hang.
BAD_SEPARATORS = [b",\x0b", b"\x0c,", b",\xc2\x85", b",\xe2\x80\xa8", b",\xc2\xa0", b",\x1c", b",\x00"]


def json_file(ops: list[tuple], path: Path, separators: list[int], ending: str) -> dict:
    """A JSON array, an element per op (blank ops add whitespace instead). Records are counted the way the
    format allows: a syntax error ends reading, and the rest of the file is one rejected record; so are a
    missing `]` and text after it. A separator that is not JSON whitespace may be read as whitespace or as
    an error; both counts are accepted."""
    parts: list[bytes] = []
    fatal: int | None = None  # the first element where reading must stop
    loose: int | None = None  # the first element preceded by a separator that is not JSON whitespace
    n = 0
    for i, op in enumerate(_resolve(ops)):
        kind = op[0]
        if kind == "blank":
            parts.append(b" \n\t")
            continue
        if n:
            choice = separators[i % len(separators)] if separators else 0
            sep = (SEPARATORS + BAD_SEPARATORS)[choice % (len(SEPARATORS) + len(BAD_SEPARATORS))]
            parts.append(sep)
            if sep in BAD_SEPARATORS and loose is None:
                loose = n
        if kind == "record":
            parts.append(dumps(op[1]))
        elif kind == "cut":
            full = dumps(op[1])
            parts.append(full[: op[2] % (len(full) - 1) or 1])
        else:
            parts.append(op[1])
        if fatal is None and (kind in ("cut", "broken")):
            fatal = n
        n += 1
    body = b"".join(parts)
    tail = {"close": b"]\n", "open": b"\n", "trailing": b']\n{"instruction": "after", "output": "the end"}\n'}[ending]
    path.write_bytes(b"[" + body + tail)

    def count(stop: int | None) -> int:
        if stop is not None:
            return stop + 1
        return n + (ending != "close")

    stops = [x for x in (fatal, loose) if x is not None]
    strict = count(min(stops) if stops else None)
    return {"records": {strict, count(fatal)}, "stops": fatal if loose is None else None}


def csv_file(ops: list[tuple], path: Path) -> dict:
    """A CSV file with an alpaca header, a row per op. Broken rows are ragged, not UTF-8, or open a quote that
    is never closed (after which rows are written without quotes, so the open one cannot end in them). Rows
    are records; blank lines are not."""
    out = io.BytesIO()
    out.write(b"instruction,input,output\n")
    records = 0
    quote_open = False

    def row(cells: list[str]) -> bytes:
        if quote_open:  # nothing that could close the open quote, or need quoting
            cells = [c.translate({ord(ch): " " for ch in '",\r\n'}) for c in cells]
        text = io.StringIO()
        # Python 3.11's writer quotes only the characters of its line terminator: with "\n" a bare "\r" would go
        # unquoted, which is not CSV (readers disagree on it). Write "\r\n" so it is quoted, then end on "\n".
        csv.writer(text, lineterminator="\r\n").writerow(cells)
        line = text.getvalue().removesuffix("\r\n") + "\n"
        return line.encode("utf-8", "surrogatepass")  # a lone surrogate becomes bytes that are not UTF-8

    for op in _resolve(ops):
        kind = op[0]
        if kind == "blank":
            out.write(b"\n")
            continue
        records += 1
        if kind == "record":
            r = op[1]
            out.write(row([_cell(r.get("instruction")), _cell(r.get("input", "")), _cell(r.get("output"))]))
        elif kind == "cut":
            out.write(row([_cell(op[1]["instruction"]), _cell(op[1]["output"])]))  # two cells of three
        elif kind == "odd":
            out.write(row(["a", "b", "c", f"{len(op[1])} cells of three"]))
        elif op[1][:1] in (b"{", b"["):  # broken: an open quote, a bad byte, a record that is not a row
            variant = len(op[1]) % 3
            if variant == 0:
                out.write(b'"left open,,' + op[1].replace(b'"', b"").replace(b"\n", b"") + b"\n")
                quote_open = True
            elif variant == 1:
                out.write(b"caf\xe9,,\xff\xfe latin-1 and stray bytes\n")
            else:
                out.write(b"one cell only\n")
        else:
            out.write(b"a,,b,\n")  # a trailing comma: four cells
    path.write_bytes(out.getvalue())
    return {"records": {records}}


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# ------------------------------------------------------------------ running and checking


class Hang(BaseException):
    """A run past its time. Not an Exception (TimeoutError is an OSError, which the CLI reports as a clean
    error), so neither the CLI nor CliRunner catches it."""


@contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    """Fail a run that hangs instead of hanging the suite (SIGALRM interrupts a pure-Python loop)."""

    def expire(signum: int, frame: object) -> None:
        raise Hang(f"curate ran past {seconds} s: it hangs")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def curate(src: Path, out: Path, on_error: str) -> Result:
    args = ["curate", str(src), "--out", str(out), "--steps", STEPS, "--on-error", on_error, "--no-progress"]
    try:
        with _time_limit(SECONDS):
            result = runner.invoke(app, args)
    except Hang as e:
        raise AssertionError(f"{e}: curate {src.name} --on-error {on_error}") from None
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), _traceback(result)
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), f"not one error line: {result.output!r}"
    return result


def _traceback(result: Result) -> str:
    import traceback

    assert result.exc_info is not None
    return "".join(traceback.format_exception(*result.exc_info))[-3000:]


def strict_rows(path: Path) -> list[Any]:
    """A file's JSON lines, parsed as standard JSON (no NaN or Infinity) from strict UTF-8. Lines are split on
    newlines only: str.splitlines would also split at U+0085 or U+2028, which JSON strings may hold as they are."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"{path.name}: non-standard JSON constant {constant} written")

    text = path.read_bytes().decode("utf-8")  # strict: raises on bytes that are not UTF-8
    return [json.loads(line, parse_constant=refuse) for line in text.split("\n") if line]


def _utf8(value: Any) -> bool:
    """No lone surrogate anywhere in a parsed value (a `\\ud800` escape would parse into one)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return True
        except UnicodeEncodeError:
            return False
    if isinstance(value, dict):
        return all(_utf8(k) and _utf8(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_utf8(v) for v in value)
    return True


def check_run(src: Path, tmp: Path, expected: dict) -> None:
    """Curate `src` with --on-error fail and twice with skip, and hold every promise about the runs."""
    failing = curate(src, tmp / "fail", "fail")
    if failing.exit_code == 0:
        counts = json.loads((tmp / "fail" / "manifest.json").read_text())["counts"]
        assert counts["rejected"] == 0 and counts["accounted"], counts
        assert counts["input"] in expected["records"], (counts, expected)
    else:
        assert str(src) in failing.output or src.name in failing.output, failing.output

    runs = [tmp / "a", tmp / "b"]
    results = [curate(src, run, "skip") for run in runs]
    if results[0].exit_code == 2:  # only a file of no records at all is an error with skip
        assert expected["records"] == {0}, f"--on-error skip refused a file of {expected['records']} records: " + (
            results[0].output
        )
        assert results[1].exit_code == 2
        return
    assert all(r.exit_code == 0 for r in results), [r.output for r in results]

    run = runs[0]
    manifest = json.loads((run / "manifest.json").read_text())
    c = manifest["counts"]
    assert c["accounted"] is True, c
    assert c["input"] == c["kept"] + c["dropped"] + c["rejected"] - c["added"], c
    assert c["input"] in expected["records"], f"the file holds {expected['records']} records, the manifest {c}"
    records = c["input"]

    ledger, rejects = strict_rows(run / "ledger.jsonl"), strict_rows(run / "rejects.jsonl")
    stem = src.stem
    dropped = [int(e["id"].rpartition(":")[2]) for e in ledger if e["action"] == "drop"]
    assert all(e["id"].rpartition(":")[0] == stem for e in ledger), ledger
    rejected = [r["index"] for r in rejects]
    seen = dropped + rejected
    assert len(seen) == len(set(seen)), f"a record dropped or rejected twice: {sorted(seen)}"
    assert set(seen) <= set(range(records)), f"indexes past the {records} records: {sorted(seen)}"
    assert len(seen) + c["kept"] == records, (c, sorted(dropped), sorted(rejected))
    assert len(rejected) == c["rejected"] and len(dropped) == c["dropped"], c
    assert all(isinstance(r["reason"], str) and r["reason"].strip() for r in rejects), rejects
    assert all(e["reason"] for e in ledger), ledger
    if "lines" in expected:  # JSONL: each reject names the line its record is on
        assert all(r["line"] == expected["lines"][r["index"]] for r in rejects), (expected["lines"], rejects)
    if expected.get("stops") is not None:  # a JSON array's syntax error: only there does reading stop
        stop = expected["stops"]
        assert all("reading stopped" not in r["reason"] for r in rejects if r["index"] < stop), rejects

    kept = strict_rows(run / manifest["output"]["path"])
    assert len(kept) == c["kept"] == manifest["output"]["records"], c
    assert all(isinstance(r, dict) and _utf8(r) for r in kept), kept
    strict_rows(run / "clusters.jsonl")

    for name in (manifest["output"]["path"], "ledger.jsonl", "rejects.jsonl", "clusters.jsonl"):
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), f"{name} differs between two runs"


# ------------------------------------------------------------------ the tests

NOTHING_READABLE = [("broken", b"{oops"), ("odd", b"[1]"), ("odd", b"null"), ("broken", b"\xff")]
SURROGATE = [("record", {"instruction": "\ud800", "output": "b"}), ("record", SEED)]
HUGE_AND_DEEP = [("odd", ODD[8]), ("odd", DEEP), ("odd", ODD[7]), ("record", SEED), ("copy", 0)]


@FUZZ
@given(ops=OPS)
@example(ops=NOTHING_READABLE)  # every record rejected: the stream into near_dedup is empty
@example(ops=SURROGATE)
@example(ops=HUGE_AND_DEEP)  # a 5,000-digit integer, nesting 10,000 deep
@example(ops=[("blank", b""), ("blank", b"  ")])  # no records at all
def test_jsonl_every_line_is_kept_dropped_or_rejected(tmp_path_factory, ops: list[tuple]) -> None:
    tmp = tmp_path_factory.mktemp("jsonl")
    src = tmp / "data.jsonl"
    check_run(src, tmp, jsonl_file(ops, src))


@FUZZ
@given(ops=OPS, separators=st.lists(st.integers(0, 100), max_size=5), ending=st.sampled_from(ENDINGS))
@example(ops=NOTHING_READABLE[1:3], separators=[], ending="close")  # every record rejected
@example(ops=SURROGATE, separators=[], ending="close")
@example(ops=HUGE_AND_DEEP, separators=[], ending="close")
@example(ops=[("record", SEED), ("broken", b"{oops}"), ("record", SEED)], separators=[], ending="close")
@example(ops=[("record", SEED), ("record", SEED)], separators=[len(SEPARATORS)], ending="close")  # `,\x0b`
@example(ops=[("blank", b"")], separators=[], ending="trailing")  # `[]` and a record after it
def test_json_array_every_element_is_kept_dropped_or_rejected(
    tmp_path_factory, ops: list[tuple], separators: list[int], ending: str
) -> None:
    tmp = tmp_path_factory.mktemp("json")
    src = tmp / "data.json"
    check_run(src, tmp, json_file(ops, src, separators, ending))


@FUZZ
@given(ops=OPS)
@example(ops=NOTHING_READABLE)
@example(ops=SURROGATE)
@example(ops=[("record", SEED), ("broken", b"{" * 3), ("record", SEED), ("near", 0, "too"), ("record", SEED)])
@example(ops=[("record", {"instruction": "\r", "output": "\n"}), ("record", SEED)])  # a carriage return in a cell
def test_csv_every_row_is_kept_dropped_or_rejected(tmp_path_factory, ops: list[tuple]) -> None:
    tmp = tmp_path_factory.mktemp("csv")
    src = tmp / "data.csv"
    check_run(src, tmp, csv_file(ops, src))
