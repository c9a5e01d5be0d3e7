"""The few-shot prompter on Spider-shaped examples: which shots, in which turns, drawn the same way every time."""

from __future__ import annotations

import pytest

from lmtailor.core.records import Example, RecordError
from lmtailor.prompting.few_shot import FewShot

INSTRUCTION = "Write one SQLite query.\n\nDatabase schema:\n{db}(a, b)\n\nQuestion: {question}"


def example(i: int, db: str, split: str = "train") -> Example:
    question = INSTRUCTION.format(db=db, question=f"question {i}?")
    turns = [{"role": "user", "content": question}, {"role": "assistant", "content": f"SELECT {i}"}]
    return Example(f"{split}:{i}", turns, metadata={"extra": {"db_id": db}})


TRAIN = [example(i, "shop" if i % 2 else "zoo") for i in range(20)]


def test_shots_come_before_the_question_as_chat_turns_with_the_schema_once() -> None:
    asked = example(100, "zoo", "test")
    turns = FewShot(TRAIN, 3, same="db_id", later_turns_from="Question: ").prompt(asked)
    assert [t["role"] for t in turns] == ["user", "assistant"] * 3 + ["user"]
    assert turns[0]["content"].startswith("Write one SQLite query.") and "zoo(a, b)" in turns[0]["content"]
    assert all(t["content"].startswith("Question: question ") for t in turns[2::2])  # schema given once
    assert turns[-1]["content"] == "Question: question 100?"
    shots = [int(t["content"].removeprefix("SELECT ")) for t in turns[1::2]]
    assert len(set(shots)) == 3 and all(i % 2 == 0 for i in shots)  # of the same database, none twice


def test_the_same_example_gets_the_same_shots_whatever_is_asked_before() -> None:
    prompter = FewShot(TRAIN, 2, seed=1, same="db_id")
    asked = [example(100 + i, "shop", "test") for i in range(6)]
    first = [prompter.prompt(ex) for ex in asked]
    assert [prompter.prompt(ex) for ex in reversed(asked)] == first[::-1]
    assert FewShot(TRAIN, 2, seed=1, same="db_id").prompt(asked[0]) == first[0]
    others = [FewShot(TRAIN, 2, seed=2, same="db_id").prompt(ex) for ex in asked]
    assert others != first  # another seed, other shots
    assert first[0][0]["content"] == TRAIN[int(first[0][1]["content"].removeprefix("SELECT "))].messages[0]["content"]


def test_an_example_is_never_its_own_shot_and_too_few_shots_are_named() -> None:
    prompter = FewShot(TRAIN, 9, same="db_id")
    turns = prompter.prompt(TRAIN[0])  # nine of the other nine zoo examples
    assert "SELECT 0" not in [t["content"] for t in turns]
    with pytest.raises(RecordError, match="10 shots asked for, 0 to draw from with db_id 'farm'"):
        FewShot(TRAIN, 10, same="db_id").prompt(example(1, "farm", "test"))
