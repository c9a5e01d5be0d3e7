"""The duplicates check: exact and near copies and evaluation overlap, on constructed and real Alpaca records."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from support import alpaca

from lmtailor.audit.check import CheckContext
from lmtailor.audit.checks.duplicates import Duplicates
from lmtailor.audit.finding import Finding
from lmtailor.core.io import read_examples, write_examples
from lmtailor.core.records import Example

STORY = (
    "Once upon a time a small fox lived at the edge of a quiet forest where the river bent twice before it "
    "reached the sea and every morning the fox walked along the bank to watch the herons fish in the shallow "
    "water while the sun climbed slowly over the hills and warmed the stones"
)


def run(check: Duplicates, examples: list[Example]) -> tuple[list[Finding], dict]:
    ctx = CheckContext(check.name)
    return list(check.run(examples, ctx)), ctx.metrics


def test_exact_and_near_copies_flag_every_member_but_the_first() -> None:
    examples = [
        alpaca("Tell me a story about a fox.", STORY, i=0),
        alpaca("Name a primary colour.", "Red.", i=1),
        alpaca("tell me a  STORY about a fox.", STORY.upper(), i=2),  # same after case and whitespace folding
        alpaca("Tell me a story about a fox.", STORY.replace("warmed the stones", "warmed the rocks"), i=3),
        alpaca("???", "!!!", i=4),  # no words: must not match the next one on an empty shingle set
        alpaca("...", "---", i=5),
        alpaca("Name a primary colour.", "Blue.", i=6),  # same question, another answer: not a copy
    ]
    findings, metrics = run(Duplicates(), examples)
    got = [(f.id, f.index, f.severity, f.evidence["kind"], f.evidence["twin"]) for f in findings]
    assert got == [("t:2", 2, "medium", "exact", "t:0"), ("t:3", 3, "low", "near", "t:0")]
    assert findings[0].score == 1.0 and findings[0].source == "t.jsonl"
    assert 0.8 <= findings[1].evidence["similarity"] < 1.0
    assert findings[1].evidence["cluster"] == "t:0" and findings[1].evidence["cluster_size"] == 3
    assert metrics == {"exact": 1, "near": 1, "eval_overlap": 0, "clusters": 1}


def test_near_twin_is_the_most_similar_matched_record() -> None:
    shorter = STORY.rsplit(" ", 6)[0]
    examples = [
        alpaca("Tell a story.", shorter, i=0),
        alpaca("Tell a story.", STORY, i=1),
        alpaca("Tell a story.", STORY + " again", i=2),
    ]
    findings, metrics = run(Duplicates(), examples)
    twins = {f.id: f.evidence["twin"] for f in findings}
    assert twins == {"t:1": "t:2", "t:2": "t:1"}  # t:1 and t:2 are closer to each other than to t:0
    assert metrics["clusters"] == 1 and metrics["near"] == 2


def test_eval_overlap_grades_leaks_above_stock_phrases(tmp_path: Path) -> None:
    eval_path = tmp_path / "eval.jsonl"
    question = "Summarise the fable of the fox who lived at the edge of the quiet forest by the river."
    write_examples(eval_path, [alpaca(question, STORY, i=0), alpaca("What is two plus two", "Four")], "alpaca")
    check = Duplicates.model_validate({"eval": [{"path": str(eval_path)}]})
    words = STORY.split()
    examples = [
        alpaca("Write about herons.", "Herons " + " ".join(words[10:30]), i=0),  # 20 words of the answer: 8 13-grams
        alpaca("What is two plus two", "Four", i=1),  # shorter than 13 words: matches on its whole word sequence
        alpaca("What is two plus three", "Five", i=2),
        alpaca(question, "A fox watched herons.", i=3),  # the evaluation question itself
        alpaca("Describe a river.", "It is wide. " + " ".join(words[40:53]) + ".", i=4),  # one 13-word phrase
    ]
    findings, metrics = run(check, examples)
    got = [(f.id, f.severity, f.evidence["twin"], f.evidence["shared"], f.evidence["in_request"]) for f in findings]
    assert got == [
        ("t:0", "high", "eval:0", 8, False),
        ("t:1", "high", "eval:1", 1, True),
        ("t:3", "high", "eval:0", 6, True),  # the 18-word question holds 6 13-grams
        ("t:4", "info", "eval:0", 1, False),
    ]
    assert findings[0].evidence["eval_source"] == str(eval_path) and findings[1].score == 1.0
    assert metrics["eval_overlap"] == 4


def test_real_alpaca_slice_finds_its_one_near_pair_and_an_injected_copy(shared_data: Path) -> None:
    examples = list(islice(read_examples(shared_data / "alpaca" / "alpaca_data_52k.jsonl"), 11000))
    copy = examples[5].copy()
    copy.id, copy.metadata["index"] = "copy:0", 11000
    findings, metrics = run(Duplicates(), [*examples, copy])
    got = {(f.id, f.evidence["kind"], f.evidence["twin"]) for f in findings}
    # the only natural pair at Jaccard 0.8 in the first 11,000 records: one joke asked twice
    assert got == {("alpaca_data_52k:10589", "near", "alpaca_data_52k:742"), ("copy:0", "exact", "alpaca_data_52k:5")}
    assert metrics == {"exact": 1, "near": 1, "eval_overlap": 0, "clusters": 2}


def test_empty_dataset() -> None:
    assert run(Duplicates(), []) == ([], {"exact": 0, "near": 0, "eval_overlap": 0, "clusters": 0})
