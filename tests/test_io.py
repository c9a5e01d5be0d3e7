"""Reading and writing real files: each bad record located and explained, atomic writes, the real datasets."""

from __future__ import annotations

import json
import re
import signal
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import alpaca

from lmtailor.core.io import DataError, ReadOptions, Reject, read_examples, write_examples
from lmtailor.core.records import Example

GOOD = {"instruction": "Name a colour.", "input": "", "output": "Blue."}


def jsonl(*records: object) -> bytes:
    return b"".join(r if isinstance(r, bytes) else json.dumps(r).encode() + b"\n" for r in records)


def read_skipping(path: Path, **options: object) -> tuple[list[Example], list[Reject]]:
    rejects: list[Reject] = []
    good = list(read_examples(path, ReadOptions(on_error="skip", **options), rejects.append))  # type: ignore[arg-type]
    return good, rejects


def assert_fails_at(path: Path, index: int, problem: str, **options: object) -> DataError:
    with pytest.raises(DataError) as info:
        list(read_examples(path, ReadOptions(**options)))  # type: ignore[arg-type]
    message = str(info.value)
    assert str(path) in message and f"record {index}" in message and problem in message, message
    assert info.value.index == index
    return info.value


def assert_skips(path: Path, index: int, problem: str, total: int, **options: object) -> list[Example]:
    good, rejects = read_skipping(path, **options)
    assert [(r.index, r.source) for r in rejects] == [(index, str(path))]
    assert problem in rejects[0].reason
    assert index not in [ex.metadata["index"] for ex in good]
    assert len(good) + len(rejects) == total
    return good


# ---------------------------------------------------------------- JSONL: each defect, failing and skipping

BIG = 50 * 2**20

JSONL_DEFECTS = {
    "malformed JSON": (b'{"instruction": "a", "output": \n', "invalid JSON"),
    "wrong type": ({"instruction": 5, "output": "b"}, "field 'instruction' must be a string, got int"),
    "missing field": ({"instruction": "a", "input": ""}, "missing field 'output'"),
    "not an object": ([GOOD], "expected an object, got list"),
    "non-UTF-8": (b'{"instruction": "caf\xe9", "output": "b"}\n', "not valid UTF-8"),
    "in none of the formats": ({"question": "q", "answer": "a"}, "matches none of the formats"),
}


@pytest.mark.parametrize("defect", JSONL_DEFECTS)
def test_jsonl_defect_fails_with_file_record_and_problem(tmp_path: Path, defect: str) -> None:
    bad, problem = JSONL_DEFECTS[defect]
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl(GOOD, GOOD, bad, GOOD))
    error = assert_fails_at(path, 2, problem)
    assert error.line == 3


@pytest.mark.parametrize("defect", JSONL_DEFECTS)
def test_jsonl_defect_is_rejected_and_the_rest_read(tmp_path: Path, defect: str) -> None:
    bad, problem = JSONL_DEFECTS[defect]
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl(GOOD, GOOD, bad, GOOD))
    good = assert_skips(path, 2, problem, total=4)
    assert [ex.id for ex in good] == ["data:0", "data:1", "data:3"]


def test_a_50mb_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with open(path, "wb") as f:
        f.write(jsonl(GOOD) + b'{"instruction": "' + b"x" * BIG + b'", "output": "y"}\n' + jsonl(GOOD))
    assert_fails_at(path, 1, "record is 50.0 MB, over the 16 MB limit")
    good = assert_skips(path, 1, "max_record_mb", total=3)
    assert [ex.metadata["index"] for ex in good] == [0, 2]
    assert len(list(read_examples(path, ReadOptions(max_record_mb=64)))) == 3


