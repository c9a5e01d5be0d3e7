"""Property tests: each format survives each container, and conversions between formats where lossless.

Generated examples hold what real data holds: any unicode, newlines, quotes and commas, empty strings where
a format allows them, multi-turn conversations, system prompts, unknown fields (kept in metadata["extra"])
and per-turn fields in the chat formats. What each container can carry decides the extras generated:
JSON carries any JSON value; Parquet and `datasets` carry one type per column (a null there is an absent
field); CSV carries text in a fixed set of columns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmtailor.core.io import read_examples, write_examples
from lmtailor.core.records import FORMAT_KEYS, FORMATS, Example

CONTAINERS = {"jsonl": "data.jsonl", "json": "data.json", "csv": "data.csv", "parquet": "data.parquet", "hf": "data"}
EXAMPLES = {"jsonl": 40, "json": 40, "csv": 40, "parquet": 15, "hf": 15}
RESERVED = frozenset().union(*FORMAT_KEYS.values())

TRICKY = [
    "",
    " ",
    ",",
    '"',
    "'",
    "\n",
    "\r\n",
    "\r",
    "\t",
    '"quoted, with comma"\n',
    "é",
    "中文",
    "🙂",
    "\\",
    "[x]",
    "null",
    "{}",
    "\u2028",
    "a\x00b",
    "=1+1",
]
text = st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=40), st.sampled_from(TRICKY))
nonempty = text.filter(bool)
keys = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(lambda k: k not in RESERVED)
int64 = st.integers(-(2**63), 2**63 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | int64 | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
)
# One type per key, as a column has: the generator picks the type, each example a value of it.
COLUMN_VALUES = [text, int64, st.booleans(), st.lists(text, max_size=3)]


def extras(container: str) -> st.SearchStrategy[st.SearchStrategy[dict[str, Any]]]:
    """A strategy for one dataset's extras strategy (so column types stay fixed across its examples)."""
    if container in ("jsonl", "json"):
        return st.just(st.dictionaries(keys, json_values, max_size=3))
    if container == "csv":
        columns = st.lists(keys, max_size=3, unique=True)
        return columns.map(lambda names: st.fixed_dictionaries(dict.fromkeys(names, text)))

    def columns(kinds: dict[str, int]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({}, optional={k: COLUMN_VALUES[i] for k, i in kinds.items()})

    return st.dictionaries(keys, st.integers(0, len(COLUMN_VALUES) - 1), max_size=3).map(columns)


# Per-turn fields of the chat formats (ShareGPT's `weight`, OpenAI's `name`), one type each as in a column.
turn_fields = st.fixed_dictionaries({}, optional={"name": nonempty, "weight": st.integers(0, 1)})


@st.composite
def chat(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Any sequence of system/user/assistant turns with at least one assistant turn."""
    roles = draw(st.lists(st.sampled_from(["system", "user", "assistant"]), min_size=1, max_size=6))
    if "assistant" not in roles:
        roles.append("assistant")
    return [{"role": r, "content": draw(text), **draw(turn_fields)} for r in roles]


@st.composite
def alpaca(draw: st.DrawFn) -> tuple[list[dict[str, Any]], str]:
    system = draw(st.lists(nonempty, max_size=1))
    pairs = draw(st.lists(st.tuples(text, text), min_size=1, max_size=3))
    turns = [{"role": "system", "content": s} for s in system]
    for question, answer in pairs:
        turns += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return turns, draw(text)


def messages(fmt: str) -> st.SearchStrategy[tuple[list[dict[str, Any]], str]]:
    if fmt == "alpaca":
        return alpaca()
    if fmt == "prompt_completion":
        return st.tuples(text, text).map(
            lambda p: ([{"role": "user", "content": p[0]}, {"role": "assistant", "content": p[1]}], "")
        )
    return chat().map(lambda turns: (turns, ""))


@st.composite
def datasets(draw: st.DrawFn, fmt: str, container: str) -> list[Example]:
    extra = draw(extras(container))
    out = []
    for i in range(draw(st.integers(1, 4))):
        turns, inp = draw(messages(fmt))
        fields = draw(extra)
        out.append(Example(f"gen:{i}", turns, inp, {"extra": fields} if fields else {}))
    return out


def assert_same(read: list[Example], written: list[Example], path: Path, fmt: str) -> None:
    assert [(ex.messages, ex.input, ex.metadata.get("extra", {})) for ex in read] == [
        (ex.messages, ex.input, ex.metadata.get("extra", {})) for ex in written
    ]
    stem = path.name if path.suffix == "" else path.stem
    assert [ex.id for ex in read] == [f"{stem}:{i}" for i in range(len(written))]
    assert all(ex.metadata["source"] == str(path) and ex.metadata["index"] == i for i, ex in enumerate(read))
    assert {ex.metadata["format"] for ex in read} == {fmt}


CASES = [(fmt, c) for fmt in FORMATS for c in CONTAINERS]


@pytest.mark.parametrize(("fmt", "container"), CASES, ids=[f"{f}-{c}" for f, c in CASES])
def test_each_format_survives_each_container(
    tmp_path_factory: pytest.TempPathFactory, fmt: str, container: str
) -> None:
    @settings(max_examples=EXAMPLES[container], deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=datasets(fmt, container))
    def roundtrip(data: list[Example]) -> None:
        path = tmp_path_factory.mktemp(container) / CONTAINERS[container]
        assert write_examples(path, data, fmt) == len(data)  # type: ignore[arg-type]
        assert_same(list(read_examples(path)), data, path, fmt)

    roundtrip()


# ---------------------------------------------------------------- across formats


def through(tmp: Path, data: list[Example], *fmts: str) -> list[Example]:
    """Write in each format in turn, reading back between, as `lmtailor convert` would."""
    for i, fmt in enumerate(fmts):
        path = tmp / f"step{i}.jsonl"
        write_examples(path, data, fmt)  # type: ignore[arg-type]
        data = list(read_examples(path))
    return data


def no_input(fmt: str) -> st.SearchStrategy[list[Example]]:
    return datasets(fmt, "jsonl").map(lambda exs: [Example(e.id, e.messages, "", e.metadata) for e in exs])


LOSSLESS = [
    ("alpaca", "openai"),
    ("alpaca", "sharegpt"),
    ("sharegpt", "openai"),
    ("openai", "sharegpt"),
    ("prompt_completion", "alpaca"),
    ("prompt_completion", "openai"),
    ("prompt_completion", "sharegpt"),
]


@pytest.mark.parametrize(("source", "via"), LOSSLESS, ids=[f"{s}-via-{v}" for s, v in LOSSLESS])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_lossless_conversions_come_back_unchanged(tmp_path: Path, source: str, via: str, data: st.DataObject) -> None:
    """Without an `input` (which chat formats fold into the instruction) these conversions lose nothing."""
    original = data.draw(no_input(source))
    back = through(tmp_path, original, source, via, source)
    assert [(e.messages, e.metadata.get("extra", {})) for e in back] == [
        (e.messages, e.metadata.get("extra", {})) for e in original
    ]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=datasets("alpaca", "jsonl"))
def test_alpaca_input_joins_its_instruction_in_chat_formats(tmp_path: Path, data: list[Example]) -> None:
    for ex, chat_ex in zip(data, through(tmp_path, data, "alpaca", "openai"), strict=True):
        expected = [dict(m) for m in ex.messages]
        if ex.input:
            expected[-2]["content"] += "\n\n" + ex.input
        assert chat_ex.messages == expected and chat_ex.input == ""


def test_real_lima_survives_every_container(shared_data: Path, tmp_path: Path) -> None:
    lima = list(read_examples(shared_data / "lima" / "lima.json"))
    for container, name in CONTAINERS.items():
        path = tmp_path / container / name
        assert write_examples(path, lima, "alpaca") == len(lima) == 1029
        assert_same(list(read_examples(path)), lima, path, "alpaca")
    assert json.loads((tmp_path / "json" / "data.json").read_text(encoding="utf-8"))[0].keys() == {
        "instruction",
        "input",
        "output",
    }
