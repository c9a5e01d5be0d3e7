"""The diversity check: its measures on constructed text, its dataset findings, and its metrics on real Alpaca."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from support import alpaca

from lmtailor.audit.check import CheckContext
from lmtailor.audit.checks.diversity import Diversity, distinct_n, length_histogram, task_kind, verb_and_object
from lmtailor.audit.finding import Finding
from lmtailor.core.io import read_examples
from lmtailor.core.records import Example


def run(check: Diversity, examples: list[Example]) -> tuple[list[Finding], dict]:
    ctx = CheckContext(check.name)
    return list(check.run(examples, ctx)), ctx.metrics


@pytest.fixture(scope="module")
def alpaca_600(shared_data: Path) -> list[Example]:
    return list(islice(read_examples(shared_data / "alpaca" / "alpaca_data_52k.jsonl"), 600))


@pytest.mark.parametrize(
    ("instruction", "verb", "obj"),
    [
        ("Generate a list of five words that rhyme with cat.", "generate", "list"),
        ("Given a sentence, rewrite it in the passive voice.", "rewrite", ""),
        ("Could you please write a short story about a lonely robot?", "write", "story"),
        ("Please summarize the article below.", "summarize", "article"),
        ("Come up with three creative names for a bakery.", "come up with", "names"),
        ("Name 3 countries in Europe.", "name", "countries"),
        ("What is the capital of France?", "what", ""),
        ("", "", ""),
    ],
)
def test_verb_and_object(instruction: str, verb: str, obj: str) -> None:
    assert verb_and_object(instruction) == (verb, obj)


def test_task_kinds() -> None:
    assert [task_kind(v) for v in ("write", "come up with", "translate", "summarize", "what", "frobnicate")] == [
        "generation",
        "generation",
        "translation",
        "summarization",
        "open question",
        "other",
    ]


def test_distinct_n_counts_ngrams_within_records() -> None:
    # unigrams a b a b | a b: 2 distinct of 6; bigrams ab ba ab | ab: 2 of 4; trigrams aba bab: 2 of 2.
    # Texts without words add nothing, and no n-gram spans two records.
    assert distinct_n(["a b a b", "", "!!", "A, b."]) == {"1": 0.3333, "2": 0.5, "3": 1.0}
    assert distinct_n(["", "?"]) == {"1": 0.0, "2": 0.0, "3": 0.0}


def test_length_histogram_covers_every_record() -> None:
    lengths = np.array([0, 1, 1, 2, 5, 40, 400])
    hist = length_histogram(lengths, bins=10)
    assert hist["bins"][0] == 0 and hist["bins"][-1] == 401 and hist["bins"] == sorted(set(hist["bins"]))
    assert sum(hist["counts"]) == len(lengths) and hist["counts"][:3] == [1, 2, 1]


def test_one_dominant_verb_and_missing_kinds_are_dataset_findings() -> None:
    words = ["house", "river", "bread", "winter", "friend", "garden", "music", "window", "letter", "mountain"]
    examples = [alpaca(f"Translate '{w} {i}' into French.", f"{w} {i}", i=i) for i, w in enumerate(words * 8)]
    examples += [alpaca(f"Write a poem about the number {i}.", "A poem.", i=100 + i) for i in range(20)]
    findings, metrics = run(Diversity(sample=100), examples)
    assert all(f.index == -1 for f in findings)  # a dataset view: nothing about single records
    verb = next(f for f in findings if "verb" in f.evidence)
    assert (verb.severity, verb.evidence["verb"], verb.evidence["share"]) == ("medium", "translate", 0.8)
    rare = next(f for f in findings if "kinds" in f.evidence)
    assert rare.severity == "info" and "generation" not in rare.evidence["kinds"]
    assert set(rare.evidence["kinds"]) == {
        "brainstorming",
        "open question",
        "explanation",
        "analysis",
        "rewriting",
        "classification",
        "extraction",
        "summarization",
        "math",
    }
    assert metrics["verbs"] == [["translate", 80], ["write", 20]]


def test_a_fixed_instruction_shows_as_a_dominant_cluster(alpaca_600: list[Example]) -> None:
    # the common shape of a classification set: one instruction, the item to label in `input`
    fixed = [alpaca("Classify the sentiment of this review.", "positive", i=1000 + i) for i in range(100)]
    for i, ex in enumerate(fixed):
        ex.input = f"Review {i}: the food was fine."
    findings, metrics = run(Diversity(sample=400), [*alpaca_600[:300], *fixed])
    cluster = [f for f in findings if "cluster" in f.evidence]
    assert [f.severity for f in cluster] == ["medium"]
    assert cluster[0].evidence["share"] >= 0.25 and all(i.startswith("t:") for i in cluster[0].evidence["examples"])
    assert "sentiment" in cluster[0].evidence["label"]
    assert metrics["clusters"][0]["share"] == cluster[0].evidence["share"]


def test_metrics_on_real_alpaca(alpaca_600: list[Example]) -> None:
    findings, metrics = run(Diversity(sample=300, clusters=8), alpaca_600)
    assert not [f for f in findings if f.severity in ("medium", "high")]  # Alpaca's head is varied
    assert set(metrics["distinct_n"]) == {"instruction", "output"}
    for field in ("instruction", "output"):
        assert list(metrics["distinct_n"][field]) == ["1", "2", "3"]
        assert 0 < metrics["distinct_n"][field]["1"] < metrics["distinct_n"][field]["2"] <= 1
        assert sum(metrics["lengths"][field]["counts"]) == 600
        assert len(metrics["lengths"][field]["bins"]) == len(metrics["lengths"][field]["counts"]) + 1
    assert len(metrics["verbs"]) == 25 and metrics["verbs"][0][1] >= metrics["verbs"][-1][1]
    assert metrics["verbs"][0][0] in {"generate", "create", "describe", "write"}
    assert 3 < metrics["verb_entropy"] < np.log2(600)
    clusters = metrics["clusters"]
    assert len(clusters) == 8 and sum(c["size"] for c in clusters) == metrics["sampled"] == 300
    assert all(c["label"] for c in clusters) and clusters[0]["share"] >= clusters[-1]["share"]
    points = metrics["map"]
    assert len(points["x"]) == len(points["y"]) == len(points["cluster"]) == len(points["id"]) == 300
    assert set(points["cluster"]) == {c["id"] for c in clusters}
    assert sum(k["count"] for k in metrics["kinds"]) == 600


def test_sample_is_fixed_by_seed(alpaca_600: list[Example]) -> None:
    _, first = run(Diversity(sample=200, clusters=5), alpaca_600)
    _, second = run(Diversity(sample=200, clusters=5), alpaca_600)
    assert first["map"] == second["map"] and first["clusters"] == second["clusters"]


def test_tiny_and_empty_sets() -> None:
    assert run(Diversity(), []) == ([], {})
    _, metrics = run(Diversity(), [alpaca("Write a haiku.", "Leaves fall.")])
    assert metrics["clusters"] == [] and metrics["verbs"] == [["write", 1]]