def test_first_record_in_no_format_and_a_record_of_another_format(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(jsonl({"text": "hello"}, GOOD, {"prompt": "p", "completion": "c"}))
    good, rejects = read_skipping(path)
    assert [ex.id for ex in good] == ["mixed:1"]
    assert [r.index for r in rejects] == [0, 2]
    assert "matches none of the formats" in rejects[0].reason and "['text']" in rejects[0].reason
    assert "is in prompt_completion format but the file's records are alpaca" in rejects[1].reason
    forced = list(read_examples(path, ReadOptions(format="prompt_completion", on_error="skip")))
    assert [ex.id for ex in forced] == ["mixed:2"]


def test_blank_lines_are_not_records_but_line_numbers_count_them(tmp_path: Path) -> None:
    path = tmp_path / "gaps.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + jsonl(GOOD) + b"\n  \n" + jsonl({"instruction": "a"}))
    error = assert_fails_at(path, 1, "missing field 'output'")
    assert error.line == 4 and "record 1 (line 4)" in str(error)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("a.jsonl", b""),
        ("b.jsonl", b"\n \n"),
        ("c.json", b""),
        ("d.json", b" \n"),
        ("e.json", b"[ ]"),
        ("f.csv", b""),
        ("g.csv", b"instruction,output\r\n"),
    ],
)
def test_empty_files_say_so(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(f"{path}: the file is empty: it holds no records")):
        list(read_examples(path, ReadOptions(on_error="skip"), lambda r: None))


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        list(read_examples(tmp_path / "nope.jsonl"))
    (tmp_path / "data.txt").write_text("x")
    with pytest.raises(DataError, match=r"unknown file type '\.txt'"):
        list(read_examples(tmp_path / "data.txt"))


def test_unknown_format_and_policy_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(jsonl(GOOD))
    with pytest.raises(DataError, match="unknown format 'dolly'"):
        list(read_examples(path, ReadOptions(format="dolly")))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_error"):
        list(read_examples(path, ReadOptions(on_error="ignore")))  # type: ignore[arg-type]


def test_skip_without_a_callback_just_skips(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(jsonl(GOOD, b"{oops\n", GOOD))
    assert [ex.id for ex in read_examples(path, ReadOptions(on_error="skip"))] == ["d:0", "d:2"]


def test_renamed_columns_must_not_collide(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(
        jsonl(
            {"instruction": "a", "response": "b"},
            {"instruction": "a", "response": "b", "output": "c"},
        )
    )
    good, rejects = read_skipping(path, columns={"response": "output"})
    assert [ex.messages[-1]["content"] for ex in good] == ["b"]
    assert rejects[0].index == 1 and "two fields named 'output'" in rejects[0].reason


# ---------------------------------------------------------------- JSON arrays


def json_array(*records: object) -> bytes:
    items = (r if isinstance(r, bytes) else json.dumps(r).encode() for r in records)
    return b"[\n" + b",\n".join(items) + b"\n]\n"


@pytest.mark.parametrize("defect", ["wrong type", "missing field", "not an object", "in none of the formats"])
def test_json_record_defects_fail_or_skip(tmp_path: Path, defect: str) -> None:
    bad, problem = JSONL_DEFECTS[defect]
    path = tmp_path / "data.json"
    path.write_bytes(json_array(GOOD, GOOD, bad, GOOD))
    assert_fails_at(path, 2, problem)
    assert [ex.id for ex in assert_skips(path, 2, problem, total=4)] == ["data:0", "data:1", "data:3"]


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (b'{"instruction": "a", "output": }', "invalid JSON"),
        (b'{"instruction": "caf\xe9", "output": "b"}', "not valid UTF-8"),
    ],
)
def test_json_syntax_errors_end_the_file_even_when_skipping(tmp_path: Path, bad: bytes, problem: str) -> None:
    """After a syntax error there is no telling where the next record starts: with skip the records before it
    are kept and the rest of the file is one reject that names where reading stopped."""
    path = tmp_path / "broken.json"
    path.write_bytes(json_array(GOOD, GOOD, bad, GOOD))
    assert_fails_at(path, 2, problem)
    seen, rejects = read_skipping(path)
    assert [ex.id for ex in seen] == ["broken:0", "broken:1"]
    assert [(r.index, r.line) for r in rejects] == [(2, 4)]
    assert problem in rejects[0].reason and "the rest of the file is not read" in rejects[0].reason


