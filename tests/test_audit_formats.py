"""format: answers that break the format their instruction asks for, parse checks, templates and the metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import alpaca, alpaca_records

from lmtailor.audit.check import CheckContext
from lmtailor.audit.checks.formats import FormatConsistency, output_format, python_code
from lmtailor.audit.finding import Finding
from lmtailor.core.records import Example

# Real Alpaca records that break their format: (index, kind).
BROKEN = [
    (10648, "invalid_python"),  # "def add_numbers(a,b):\nreturn a + b" (indentation lost)
    (48138, "invalid_sql"),  # "WHERE customer id >= 1000;"
    (41357, "missing_code"),  # "Write a code that prints..." -> "Wrote a code that prints..." (prose)
    (25147, "word_limit"),  # "Describe the capital of Spain in 25 words." -> 85 words
    (24166, "item_count"),  # "List five common causes..." -> ten
    (31856, "template"),  # "...calculate the mean.\n\nInput: 82, 23, ..." with the same input in its own field
    (20128, "template"),  # "Question: What is the capital city of Canada?\nAnswer"
]
# Real answers in good shape: Python followed by "# Output:" or "Output:", SQL in T-SQL/MySQL/SQLite dialects, valid
# JSON, a JSON-to-YAML conversion, a docstring-headed script, numbered SQL queries, code that counts its output.
GOOD = [486, 4591, 929, 511, 50846, 4994, 7275, 2794, 1074, 3761, 46277, 0, 1, 13054, 33305, 6181]


def run(examples: list[Example]) -> tuple[list[Finding], dict]:
    ctx = CheckContext(FormatConsistency.name)
    return list(FormatConsistency().run(examples, ctx)), ctx.metrics


def kinds(findings: list[Finding]) -> list[tuple[int, str, str]]:
    return [(f.index, f.evidence["kind"], f.severity) for f in findings if f.index >= 0]


@pytest.fixture(scope="module")
def real(shared_data: Path) -> dict[int, Example]:
    return alpaca_records(shared_data, {i for i, _ in BROKEN} | set(GOOD))


def test_answers_that_break_the_asked_format() -> None:
    examples = [
        alpaca("Create a JSON object describing a cat.", '{"name": "Tom", "age": 3,}', i=0),
        alpaca(
            "Write a SQL query to select customers with an id of 1000 or more.",
            "SELECT * FROM c WHERE c id >= 1000;",
            i=1,
        ),
        alpaca("Write a Python function that adds two numbers.", "def add(a, b):\nreturn a + b", i=2),
        alpaca(
            "Write a function that checks whether a number is even.", "It should return true for even numbers.", i=3
        ),
        alpaca("Describe the ocean in no more than 20 words.", "wave " * 40, i=4),
        alpaca("List three primary colours.", "1. Red\n2. Blue\n3. Yellow\n4. Green", i=5),
        alpaca("Create a SQL query to list products over $50.", "Sorry, I cannot write code.", i=6),
    ]
    findings, _ = run(examples)
    assert kinds(findings) == [
        (0, "invalid_json", "medium"),
        (1, "invalid_sql", "medium"),
        (2, "invalid_python", "medium"),
        (3, "missing_code", "medium"),
        (4, "word_limit", "low"),
        (5, "item_count", "low"),
        (6, "missing_sql", "medium"),
    ]
    assert findings[2].evidence["line"] == 2 and "indented block" in findings[2].evidence["error"]
    assert findings[4].message == "the answer has 40 words; the instruction allows 20"


def test_answers_in_the_right_format_or_not_asked_for_one_pass() -> None:
    examples = [
        alpaca("Create a JSON object describing a cat.", '{"name": "Tom", "age": 3}', i=0),
        alpaca("Convert the following JSON object into YAML.", "name: Tom\nage: 3", '{"name": "Tom"}', i=1),
        alpaca(
            "Write a SQL query to select the 10 most expensive orders.",
            "SELECT TOP 10 * FROM Orders ORDER BY v DESC;",
            i=2,
        ),
        alpaca(
            "List the steps to print a document.",
            "1. Open the file.\n2. Select the Print option.\n3. Click Print.",
            i=3,
        ),
        alpaca(
            "Write a Python function that reverses a list.", "def rev(xs):\n    return xs[::-1]\n\nOutput:\n[2, 1]", i=4
        ),
        alpaca("Write a JavaScript function that adds two numbers.", "function add(a, b) {\n  return a + b;\n}", i=5),
        alpaca("Write a script for a radio ad about shoes.", "Announcer: Tired of sore feet? Try our shoes!", i=6),
        alpaca("Give an example of a syntax error in Python.", "for i in range(10)\n    print(i)", i=7),
        alpaca("List three primary colours.", "1. Red\n2. Blue\n3. Yellow", i=8),
        alpaca("Generate a list of 3 to 5 tips.", "1. Sleep\n2. Eat\n3. Walk\n4. Read", i=9),
        alpaca(
            "Write a function to double a number.",
            "def double(x):\n    return 2 * x\n\nThis multiplies x by two.",
            i=10,
        ),
    ]
    assert kinds(run(examples)[0]) == []


def test_the_minority_side_of_a_prompt_template_split_is_flagged() -> None:
    plain = [alpaca(f"Name a fruit number {i}.", "Apple.", i=i) for i in range(8)]
    templated = [alpaca("### Instruction:\nName a fruit.\n### Response:", "Apple.", i=i) for i in (8, 9)]
    findings, metrics = run(plain + templated)
    assert kinds(findings) == [(8, "template", "low"), (9, "template", "low")]
    assert findings[0].evidence["marker"] == "### Instruction:" and metrics["scaffolded_instructions"] == 2
    assert findings[0].message == "the instruction carries prompt scaffolding that 8 of 10 instructions lack"
    flipped = plain[:2] + [alpaca("### Instruction:\nName a fruit.", "Apple.", i=i) for i in range(2, 10)]
    findings, _ = run(flipped)
    assert kinds(findings) == [(0, "template", "low"), (1, "template", "low")]
    assert findings[0].message == "the instruction lacks the prompt scaffolding that 8 of 10 instructions carry"
    assert "marker" not in findings[0].evidence


def test_metrics_and_the_dataset_finding_describe_the_formats() -> None:
    examples = [
        alpaca("Say hi.", "Hi there, friend.", i=0),
        alpaca("Name two colours.", "- Red\n- Blue", i=1),
        alpaca("Write SQL.", "SELECT name FROM users;", i=2),
        alpaca("Describe a cat.", "Cats are small, furry and independent animals. " * 12, i=3),
    ]
    findings, metrics = run(examples)
    assert metrics["formats"] == {"prose": 2, "list": 1, "sql": 1}
    assert list(metrics["length_bands"]) == [
        "1-5 words",
        "6-20 words",
        "21-50 words",
        "51-100 words",
        "101-250 words",
        "over 250 words",
    ]
    assert metrics["length_bands"]["1-5 words"] == 3 and metrics["length_bands"]["51-100 words"] == 1
    (overall,) = [f for f in findings if f.index < 0]
    assert (overall.id, overall.severity, overall.evidence["formats"]["prose"]) == ("*", "info", 2)


def test_output_shapes_and_python_extraction() -> None:
    assert output_format('{"a": 1}') == "json"
    assert output_format("SELECT a FROM t;") == "sql"
    assert output_format("Select the file you want.\nThen print it.") == "prose"
    assert output_format("def f():\n    return 1") == "code"
    assert output_format("| a | b |\n| 1 | 2 |") == "table"
    assert output_format("1. One\n2. Two") == "list"
    code = python_code('Here is the code:\n\n"""\nSum two numbers\n"""\nx = 1 + 2\nprint(x)\n\n# Output: 3\n3')
    assert code == ['"""\nSum two numbers\n"""\nx = 1 + 2\nprint(x)']
    fenced = "Install it:\n```\npip install x\n```\nThen:\n```python\nimport x\nx.run()\n```\n```js\nlet a = 1;\n```"
    assert python_code(fenced, "Show me Python.") == ["import x\nx.run()\n"]


def test_real_format_breaks_are_flagged(real: dict[int, Example]) -> None:
    findings, _ = run([real[i] for i, _ in BROKEN] + [real[i] for i in GOOD])
    assert sorted((i, k) for i, k, _ in kinds(findings)) == sorted(BROKEN)
