"""balance: refusals and non-answers per record, the refusal rate and label spread against expectations."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from support import alpaca, alpaca_records

from lmtailor.audit.check import CheckContext
from lmtailor.audit.checks.balance import Balance
from lmtailor.audit.finding import Finding
from lmtailor.core.records import Example

# Real Alpaca records: refusals and placeholder non-answers, then answers that only sound like them.
REFUSALS = {
    8: "<nooutput",  # "<nooutput> This type of instruction cannot be fulfilled by a GPT model."
    5555: "<nooutput",
    14885: "language model cannot",  # "I am not able to generate a logo, … which a language model cannot do."
    32887: "I cannot set",  # "Set up a reminder for 8 am tomorrow?" → "I cannot set up a reminder…"
    43965: "the model cannot",  # a SQL query declined: "Sorry, this task requires writing a code and the model…"
    2823: "N/A",
}
CLEAN = [0, 1, 79, 1397, 3419, 15445, 33678]  # 79: a customer apology asked for; 1397/15445: "can't" rewrites


def run(examples: list[Example], **settings) -> tuple[list[Finding], dict]:
    ctx = CheckContext(Balance.name)
    return list(Balance(**settings).run(examples, ctx)), ctx.metrics


@pytest.fixture(scope="module")
def real(shared_data: Path) -> dict[int, Example]:
    return alpaca_records(shared_data, set(REFUSALS) | set(CLEAN))


def test_refusals_and_non_answers_are_found_with_the_matched_phrase() -> None:
    examples = [
        alpaca("Design a logo for a bakery.", "<nooutput>", i=0),
        alpaca("Tell me your opinion on cats.", "As an AI language model, I do not have personal opinions.", i=1),
        alpaca("What is the capital of the moon?", "I'm sorry, but I cannot answer that question.", i=2),
        alpaca("How many roads lead to the town?", "It is impossible to say without more information.", i=3),
        alpaca("Predict next year's inflation.", "It is not possible to predict exactly. " + "Prices vary. " * 30, i=4),
    ]
    findings, metrics = run(examples)
    rows = [(f.index, f.severity, f.evidence["phrase"]) for f in findings if f.index >= 0]
    assert rows == [
        (0, "low", "<nooutput"),
        (1, "low", "As an AI language model, I do not"),
        (2, "low", "I'm sorry, but I cannot"),
        (3, "low", "It is impossible to say"),
        (4, "info", "It is not possible to predict"),
    ]
    assert [f.score for f in findings if f.index >= 0] == [0.95, 0.9, 0.85, 0.85, 0.5]
    assert metrics["refusals"] == 4 and metrics["deflections"] == 1 and metrics["refusal_rate"] == 0.8


def test_apologies_the_instruction_asks_for_and_copied_phrases_are_not_refusals() -> None:
    examples = [
        alpaca("Write a reply to an angry customer.", "I'm sorry, but we cannot refund opened items.", i=0),
        alpaca("Rewrite the sentence in the negative.", "I cannot swim.", "I can swim.", i=1),
        alpaca("Reword this statement.", "I am not able to do it.", "I can't do it.", i=2),
        alpaca("Explain what GPT models cannot do.", "GPT models cannot browse the web or set reminders.", i=3),
        alpaca("Identify the type of correlation (positive, negative, or none).", "None.", "Days vs. sleep", i=4),
        alpaca("Name a primary colour.", "Red.", i=5),
    ]
    findings, metrics = run(examples)
    assert [f for f in findings if f.index >= 0] == []
    assert metrics["refusals"] == 0


def test_refusal_rate_against_the_expected_rate() -> None:
    refusing = [alpaca("Draw a cat.", "<nooutput>", i=i) for i in range(3)]
    answering = [alpaca("Name a fruit.", f"Fruit number {i} is an apple.", i=i) for i in range(3, 10)]
    findings, metrics = run(refusing + answering, expect={"Refusal": 0.05})
    [summary] = [f for f in findings if f.index < 0]
    assert (summary.id, summary.severity, summary.score) == ("*", "high", 0.3)
    assert summary.message == (
        "30.0% of answers refuse (3), far above the expected 5.0%; training would teach the model to refuse far too "
        "often"
    )
    assert summary.evidence == {"refusals": 3, "rate": 0.3, "expected": 0.05}
    assert metrics["expected"] == {"refusal": 0.05} and metrics["refusals"] == 3 and metrics["labels"] == {}

    one = [alpaca("Draw a cat.", "<nooutput>", i=0), *answering]
    assert [f.severity for f in run(one, expect={"refusal": 0.09})[0] if f.index < 0] == ["medium"]
    assert [f.severity for f in run(one, expect={"refusal": 0.12})[0] if f.index < 0] == ["info"]
    assert [f.severity for f in run(answering, expect={"refusal": 0.2})[0] if f.index < 0] == ["medium"]
    # Without an expectation a large refusal share still warns; a small one is only reported.
    [plain] = [f for f in run(refusing + answering)[0] if f.index < 0]
    assert (plain.severity, plain.evidence) == ("medium", {"refusals": 3, "rate": 0.3})
    assert plain.message == "30.0% of answers refuse (3); pass an expected rate (expect={'refusal': 0.05}) to compare"
    many = one + [alpaca("Name a fruit.", f"Fruit number {i} is a pear.", i=i) for i in range(10, 22)]
    assert [f.severity for f in run(many)[0] if f.index < 0] == ["info"]


def test_label_distribution_of_classification_data() -> None:
    labels = ["Positive"] * 9 + ["negative."]
    examples = [alpaca("Classify the sentiment.", label, f"Review {i}", i=i) for i, label in enumerate(labels)]
    findings, metrics = run(examples)
    assert metrics["labels"] == {"positive": 9, "negative": 1}
    [skew] = [f for f in findings if f.index < 0 and "label" in f.evidence]
    assert (skew.severity, skew.evidence["label"], skew.score) == ("medium", "positive", 0.9)

    findings, _ = run(examples, expect={"positive": 0.5, "negative": 0.5})
    by_label = {f.evidence["label"]: f.severity for f in findings if f.index < 0 and "label" in f.evidence}
    assert by_label == {"positive": "medium", "negative": "medium"}
    findings, _ = run(examples, expect={"positive": 0.3})
    assert [f.severity for f in findings if f.evidence.get("label") == "positive"] == ["high"]

    prose = [alpaca("Describe a fruit.", f"Fruit {i} is sweet, round and grows on trees.", i=i) for i in range(10)]
    assert run(prose)[1]["labels"] == {}


def test_expected_rates_must_be_shares() -> None:
    with pytest.raises(ValidationError, match="must lie in"):
        Balance(expect={"refusal": 5})


def test_real_alpaca_refusals_are_found_and_clean_records_are_not(real: dict[int, Example]) -> None:
    findings, metrics = run(list(real.values()))
    found = {f.index: (f.severity, f.evidence["phrase"]) for f in findings if f.index >= 0}
    assert found == {i: ("low", phrase) for i, phrase in REFUSALS.items()}
    assert all(
        f.id == f"alpaca_data_52k:{f.index}" and f.source.endswith("alpaca_data_52k.jsonl")
        for f in findings
        if f.index >= 0
    )
    assert metrics["refusals"] == len(REFUSALS)