def test_json_integers_past_64_bits_and_a_byte_order_mark(tmp_path: Path) -> None:
    """The C parser stops at a 64-bit overflow; reading goes on in Python without repeating a record."""
    path = tmp_path / "big.json"
    huge = 2**70
    path.write_bytes(b"\xef\xbb\xbf" + json_array(GOOD, {**GOOD, "n": huge}, {**GOOD, "n": -huge}, GOOD))
    read = list(read_examples(path))
    assert [ex.id for ex in read] == ["big:0", "big:1", "big:2", "big:3"]
    assert [ex.metadata.get("extra") for ex in read] == [None, {"n": huge}, {"n": -huge}, None]


def test_json_lines_in_a_json_file_get_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "lines.json"
    path.write_bytes(jsonl(GOOD, GOOD))
    with pytest.raises(DataError, match=r"expected a JSON array.*name the file \.jsonl"):
        list(read_examples(path))


# ---------------------------------------------------------------- CSV


def test_csv_defects_fail_or_skip(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(
        "\ufeffinstruction,input,output\r\n"
        'Name a colour.,,"Blue, mostly"\r\n'
        "too,many,cells,here\r\n"
        "too few\r\n".encode()
        + b"caf\xe9,,b\r\n"
        + b'multi,"line\r\ninput",ok\r\n'
    )
    good, rejects = read_skipping(path)
    assert [(r.index, r.line) for r in rejects] == [(1, 3), (2, 4), (3, 5)]
    problems = ["has 4 cells but the header has 3", "has 1 cells but the header has 3", "not valid UTF-8 (line 5"]
    assert all(problem in r.reason for problem, r in zip(problems, rejects, strict=True))
    assert [ex.id for ex in good] == ["data:0", "data:4"]
    assert good[0].messages[-1]["content"] == "Blue, mostly" and good[1].input == "line\r\ninput"
    assert_fails_at(path, 1, "has 4 cells")


def test_csv_nested_columns_are_json_and_checked(tmp_path: Path) -> None:
    rows = [
        json.dumps([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]),
        '[{"role": "user", "content": ',
        json.dumps([{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}]),
    ]
    path = tmp_path / "chat.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("messages,source\n" + "".join('"' + r.replace('"', '""') + '",web\n' for r in rows))
    good, rejects = read_skipping(path)
    assert [ex.id for ex in good] == ["chat:0"] and good[0].metadata["extra"] == {"source": "web"}
    assert [r.index for r in rejects] == [1, 2]
    assert "column 'messages' is not valid JSON" in rejects[0].reason
    assert "field 'content' must be a string, got int" in rejects[1].reason
    assert_fails_at(path, 1, "is not valid JSON")


def test_csv_with_no_known_columns(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    path.write_text("question,answer\nq1,a1\nq2,a2\n")
    assert_fails_at(path, 0, "matches none of the formats")
    good, rejects = read_skipping(path)
    assert not good and [r.index for r in rejects] == [0, 1]


def test_csv_field_over_the_limit_stops_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with open(path, "wb") as f:
        f.write(b"instruction,output\na,b\n" + b"x" * (2 * 2**20) + b",b\n")
    assert_fails_at(path, 1, "a field is over the 1 MB limit", max_record_mb=1)


# ---------------------------------------------------------------- Parquet and datasets directories


def test_parquet_defects_fail_or_skip(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"instruction": ["a", "b", None, "d"], "output": ["1", None, "3", "4"]}), path)
    assert_fails_at(path, 1, "missing field 'output'")
    good, rejects = read_skipping(path)
    assert [ex.id for ex in good] == ["data:0", "data:3"]
    assert [r.index for r in rejects] == [1, 2]
    assert "missing field 'output'" in rejects[0].reason
    assert "missing field 'instruction'" in rejects[1].reason


def test_parquet_wrong_type_and_no_format(tmp_path: Path) -> None:
    typed = tmp_path / "typed.parquet"
    pq.write_table(pa.table({"instruction": [1, 2], "output": ["a", "b"]}), typed)
    assert_fails_at(typed, 0, "field 'instruction' must be a string, got int")
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"question": ["q"], "answer": ["a"]}), other)
    assert_fails_at(other, 0, "matches none of the formats")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 but not really")
    with pytest.raises(DataError, match=r"corrupt\.parquet: not a readable Parquet file"):
        list(read_examples(corrupt))


