"""Example and the four formats: detection, conversion each way, and the errors that name what is wrong."""

from __future__ import annotations

import pytest

from lmtailor.core.records import Example, RecordError, detect_format, from_example, to_example


def msg(role: str, content: str, **extra: object) -> dict:
    return {"role": role, "content": content, **extra}


def convert(record: dict, fmt: str) -> Example:
    return to_example(record, fmt, "t:0", {"source": "t.jsonl", "index": 0})


@pytest.mark.parametrize(
    ("record", "fmt"),
    [
        ({"instruction": "a", "input": "", "output": "b"}, "alpaca"),
        ({"conversations": []}, "sharegpt"),
        ({"messages": []}, "openai"),
        ({"prompt": "a", "completion": "b"}, "prompt_completion"),
        ({"question": "a", "answer": "b"}, None),
        (["instruction", "output"], None),
    ],
)
def test_detect_format_by_keys(record: object, fmt: str | None) -> None:
    assert detect_format(record) == fmt


def test_alpaca_with_system_and_history_becomes_ordered_turns() -> None:
    ex = convert(
        {
            "system": "Be brief.",
            "history": [["hi", "hello"]],
            "instruction": "add 2+2",
            "input": "numbers",
            "output": "4",
            "id": 7,
        },
        "alpaca",
    )
    assert ex.messages == [
        msg("system", "Be brief."),
        msg("user", "hi"),
        msg("assistant", "hello"),
        msg("user", "add 2+2"),
        msg("assistant", "4"),
    ]
    assert ex.input == "numbers"
    assert ex.metadata == {"source": "t.jsonl", "index": 0, "extra": {"id": 7}}
    assert from_example(ex, "alpaca") == {
        "id": 7,
        "system": "Be brief.",
        "history": [["hi", "hello"]],
        "instruction": "add 2+2",
        "input": "numbers",
        "output": "4",
    }


