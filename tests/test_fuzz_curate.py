"""Property-based fuzzing of `lmtailor curate` over hostile JSONL: whatever the records, the run exits 0 (or
2 with a one-line error), accounts for every line exactly once, writes standard JSON, and repeats itself byte
for byte.

Records mix alpaca dicts of arbitrary Unicode (lone surrogates, control and zero-width characters, markup
brackets) with lines that are broken in every way the reliability issue found: bad JSON, non-objects, wrong
types, 5,000-digit integers, nesting 10,000 levels deep, NaN, keys twice, bytes that are not UTF-8, blank
lines, and copies of earlier records for the dedup steps.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from lmtailor.cli import app

runner = CliRunner()
STEPS = "normalize,exact_dedup,near_dedup,filter"
BROKEN = [
    b'{"instruction": "a", "output": ',
    b"[1, 2, 3]",
    b'"just a string"',
    b"null",
    b"{}",
    b'{"instruction": 5, "output": "b"}',
    b'{"instruction": "a", "output": ["b"]}',
    b'{"instruction": "a", "output": "b", "n": ' + b"9" * 5000 + b"}",
    b"[" * 10_000 + b"]" * 10_000,
    b'{"instruction": "a", "output": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    b'{"instruction": "a", "output": "b", "x": NaN}',
    b'{"instruction": "a", "output": "b", "output": "c"}',
    b'{"instruction": "caf\xe9", "output": "b"}',
    b'{"instruction": "\\ud800", "output": "b"}',
    b'{"conversations": [{"from": "[/b]", "value": "q"}]}',
    b'{"prompt": "p", "completion": "c"}',  # another format than the file's: a clean reject
]
TEXT = st.lists(
    st.one_of(
        st.text(st.characters(exclude_categories=()), max_size=8),  # every code point, lone surrogates included
        st.sampled_from(["\x00", "\x07", "\u200b", "\ufeff", "[/b]", "[red]", "  ", "\n", "<noinput>", "N/A"]),
        st.sampled_from(["Name a dog breed.", "Write a haiku about rain.", "List three primes."]),
    ),
    max_size=6,
).map("".join)
RECORD = st.fixed_dictionaries({"instruction": TEXT, "input": TEXT, "output": TEXT})
LINE = st.one_of(
    RECORD.map(lambda r: json.dumps(r).encode()),  # ASCII JSON: surrogates stay \\ud800 escapes
    st.sampled_from(BROKEN),
    st.just(b"   "),
    st.integers(min_value=0, max_value=30),  # a copy of an earlier line
)


def _lines(choices: list[bytes | int]) -> list[bytes]:
    out: list[bytes] = []
    for c in choices:
        out.append(out[c % len(out)] if isinstance(c, int) and out else c if isinstance(c, bytes) else b"")
    return out


def _rows(path: Path) -> list[object]:
    """The file's JSON lines, split on newlines only (str.splitlines would also split at U+0085 or U+2028,
    which JSON strings may hold as they are)."""
    return [_strict(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def _strict(line: str) -> object:
    def refuse(constant: str) -> object:
        raise AssertionError(f"non-standard JSON constant {constant} written")

    return json.loads(line, parse_constant=refuse)


def _curate(src: Path, out: Path, on_error: str):
    return runner.invoke(app, ["curate", str(src), "--out", str(out), "--steps", STEPS, "--on-error", on_error,
                               "--no-progress"])  # fmt: skip


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(choices=st.lists(LINE, min_size=1, max_size=12))
@example(choices=[b"{}", b"{}"])  # every record rejected: an empty stream through near dedup
@example(
    choices=[b'{"instruction": "\\ud800", "output": "b"}', json.dumps({"instruction": "x", "output": "y"}).encode()]
)
@example(choices=[BROKEN[7], BROKEN[8], BROKEN[9]])  # a huge integer and deep nesting
def test_curate_accounts_for_every_line_whatever_it_holds(tmp_path_factory, choices: list[bytes | int]) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    lines = _lines(choices)
    src = tmp / "data.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    records = sum(1 for line in lines if line.strip())

    failing = _curate(src, tmp / "fail", "fail")
    assert failing.exit_code in (0, 2), failing.output
    assert failing.exception is None or isinstance(failing.exception, SystemExit), failing.output
    assert "Traceback" not in failing.output
    if failing.exit_code == 2:
        assert failing.output.startswith("error:") and "data.jsonl" in failing.output

    if records == 0:  # blank lines only: a file of no records is an error, not an empty dataset
        assert failing.exit_code == 2 and "holds no records" in failing.output
        return
    runs = [tmp / "a", tmp / "b"]
    for run in runs:
        result = _curate(src, run, "skip")
        assert result.exit_code == 0, result.output
    run = runs[0]
    manifest = json.loads((run / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["accounted"] and counts["input"] == records
    assert counts["kept"] + counts["dropped"] + counts["rejected"] == records
    ledger, rejects = _rows(run / "ledger.jsonl"), _rows(run / "rejects.jsonl")
    dropped = {int(e["id"].rpartition(":")[2]) for e in ledger if e["action"] == "drop"}
    rejected = {r["index"] for r in rejects}
    assert not dropped & rejected and len(dropped) + len(rejected) + counts["kept"] == records
    assert all(r["reason"] for r in rejects) and all(e["reason"] for e in ledger)
    kept = _rows(run / "curated.jsonl")
    assert len(kept) == counts["kept"] and all(isinstance(r, dict) for r in kept)
    for name in ("curated.jsonl", "ledger.jsonl", "rejects.jsonl", "clusters.jsonl"):
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name
