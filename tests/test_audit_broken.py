"""broken_fields: empty, placeholder, cut-off, garbled and merged fields, on constructed and real Alpaca records."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import alpaca, alpaca_records

from lmtailor.audit.check import CheckContext
from lmtailor.audit.checks.broken import BrokenFields
from lmtailor.audit.finding import Finding
from lmtailor.core.records import Example

# Real Alpaca records with defects the AlpacaDataCleaned effort fixed: (index, problem, severity).
DEFECTS = [
    (1223, "empty", "high"),  # "Create an illustration for the following text." -> ""
    (5555, "placeholder", "high"),  # "Design a company logo" -> "<nooutput>"
    (2823, "placeholder", "high"),  # input "N/A", output "N/A": both fields are flagged
    (2823, "placeholder", "low"),
    (47496, "placeholder", "low"),  # input "none" for an instruction that needs none
    (2906, "placeholder", "low"),  # input '""'
    (42724, "placeholder", "low"),  # input "<none>"
    (1982, "merged", "high"),  # "...ceremonies.\n11. Instruction: Give me the definition of 'supercomputer'..."
    (33972, "merged", "high"),  # "She watered the flowers.\n\n\n6. Instruction: Generate an ending..."
    (15102, "merged", "high"),  # the generator's own prompt pasted after the answer
    (39001, "template_leak", "medium"),  # "<No input> \n\nOutput:\nA young girl stands..."
    (6957, "truncated", "medium"),  # "...20 tiles numbered from 1 to"
    (50884, "truncated", "medium"),  # "...with the symbol Ca and atomic number of"
    (3558, "garbage", "medium"),  # a run of stray combining marks after the answer
    (29819, "control_chars", "medium"),  # "\x03 \x01 \x01 \x07 ..." after the answer
    (45697, "control_chars", "low"),  # zero-width spaces inside a word
]
# Clean look-alikes: a poem line ending on a comma, a task about instructions, pipe-separated tags, code with
# "(" inside a string, a name list ending on a short word, a letter closing.
CLEAN = [0, 1, 2, 3, 12378, 3520, 13404, 25154, 6438, 3449]


def run(examples: list[Example]) -> tuple[list[Finding], dict]:
    ctx = CheckContext(BrokenFields.name)
    return list(BrokenFields().run(examples, ctx)), ctx.metrics


def rows(findings: list[Finding]) -> list[tuple[int, str, str, str]]:
    return [(f.index, f.evidence["problem"], f.severity, f.evidence["field"]) for f in findings]


@pytest.fixture(scope="module")
def real(shared_data: Path) -> dict[int, Example]:
    return alpaca_records(shared_data, {i for i, _, _ in DEFECTS} | set(CLEAN))


def test_empty_and_placeholder_fields() -> None:
    examples = [
        alpaca("Design a logo for a bakery.", "", i=0),
        alpaca("Design a logo for a bakery.", "<No Output>", i=1),
        alpaca("Name a landmark in the United States", "Statue of Liberty", "N/A", i=2),
        alpaca("Name a landmark in the United States", "N/A", i=3),
        alpaca("", "Paris.", i=4),
        alpaca("Render a 3D model of a house.", "<nooutput> This cannot be done by a language model.", i=5),
        alpaca("Name a landmark in the United States", "The Golden Gate Bridge.", '""', i=6),
    ]
    findings, metrics = run(examples)
    assert rows(findings) == [
        (0, "empty", "high", "output"),
        (1, "placeholder", "high", "output"),
        (2, "placeholder", "low", "input"),
        (3, "placeholder", "high", "output"),
        (4, "empty", "high", "instruction"),
        (5, "placeholder", "high", "output"),
        (6, "placeholder", "low", "input"),
    ]
    assert metrics["problems"] == {"empty": 2, "placeholder": 5}


def test_merged_records_and_template_leaks() -> None:
    merged = "Paris is the capital.\n\n6. Instruction: Name a colour.\n6. Input:\n\n6. Output:\nRed."
    examples = [
        alpaca("What is the capital of France?", merged, i=0),
        alpaca("Why is the sky blue?", "Rayleigh scattering.\n##\n### Instruction\nWrite a haiku.", i=1),
        alpaca("Describe the sea.", "<noinput>\nOutput:\nThe sea is vast and deep.", i=2),
        alpaca("Explain X.", "X is Y. You are asked to come up with a set of 20 diverse task instructions.", i=3),
    ]
    findings, _ = run(examples)
    assert rows(findings) == [
        (0, "merged", "high", "output"),
        (1, "merged", "high", "output"),
        (2, "template_leak", "medium", "output"),
        (3, "merged", "high", "output"),
    ]
    assert findings[0].evidence["excerpt"].lstrip().startswith("Paris is the capital.\n\n6. Instruction")
    assert "prompt leaked" in findings[3].message


def test_tasks_about_instructions_are_not_merged_records() -> None:
    examples = [
        alpaca(
            "Write three instructions for a GPT model.", "1. Instruction: Name a fruit.\n2. Instruction: Add 2+2.", i=0
        ),
        alpaca("Provide an input for the instruction.", "Input: The quick brown fox.", "Instruction: Summarise.", i=1),
        alpaca("Write a Python function that adds two numbers.", "def add(a, b):\n    return a + b\n# Output: 3", i=2),
    ]
    assert run(examples)[0] == []


def test_answers_cut_off_mid_sentence_or_mid_code() -> None:
    examples = [
        alpaca("Calculate 4 multiplied by 5.", "4 multiplied by 5 is equal to", i=0),
        alpaca("Rewrite the sentence to start with 'despite'.", "Despite the rain falling all day long,", i=1),
        alpaca("Write a JavaScript function.", "function f(x) {\n  if (x) {\n    return 1;\n  }\n", i=2),
        alpaca("Show a code example.", "```python\nprint('hi')\n", i=3),
    ]
    findings, _ = run(examples)
    assert [(f.index, f.evidence["problem"]) for f in findings] == [(i, "truncated") for i in range(4)]
    assert [f.message.split(": ", 1)[1] for f in findings] == [
        "it stops mid-sentence on 'to'",
        "it stops on a comma",
        "unbalanced {} in code: 2 opened, 1 closed",
        "an unclosed ``` code fence",
    ]


def test_complete_answers_that_end_unusually_are_not_truncated() -> None:
    examples = [
        alpaca("Write the first line of a poem.", "A whisper of spring in the winter's chill night,", i=0),
        alpaca("Write a letter to a friend.", "Dear Sam,\n\nThanks for the book. It was great.\n\nBest regards,", i=1),
        alpaca("Name five things to take camping.", "1. Tent\n2. Stove\n3. Water\n4. Map\n5. A sleeping bag", i=2),
        alpaca("Choose the correct article.", "the", i=3),
        alpaca("Compose a tune using A and G.", "Verse:\nA A G G A\nA G A A G A", i=4),
        alpaca("Write code.", "s = 'unclosed ( in a string'\nif s:\n    print(s)", i=5),
    ]
    assert run(examples)[0] == []


def test_mojibake_control_characters_and_garbage() -> None:
    examples = [
        alpaca("Name a French drink.", "CafÃ© au lait is a coffee with hot milk.", i=0),
        alpaca(
            "Name a colour.", "Red\x03\x01\x07 is a warm colour that people often link with energy and danger.", i=1
        ),
        alpaca("Name a colour.", "Blue\u200b is cool.", i=2),
        alpaca("Say something.", "Hello.  " + "\u0326" * 30, i=3),
        alpaca("Greet in French.", "Bonjour, ça va? Très bien — merci.", i=4),
    ]
    findings, _ = run(examples)
    assert rows(findings) == [
        (0, "mojibake", "medium", "output"),
        (1, "control_chars", "medium", "output"),
        (2, "control_chars", "low", "output"),
        (3, "garbage", "medium", "output"),
    ]
    assert findings[0].evidence["fixed"].startswith("Café au lait")
    assert findings[2].evidence["characters"] == ["U+200B"]


def test_real_alpaca_defects_are_flagged(real: dict[int, Example]) -> None:
    findings, _ = run([real[i] for i in dict.fromkeys(i for i, _, _ in DEFECTS)])
    assert sorted((f.index, f.evidence["problem"], f.severity) for f in findings) == sorted(DEFECTS)
    assert all(f.id == f"alpaca_data_52k:{f.index}" and f.source.endswith("alpaca_data_52k.jsonl") for f in findings)


def test_real_clean_alpaca_records_are_not_flagged(real: dict[int, Example]) -> None:
    assert run([real[i] for i in CLEAN])[0] == []