def test_sharegpt_maps_speaker_names_and_keeps_per_turn_fields() -> None:
    ex = convert(
        {"system": "S", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a", "weight": 0}]},
        "sharegpt",
    )
    assert ex.messages == [msg("system", "S"), msg("user", "q"), msg("assistant", "a", weight=0)]
    assert from_example(ex, "sharegpt") == {
        "conversations": [
            {"from": "system", "value": "S"},
            {"from": "human", "value": "q"},
            {"from": "gpt", "value": "a", "weight": 0},
        ]
    }


def test_openai_top_level_system_becomes_the_first_turn() -> None:
    ex = convert({"system": "S", "messages": [msg("user", "q"), msg("assistant", "a", name="bot")]}, "openai")
    assert ex.messages == [msg("system", "S"), msg("user", "q"), msg("assistant", "a", name="bot")]
    assert "extra" not in ex.metadata


def test_prompt_completion() -> None:
    ex = convert({"prompt": "p", "completion": "c", "split": "train"}, "prompt_completion")
    assert ex.messages == [msg("user", "p"), msg("assistant", "c")]
    assert from_example(ex, "prompt_completion") == {"split": "train", "prompt": "p", "completion": "c"}


@pytest.mark.parametrize(
    ("record", "fmt", "problem"),
    [
        ({"instruction": "a", "input": ""}, "alpaca", "missing field 'output'"),
        ({"instruction": 5, "output": "b"}, "alpaca", "field 'instruction' must be a string, got int"),
        ({"instruction": "a", "output": "b", "history": "x"}, "alpaca", "'history' must be a list"),
        ({"instruction": "a", "output": "b", "history": [["x"]]}, "alpaca", "history[0] must be a pair"),
        ({"conversations": []}, "sharegpt", "field 'conversations' is empty"),
        ({"conversations": [{"from": "robot", "value": "x"}]}, "sharegpt", "unknown from 'robot'"),
        ({"conversations": ["hi"]}, "sharegpt", "conversations[0] must be an object, got str"),
        ({"conversations": [{"from": "human", "value": "q", "role": "user"}]}, "sharegpt", "has both"),
        ({"system": "S"}, "openai", "missing field 'messages'"),
        ({"messages": {"role": "user"}}, "openai", "'messages' must be a list, got dict"),
        ({"messages": [msg("user", "only a question")]}, "openai", "no assistant turn"),
        ({"messages": [{"role": "user", "content": ["parts"]}]}, "openai", "'content' must be a string"),
        ({"prompt": "p"}, "prompt_completion", "missing field 'completion'"),
        (["not", "an", "object"], "alpaca", "expected an object, got list"),
        ({"prompt": "p", "completion": "c"}, "dolly", "unknown format 'dolly'"),
    ],
)
def test_bad_records_name_the_problem(record: object, fmt: str, problem: str) -> None:
    with pytest.raises(RecordError, match=problem.replace("[", r"\[")):
        convert(record, fmt)  # type: ignore[arg-type]


def example(*messages: dict, inp: str = "", extra: dict | None = None) -> Example:
    return Example("t:0", list(messages), inp, {"extra": extra} if extra else {})


def test_input_joins_the_instruction_it_belongs_to_in_chat_formats() -> None:
    turns = [msg("user", "hi"), msg("assistant", "hello"), msg("user", "summarise"), msg("assistant", "ok")]
    ex = example(*turns, inp="the text")
    turns = from_example(ex, "openai")["messages"]
    assert [m["content"] for m in turns] == ["hi", "hello", "summarise\n\nthe text", "ok"]


@pytest.mark.parametrize(
    ("ex", "fmt", "problem"),
    [
        (
            example(
                msg("user", "a"), msg("assistant", "b"), msg("system", "late"), msg("user", "c"), msg("assistant", "d")
            ),
            "alpaca",
            "alternating",
        ),
        (example(msg("user", "a"), msg("user", "b"), msg("assistant", "c")), "alpaca", "alternating"),
        (example(msg("user", "a"), msg("assistant", "b", weight=1)), "alpaca", "per-turn fields"),
        (example(msg("user", "a"), msg("assistant", "b", name="x")), "prompt_completion", "per-turn fields"),
        (example(msg("system", "s"), msg("user", "a"), msg("assistant", "b")), "prompt_completion", "one user"),
        (example(msg("assistant", "b"), inp="context"), "openai", "no user turn"),
        (example(msg("user", "a"), msg("assistant", "b", value="v")), "sharegpt", "named like the format"),
        (example(msg("user", "a"), msg("assistant", "b"), extra={"system": "x"}), "alpaca", "extra fields"),
        (example(msg("user", "a"), msg("assistant", "b"), extra={"messages": []}), "alpaca", "extra fields"),
        (
            example(msg("user", "a"), msg("assistant", "b"), extra={"instruction": "i", "output": "o"}),
            "prompt_completion",
            "extra fields",
        ),
        (example(msg("user", "a"), msg("assistant", "b")), "dolly", "unknown format 'dolly'"),
    ],
)
def test_formats_refuse_what_they_cannot_hold(ex: Example, fmt: str, problem: str) -> None:
    with pytest.raises(RecordError, match=problem):
        from_example(ex, fmt)  # type: ignore[arg-type]


def test_fields_and_copy() -> None:
    ex = example(
        msg("system", "s"),
        msg("user", "u1"),
        msg("assistant", "a1"),
        msg("user", "u2"),
        msg("assistant", "a2"),
        inp="i",
        extra={"k": [1]},
    )
    assert ex.field("instruction") == "u1\nu2"
    assert ex.field("output") == "a1\na2"
    assert ex.fields(["system", "input"]) == "s\ni"
    assert ex.field("text") == "s\nu1\nu2\ni\na1\na2"
    with pytest.raises(ValueError, match="unknown field"):
        ex.field("answer")
    twin = ex.copy()
    assert twin == ex and twin is not ex
    twin.metadata["extra"]["k"].append(2)
    twin.messages[0]["content"] = "changed"
    assert ex.metadata["extra"] == {"k": [1]} and ex.messages[0]["content"] == "s"
    assert Example.from_json(ex.to_json()) == ex