def test_parquet_dates_durations_and_decimals_arrive_as_text(tmp_path: Path) -> None:
    """Examples must stay JSON-ready (checkpoints and JSONL output), which dates and decimals are not."""
    import datetime
    import decimal

    path = tmp_path / "typed.parquet"
    took = datetime.timedelta(seconds=5)
    row = {**GOOD, "when": datetime.date(2024, 2, 29), "took": took, "score": decimal.Decimal("0.5")}
    pq.write_table(pa.Table.from_pylist([row]), path)
    (ex,) = read_examples(path)
    assert ex.metadata["extra"] == {"when": "2024-02-29", "took": "5000000", "score": "0.5"}
    json.dumps(ex.to_json())


@pytest.mark.parametrize("name", ["empty.parquet", "emptydir", "empty.csv"])
def test_writing_nothing_gives_a_file_that_reads_as_empty(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert write_examples(path, [], "openai") == 0
    with pytest.raises(DataError, match="empty"):
        list(read_examples(path))


def test_datasets_directory_errors(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="not a saved `datasets` directory"):
        list(read_examples(tmp_path / "plain"))
    DatasetDict({"train": Dataset.from_list([GOOD])}).save_to_disk(str(tmp_path / "splits"))
    with pytest.raises(DataError, match="holds the splits train; point at one of them"):
        list(read_examples(tmp_path / "splits"))
    (ex,) = read_examples(tmp_path / "splits" / "train")
    assert ex.id == "train:0" and ex.messages[0]["content"] == GOOD["instruction"]


@pytest.mark.parametrize("damage", ["cut", "garbage", "state"])
def test_a_damaged_datasets_directory_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    from datasets import Dataset

    folder = tmp_path / "saved"
    Dataset.from_list([GOOD] * 200).save_to_disk(str(folder))
    (arrow,) = folder.glob("*.arrow")
    if damage == "cut":  # as a copy interrupted half way
        arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    elif damage == "garbage":
        arrow.write_bytes(b"not arrow at all")
    else:
        (folder / "state.json").write_text("{oops")
    with pytest.raises(DataError, match="not a readable saved `datasets` directory") as info:
        list(read_examples(folder))
    assert str(folder) in str(info.value)


# ---------------------------------------------------------------- atomic writes


def examples(n: int) -> list[Example]:
    return [alpaca(f"q{i}", f"a{i}", i=i) for i in range(n)]


def failing_after(n: int):
    yield from examples(n)
    raise RuntimeError("the source broke")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"dir" for p in folder.rglob("*")}


@pytest.mark.parametrize("name", ["out.jsonl", "out.json", "out.csv", "out.parquet", "outdir"])
def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "folder"
    path = folder / name
    assert write_examples(path, examples(5), "alpaca") == 5
    before = snapshot(folder)
    with pytest.raises(RuntimeError, match="the source broke"):
        write_examples(path, failing_after(3), "alpaca")
    assert snapshot(folder) == before
    three_turns = Example("t:9", [{"role": "user", "content": "q"}] * 3)
    with pytest.raises(ValueError, match="alternating"):
        write_examples(path, [*examples(3), three_turns], "alpaca")
    assert snapshot(folder) == before
    assert [ex.messages for ex in read_examples(path)] == [ex.messages for ex in examples(5)]


def test_a_write_replaces_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "outdir"
    write_examples(path, examples(5), "openai")
    write_examples(path, examples(2), "openai")
    assert len(list(read_examples(path))) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outdir"]


def test_records_that_do_not_fit_one_table(tmp_path: Path) -> None:
    mixed = [
        Example("t:0", examples(1)[0].messages, metadata={"extra": {"n": 1}}),
        Example("t:1", examples(1)[0].messages, metadata={"extra": {"n": "one"}}),
    ]
    with pytest.raises(ValueError, match=r"out.parquet: the records do not fit one table"):
        write_examples(tmp_path / "out.parquet", mixed, "alpaca")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- real data


