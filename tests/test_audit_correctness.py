"""correctness: answers a program can verify, recomputed; constructed questions and real wrong Alpaca answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import alpaca, alpaca_records

from lmtailor.audit.check import CheckContext
from lmtailor.audit.checks.correctness.arithmetic import find_expression
from lmtailor.audit.checks.correctness.check import Correctness
from lmtailor.audit.checks.correctness.numbers import agrees, numbers
from lmtailor.audit.finding import Finding
from lmtailor.core.records import Example

# Real Alpaca answers that are wrong: (index, task kind, expected, the answer's number).
WRONG = [
    (20838, "arithmetic", "45", "47"),  # "Evaluate the expression 9 − 4 + 8 × 5." -> "47"
    (23585, "arithmetic", "-6", "48"),  # "10 + 6 * 7 - 58" -> "= 48"
    (51004, "sum", "12345", "11,345"),  # "Find the sum of 4703, 2884 and 4758."
    (2724, "average", "6.4", "6.8"),  # mean of 2, 5, 7, 8, 10
    (712, "median", "16.5", "11"),  # median of 8, 22, 11, 47
    (1016, "counting", "5", "4"),  # words in "It is a beautiful day."
    (44774, "date", "Tuesday", "Wednesday"),  # "Find the day of the week for August 5, 2025."
    (36043, "sorting", "3, 4, 5, 8, 9", "4, 3, 5, 8, 9"),
    (232, "alphabetical", "Camouflage, Furniture, Plaster", "Furniture, Camouflage, Plaster"),
    (14816, "equation", "2", "4"),  # "Find the value of x when 3(2x +1) = 15."
    (33610, "geometry", "125.664", "404.45"),  # volume of a cylinder, r = 2 in, h = 10 in
    (39232, "conversion", "0.025", "25"),  # "Convert 25m to km." -> "25km"
]
# Real answers that are right, in several shapes: "1260", "15.7.", "6", "11 vowels", a weekday, a sorted list,
# an alphabetised list, "x = 2", a circle's perimeter to two decimals, "$2.76" for a currency (not checked).
RIGHT = [26833, 43716, 13187, 3339, 36987, 31342, 41836, 3418, 32129, 615, 0, 1]


def run(examples: list[Example]) -> tuple[list[Finding], dict]:
    ctx = CheckContext(Correctness.name)
    return list(Correctness().run(examples, ctx)), ctx.metrics


@pytest.fixture(scope="module")
def real(shared_data: Path) -> dict[int, Example]:
    return alpaca_records(shared_data, {i for i, *_ in WRONG} | set(RIGHT))


def test_wrong_answers_are_flagged_with_expected_and_found() -> None:
    examples = [
        alpaca("What is 17 * 23?", "17 * 23 = 408", i=0),
        alpaca("Calculate the sum of 3, 5 and 9.", "The sum is 18.", i=1),
        alpaca("Calculate the average of these numbers.", "The average is 5.5.", "2, 4, 9", i=2),
        alpaca("Calculate 20% of 200.", "20% of 200 is 50.", i=3),
        alpaca("Convert 100 degrees Fahrenheit to Celsius.", "100°F is 40°C.", i=4),
        alpaca("Sort these numbers in ascending order: 5, 3, 9, 1", "1, 5, 3, 9", i=5),
        alpaca("Arrange the words in alphabetical order.", "apple, pear, mango", "pear, apple, mango", i=6),
        alpaca('How many words are in the sentence "The cat sat on the mat"?', "There are 5 words.", i=7),
        alpaca("How many days are there between March 1, 2021 and March 31, 2021?", "There are 20 days.", i=8),
        alpaca("What day of the week was July 4, 1776?", "It was a Monday.", i=9),
        alpaca("Solve for x: 2x + 6 = 12", "x = 4", i=10),
        alpaca("Calculate the area of a circle with a radius of 3 cm.", "The area is 18.84 cm².", i=11),
        alpaca("Is 91 a prime number?", "Yes, 91 is a prime number.", i=12),
        alpaca("Evaluate 3x + 2 when x = 4", "3x + 2 = 12", i=13),
        alpaca("What is the least common multiple of 4 and 6?", "24", i=14),
    ]
    findings, metrics = run(examples)
    assert [(f.index, f.evidence["task"], f.evidence["expected"], f.evidence["found"]) for f in findings] == [
        (0, "arithmetic", "391", "408"),
        (1, "sum", "17", "18"),
        (2, "average", "5", "5.5"),
        (3, "percentage", "40", "50"),
        (4, "conversion", "37.7778", "40"),
        (5, "sorting", "1, 3, 5, 9", "1, 5, 3, 9"),
        (6, "alphabetical", "apple, mango, pear", "apple, pear, mango"),
        (7, "counting", "6", "5"),
        (8, "date", "30 or 31", "20"),
        (9, "date", "Thursday", "Monday"),
        (10, "equation", "3", "4"),
        (11, "geometry", "28.2743", "18.84"),
        (12, "primality", "not prime", "prime"),
        (13, "substitution", "14", "12"),
        (14, "lcm", "12", "24"),
    ]
    assert {f.severity for f in findings} == {"high"}
    assert findings[0].message == "wrong arithmetic answer: expected 391, the answer says 408"
    assert metrics["checked"]["date"] == 2 and metrics["wrong"]["date"] == 2


def test_right_answers_in_any_written_form_pass() -> None:
    examples = [
        alpaca("Divide 100 by 7.", "14.29", i=0),  # rounded
        alpaca("Divide 100 by 7.", "14.28", i=1),  # cut off
        alpaca("What is 7 divided by 2?", "7/2", i=2),  # a fraction
        alpaca("Add 12 and 8.", "twenty", i=3),  # in words
        alpaca("Find the product of 9, 5 and 28.", "1,260", i=4),  # thousands separator
        alpaca("What percentage of 80 is 20?", "25%", i=5),
        alpaca("Convert 5 feet to meters.", "5 feet is about 1.5 meters.", i=6),  # the writer's precision
        alpaca("Convert 1.68 meters to feet.", "1.68 meters is 5 feet 6 inches.", i=7),  # a compound length
        alpaca("Count the number of characters in the input text.", "27", "This is an example of a sentence.", i=8),
        alpaca("Sort the following numbers in non decreasing order.", "3, 4, 7, 8", "7, 8, 4, 3", i=9),
        alpaca(
            "Put these words in alphabetical order.", "The words are: apple, Mango, pear.", "pear, apple, Mango", i=10
        ),
        alpaca("Calculate 4 multiplied by 5.", "The answer is 20.", i=11),
    ]
    assert run(examples)[0] == []


def test_questions_it_cannot_parse_with_confidence_are_left_alone() -> None:
    examples = [
        alpaca("What is 9/11?", "The September 11 attacks were terrorist attacks in 2001.", i=0),
        alpaca("What is COVID-19?", "A disease caused by a coronavirus.", i=1),
        alpaca("What is a 3x3 matrix?", "A matrix with three rows and three columns.", i=2),
        alpaca("Find the value of 8/2(2+2).", "16", i=3),  # no agreed precedence
        alpaca("Sort the cities by population.", "London, Paris, Rome", "Rome, Paris, London", i=4),
        alpaca("How many days are there between January 1 and April 5?", "94 days", i=5),  # no year given
        alpaca("Calculate the perimeter of a square of 5 cm.", "20 cm", i=6),
        alpaca("Find the last five digits of 370 ^ 11", "19680", i=7),
        alpaca("Convert 125 minutes to hours and minutes.", "2 hours and 5 minutes", i=8),
        alpaca("What is the maximum subsequence sum of non-adjacent elements?", "10", "[5, 1, 1, 5]", i=9),
        alpaca("Write a Python function that returns the sum of 3 and 4.", "def f():\n    return 3 + 4", i=10),
    ]
    assert run(examples)[0] == []


def test_a_measure_broken_across_lines_is_still_read() -> None:
    findings, _ = run([alpaca("Find the surface\n area of a cube with an edge of 3 cm.", "It is 36 cm².")])
    assert [(f.evidence["task"], f.evidence["expected"], f.evidence["found"]) for f in findings] == [
        ("geometry", "54", "36")
    ]


def test_numbers_are_read_with_the_precision_they_were_written_in() -> None:
    assert [(n.value, n.step) for n in numbers("About 1.2 million people, 3/4 of them, paid $1,500.50 or -7.")] == [
        (1_200_000.0, 100_000.0),
        (0.75, 0.0),
        (1500.5, 0.01),
        (-7.0, 1.0),
    ]
    assert agrees(14.2857, numbers("14.29")[0]) and agrees(14.2857, numbers("14.28")[0])
    assert not agrees(45, numbers("47")[0]) and not agrees(14.0, numbers("15")[0])
    assert find_expression("Evaluate 9 − 4 + 8 × 5 please") == "9-4+8*5"
    assert find_expression("the numbers 1-10 and 24/7") is None


def test_real_wrong_alpaca_answers_are_flagged(real: dict[int, Example]) -> None:
    findings, _ = run([real[i] for i, *_ in WRONG])
    got = [(f.index, f.evidence["task"], f.evidence["expected"], f.evidence["found"]) for f in findings]
    assert got == WRONG


def test_real_right_alpaca_answers_are_not_flagged(real: dict[int, Example]) -> None:
    assert run([real[i] for i in RIGHT])[0] == []
