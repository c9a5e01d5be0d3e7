"""grounding: answers invented for inputs the model cannot read, and specifics the input never gave."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import alpaca, alpaca_records

from lmtailor.audit.check import CheckContext
from lmtailor.audit.checks.grounding import Grounding
from lmtailor.audit.finding import Finding
from lmtailor.core.records import Example

# Real Alpaca records (index -> severity) that human cleaners would fix: content made up for a URL, a photo
# placeholder or an article that is only described, and a summary that brings its own names.
FLAGGED = {
    3723: "high",  # "Open the following URL and find the title of the article." + a bare huffpost.co.uk URL
    7171: "high",  # "Count the number of people in this photo" + "[attached photo]" → "There are 8 people…"
    50074: "high",  # "[Picture of an eagle]"
    36434: "high",  # "Summarize the following article: https://www.nationalgeographic.com/…" (URL in the instruction)
    3445: "medium",  # "Given an article, summarize it…" + "Article about the importance of genetic engineering…"
    1799: "medium",  # a blog post summary that names six trends the input never lists
}
# Clean records: a summary, a rewrite, extractions and URL tasks that treat the address as text.
CLEAN = [0, 5, 14251, 6768, 18809, 24804, 48785, 1397]


def run(examples: list[Example]) -> tuple[list[Finding], dict]:
    ctx = CheckContext(Grounding.name)
    return list(Grounding().run(examples, ctx)), ctx.metrics


@pytest.fixture(scope="module")
def real(shared_data: Path) -> dict[int, Example]:
    return alpaca_records(shared_data, set(FLAGGED) | set(CLEAN))


SLEEP = (
    "Adults need seven to nine hours of sleep. Researchers at several universities found that short sleepers "
    "catch more colds, gain weight faster and make riskier decisions at work, while naps shorter than thirty "
    "minutes restore alertness without grogginess."
)
TEXT = "The company reported higher sales this year and plans to open new stores across the region next spring."


def test_invented_answers_and_unsupported_specifics() -> None:
    examples = [
        alpaca("Describe the image.", "A black cat sleeps on a red sofa.", "[Image]", i=0),
        alpaca("Summarize this article.", "The article argues that cities must plant trees.", "https://ex.com/a1", i=1),
        alpaca("Describe what happens in this video.", "A man rides a bike along the beach.", i=2),
        alpaca(
            "Name the object in the photo.", "A red sports car, probably Italian.", "[Photo of a red sports car]", i=3
        ),
        alpaca("Summarize the article.", SLEEP, "The article is about the importance of sleep.", i=4),
        alpaca(
            "Summarize the following text.",
            "Acme reported sales of 4.5 million dollars in 2021, said John Smith, CEO, at a meeting in Boston.",
            TEXT,
            i=5,
        ),
    ]
    findings, metrics = run(examples)
    assert [(f.index, f.severity) for f in findings] == [
        (0, "high"),
        (1, "high"),
        (2, "high"),
        (3, "medium"),
        (4, "medium"),
        (5, "medium"),
    ]
    assert findings[0].evidence["reason"] == "the input '[Image]' stands for something the model cannot see"
    assert findings[1].evidence["reason"] == "the input is a bare URL (https://ex.com/a1) the model cannot open"
    assert findings[2].evidence["reason"] == "refers to an image, audio, video or attached file the model cannot see"
    assert findings[3].evidence["reason"].endswith("; only its caption is given")
    assert findings[4].score == 0.9697  # 32 of the summary's 33 content words appear nowhere in the input
    assert findings[5].evidence["unsupported"] == ["4.5", "2021", "John Smith", "CEO", "Boston"]
    assert findings[5].score == 1.0
    assert metrics == {"unseen_input": 4, "described_input": 1, "grounded_tasks": 1, "unsupported": 1}


def test_grounded_answers_declines_knowledge_questions_and_url_text_tasks_are_not_flagged() -> None:
    examples = [
        alpaca("Summarize the following text.", "Sales rose this year; the company plans new regional stores.", TEXT),
        alpaca("Describe the image.", "I cannot see images; please describe it in words.", "[Image]", i=1),
        alpaca("Who was the first president of the United States?", "George Washington, from 1789 to 1797.", i=2),
        alpaca("Extract the domain from the URL.", "example.com", "https://example.com/page?id=7", i=3),
        alpaca("Translate the text into German.", "Die Firma meldete höhere Umsätze in Berlin und Wien.", TEXT, i=4),
        alpaca("Calculate the total.", "The total is 1,250 dollars and 40 cents.", "Items: 1,000 and 250.40", i=5),
        alpaca(
            "Summarize the book.",
            "Harry Potter, an orphan, goes to Hogwarts with Ron and Hermione.",
            "Harry Potter and the Sorcerer's Stone by J.K. Rowling",
            i=6,
        ),
    ]
    findings, metrics = run(examples)
    assert findings == []
    assert metrics["grounded_tasks"] == 1


def test_numbers_the_input_spells_out_support_their_digits() -> None:
    text = "The company opened twelve stores in fifteen cities and hired twenty managers across the region this year."
    answer = "The company opened 12 stores in 15 cities and hired 20 managers."
    findings, metrics = run([alpaca("Summarize the following text.", answer, text)])
    assert findings == [] and metrics["grounded_tasks"] == 1
    vague = text.replace("twelve", "some").replace("fifteen", "many").replace("twenty", "several")
    findings, _ = run([alpaca("Summarize the following text.", answer, vague)])
    assert [f.evidence["unsupported"] for f in findings] == [["12", "15", "20"]]


def test_described_inputs_need_a_long_invented_answer() -> None:
    described = "The article is about the safety of self-driving cars."
    invented = (
        "Self-driving cars have faced safety problems from sensor failures and software bugs. Regulators now "
        "require more testing, companies publish disengagement reports, and insurers price the new risks while "
        "cities debate liability for crashes involving autonomous fleets in dense traffic."
    )
    findings, _ = run(
        [
            alpaca("Summarize the article.", invented, described),
            alpaca("Write a poem about the article.", invented, described, i=1),
        ]
    )
    assert [(f.index, f.severity) for f in findings] == [(0, "medium")]
    assert findings[0].score > 0.8 and findings[0].evidence["input"] == described


def test_real_alpaca_inventions_are_found_and_clean_records_are_not(real: dict[int, Example]) -> None:
    findings, _ = run(list(real.values()))
    assert {f.index: f.severity for f in findings} == FLAGGED
    assert {f.id for f in findings} == {f"alpaca_data_52k:{i}" for i in FLAGGED}