def test_lima_json_with_history(shared_data: Path) -> None:
    path = shared_data / "lima" / "lima.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    read = list(read_examples(path))
    assert len(read) == len(raw) == 1029
    assert [ex.id for ex in read] == [f"lima:{i}" for i in range(1029)]
    assert all(ex.metadata["source"] == str(path) and ex.metadata["index"] == i for i, ex in enumerate(read))
    multi = [i for i, r in enumerate(raw) if r["history"]]
    assert len(multi) == 29
    i = multi[0]
    expected = [t for pair in raw[i]["history"] for t in pair] + [raw[i]["instruction"], raw[i]["output"]]
    assert [m["content"] for m in read[i].messages] == expected
    assert [m["role"] for m in read[i].messages] == ["user", "assistant"] * (len(expected) // 2)


def test_dolly_with_a_renamed_column(shared_data: Path) -> None:
    path = shared_data / "dolly" / "dolly_first6400.jsonl"
    with pytest.raises(DataError, match=r"record 0.*matches none of the formats"):
        next(read_examples(path))
    read = list(read_examples(path, ReadOptions(columns={"response": "output"})))
    assert len(read) == 6400
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    ex = read[0]
    assert ex.id == "dolly_first6400:0" and ex.metadata["format"] == "alpaca"
    assert ex.messages == [
        {"role": "user", "content": first["instruction"]},
        {"role": "assistant", "content": first["response"]},
    ]
    assert ex.metadata["extra"] == {"id": first["id"], "flan_t5_base_output": first["flan_t5_base_output"]}
    assert read[-1].id == "dolly_first6400:6399" and read[-1].metadata["index"] == 6399


def test_first_alpaca_records_stream(shared_data: Path) -> None:
    path = shared_data / "alpaca" / "alpaca_data_52k.jsonl"
    with open(path, encoding="utf-8") as f:
        raw = [json.loads(line) for line in islice(f, 500)]
    read = list(islice(read_examples(path), 500))
    assert [ex.id for ex in read] == [f"alpaca_data_52k:{i}" for i in range(500)]
    assert [ex.input for ex in read] == [r["input"] for r in raw]
    assert [ex.messages[-1]["content"] for ex in read] == [r["output"] for r in raw]
    assert all(ex.metadata["source"] == str(path) and ex.metadata["index"] == i for i, ex in enumerate(read))
    assert sum(bool(r["input"]) for r in raw) > 100


# ---------------------------------------------------------------- values no writer could pass on unchanged

DEEP = b"[" * 10_000 + b"]" * 10_000
REFUSED = {
    "nested 10,000 levels": (DEEP, "nested deeper than 100 levels"),
    "nested inside a field": (b'{"instruction": "a", "output": "b", "x": ' + DEEP + b"}", "nested deeper than 100"),
    "a 5,000-digit integer": (b'{"instruction": "a", "output": "b", "n": ' + b"9" * 5000 + b"}", "4300 digits"),
    "a lone surrogate": (b'{"instruction": "\\ud800 x", "output": "b"}', "field 'instruction' holds a lone surrogate"),
    "a lone surrogate in a turn": (
        b'{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "\\udfff"}]}',
        "field 'conversations[1].value' holds a lone surrogate",
    ),
    "NaN": (b'{"instruction": "a", "output": "b", "score": NaN}', "field 'score' is NaN"),
    "-Infinity": (b'{"instruction": "a", "output": "b", "score": -Infinity}', "field 'score' is -Infinity"),
    "a key twice": (b'{"instruction": "a", "output": "b", "output": "c"}', "the key 'output' appears twice"),
}


@pytest.mark.parametrize("defect", list(REFUSED))
@pytest.mark.parametrize("container", ["jsonl", "json"])
def test_values_json_cannot_carry_are_refused_at_read_time_alone(tmp_path: Path, defect: str, container: str) -> None:
    """One policy for every container: the record is rejected with its field, the records around it read."""
    bad, problem = REFUSED[defect]
    path = tmp_path / f"data.{container}"
    good = json.dumps(GOOD).encode()
    path.write_bytes(b"\n".join([good, bad, good]) + b"\n" if container == "jsonl" else json_array(GOOD, bad, GOOD))
    assert_fails_at(path, 1, problem)
    kept = assert_skips(path, 1, problem, total=3)
    assert [ex.id for ex in kept] == ["data:0", "data:2"]


def test_a_surrogate_pair_is_one_character_not_a_defect(tmp_path: Path) -> None:
    path = tmp_path / "emoji.jsonl"
    path.write_bytes(b'{"instruction": "\\ud83d\\ude00", "output": "b"}\n')
    assert next(read_examples(path)).messages[0]["content"] == "\U0001f600"


def test_parquet_nan_is_refused_and_written_json_stays_standard(tmp_path: Path) -> None:
    path = tmp_path / "scores.parquet"
    pq.write_table(pa.table({"instruction": ["a", "b"], "output": ["x", "y"], "score": [float("nan"), 1.0]}), path)
    kept = assert_skips(path, 0, "field 'score' is NaN", total=2)
    out = tmp_path / "out.jsonl"
    write_examples(out, kept, "alpaca")
    assert json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))["score"] == 1.0


def test_a_json_array_with_a_syntax_error_keeps_the_records_before_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(b"[\n" + json.dumps(GOOD).encode() + b",\n" + json.dumps(GOOD).encode() + b",\n{oops}\n]")
    seen, rejects = read_skipping(path)
    assert [ex.id for ex in seen] == ["broken:0", "broken:1"]
    assert [(r.index, r.line) for r in rejects] == [(2, 4)] and "{oops}" in rejects[0].raw


@pytest.mark.parametrize(
    ("tail", "problem"), [(b"", "the file ends inside the array"), (b"] trailing", "text after the array's")]
)
def test_a_json_array_that_is_cut_off_or_followed_by_text(tmp_path: Path, tail: bytes, problem: str) -> None:
    path = tmp_path / "cut.json"
    path.write_bytes(b"[" + json.dumps(GOOD).encode() + tail)
    seen, rejects = read_skipping(path)
    assert [ex.id for ex in seen] == ["cut:0"] and problem in rejects[0].reason


def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    """Like a key twice in a JSON record: a row would keep one of the two values and silently lose the other."""
    path = tmp_path / "twice.csv"
    path.write_text("instruction,output,output\nName a colour.,Blue.,Red.\n")
    with pytest.raises(DataError, match="the header names a column twice: 'output'") as info:
        list(read_examples(path, ReadOptions(on_error="skip")))
    assert str(path) in str(info.value)


def test_an_empty_json_array_followed_by_a_record_rejects_the_record(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_bytes(b"[]\n" + json.dumps(GOOD).encode())
    seen, rejects = read_skipping(path)
    assert seen == [] and "text after the array's closing ']'" in rejects[0].reason and rejects[0].line == 2


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x85", "\u2028", "\xa0", "\x1c"])
def test_space_that_json_does_not_allow_stops_reading_instead_of_hanging(tmp_path: Path, separator: str) -> None:
    """Python's isspace() holds for these, JSON's whitespace does not: reading once looped on them forever."""
    path = tmp_path / "space.json"
    path.write_text(f"[{json.dumps(GOOD)},{separator}{json.dumps(GOOD)}]", encoding="utf-8")

    def hung(signum: int, frame: object) -> None:
        raise AssertionError("reading hangs")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)  # a regression fails here instead of hanging the suite
    try:
        seen, rejects = read_skipping(path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert [ex.id for ex in seen] == ["space:0"] and "reading stopped" in rejects[0].reason


def test_csv_unterminated_quote_costs_its_record_not_the_rows_after_it(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('instruction,input,output\nfirst,,"left open\nsecond,,two\nthird,,three\n')
    assert_fails_at(path, 0, "malformed CSV")
    good, rejects = read_skipping(path)
    assert [(r.index, r.line) for r in rejects] == [(0, 2)] and "quote left open" in rejects[0].reason
    assert [ex.messages[0]["content"] for ex in good] == ["second", "third"]
    assert [ex.metadata["index"] for ex in good] == [1, 2]


def test_csv_stray_quotes_on_one_line_read_as_before(tmp_path: Path, shared_data: Path) -> None:
    """Defog's questions hold `"... to be "in inventory" if ..."`: one line, so no row was swallowed, and the
    field reads as Python's csv has always read it."""
    path = shared_data / "text2sql" / "defog" / "questions_gen_postgres.csv"
    read = list(read_examples(path, ReadOptions(columns={"question": "instruction", "query": "output"})))
    assert len(read) == 210
    assert any('be in inventory" if is_in_inventory is True."' in ex.messages[0]["content"] for ex in read)
