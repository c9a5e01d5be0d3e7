"""The agreement check against textbook values: Cohen (Wikipedia's 50-item example), Fleiss (1971) and
Krippendorff (2011), then span F1, per-annotator quality and the findings on constructed annotation sets."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lmtailor.audit.check import CheckContext
from lmtailor.audit.checks.agreement import Agreement, fleiss_kappa, krippendorff_alpha, span_f1
from lmtailor.audit.finding import Finding
from lmtailor.core.io import read_examples, write_jsonl
from lmtailor.core.records import Example

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", example C: 4 observers, 12 units,
# values 1-5, None where an observer gave no value. Published: nominal 0.743, ordinal 0.815, interval 0.849.
KRIPPENDORFF = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}
# Fleiss (1971) as tabulated on Wikipedia: 10 subjects, 14 raters, 5 categories; kappa 0.210.
FLEISS = np.array(
    [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
     [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
)  # fmt: skip


def record(i: int, annotations: list[dict[str, Any]]) -> Example:
    msgs = [{"role": "user", "content": f"Item {i}"}, {"role": "assistant", "content": "x"}]
    return Example(f"t:{i}", msgs, "", {"source": "t.jsonl", "index": i, "extra": {"annotations": annotations}})


def run(examples: list[Example], **settings: Any) -> tuple[list[Finding], dict]:
    ctx = CheckContext(Agreement.name)
    return list(Agreement(**settings).run(examples, ctx)), ctx.metrics


def krippendorff_records(key: str) -> list[Example]:
    return [
        record(
            u,
            [
                {"annotator": a, key: v[u] if key == "rating" else str(v[u])}
                for a, v in KRIPPENDORFF.items()
                if v[u] is not None
            ],
        )
        for u in range(12)
    ]


def test_krippendorff_alpha_matches_the_published_example() -> None:
    units = [[v[u] for v in KRIPPENDORFF.values() if v[u] is not None] for u in range(12)]
    assert round(krippendorff_alpha(units, "nominal"), 3) == 0.743
    assert round(krippendorff_alpha(units, "ordinal"), 3) == 0.815
    assert round(krippendorff_alpha(units, "interval"), 3) == 0.849
    assert krippendorff_alpha([[1, 1], [1, 1, 1], [2]]) is None  # one value among pairable units: undefined


def test_fleiss_kappa_matches_the_published_example() -> None:
    assert round(fleiss_kappa(FLEISS), 3) == 0.210
    assert fleiss_kappa(np.array([[3, 0], [3, 0]])) is None


def test_span_f1_exact_and_overlap() -> None:
    a, b = [(0, 5), (10, 15)], [(0, 5), (11, 15)]
    # exact: 1 shared span of 2 + 2; overlap: 9 shared characters of 10 + 9
    assert span_f1([(a, b)]) == (0.5, 18 / 19)
    assert span_f1([((), ())]) == (None, None)
    assert span_f1([(((0, 3, "PER"),), ((0, 3, "ORG"),))])[0] == 0.0  # a different tag is a different span


def test_two_annotators_cohen_kappa_of_the_textbook_table() -> None:
    # Wikipedia's Cohen's kappa example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> p_o 0.7, kappa 0.4
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    examples = [
        record(i, [{"annotator": "A", "label": x}, {"annotator": "B", "label": y}]) for i, (x, y) in enumerate(pairs)
    ]
    findings, metrics = run(examples)
    label = metrics["label"]
    assert metrics["annotated"] == 50 and label["items"] == 50 and label["annotators"] == ["A", "B"]
    assert label["headline"] == {"coefficient": "Cohen's kappa", "value": 0.4}
    assert label["fleiss_kappa"] == pytest.approx(0.3939, abs=1e-4)  # Fleiss pools both raters' marginals
    assert label["ceiling"] == {"agreement": 0.7, "kappa": 0.4}
    assert [p["score"] for p in label["per_annotator"]] == [0.4, 0.4]  # the majority of one other is that one
    per_record = [f for f in findings if f.index >= 0]
    assert len(per_record) == 15 and {f.severity for f in per_record} == {"low"}  # 1-1 splits: no majority
    assert per_record[0].evidence == {"labels": {"A": "yes", "B": "no"}}
    dataset = [f for f in findings if f.index < 0]
    assert [f.severity for f in dataset] == ["info"]  # kappa 0.4 is not below the 0.4 floor: just the ceiling
    assert "0.70" in dataset[0].message


def test_many_annotators_fleiss_headline_is_judged_low() -> None:
    examples = []
    for i, row in enumerate(FLEISS):
        labels = [c for c, n in enumerate(row) for _ in range(n)]
        examples.append(record(i, [{"annotator": f"r{j}", "label": c} for j, c in enumerate(labels)]))
    findings, metrics = run(examples)
    assert metrics["label"]["headline"] == {"coefficient": "Fleiss' kappa", "value": 0.2099}
    low = [f for f in findings if f.index < 0 and "value" in f.evidence]
    assert [(f.severity, f.evidence["coefficient"]) for f in low] == [("medium", "Fleiss' kappa")]
    assert sum(f.index >= 0 for f in findings) == 9  # every subject but the unanimous first


def test_missing_annotations_use_krippendorff_alpha() -> None:
    _, metrics = run(krippendorff_records("label"))
    assert metrics["label"]["fleiss_kappa"] is None  # 3 or 4 labels per unit: Fleiss does not apply
    assert metrics["label"]["headline"] == {"coefficient": "Krippendorff's alpha", "value": 0.7434}
    assert metrics["label"]["items"] == 11  # unit 12 has one value: nothing to agree on
    _, ratings = run(krippendorff_records("rating"))
    assert ratings["rating"]["krippendorff_alpha"] == {"interval": 0.8491, "ordinal": 0.8154}
    assert ratings["rating"]["headline"]["value"] == 0.8491


def test_rating_spread_and_an_outlier_annotator() -> None:
    rng = np.random.default_rng(0)
    examples = []
    for i in range(40):
        truth = int(rng.integers(1, 6))
        careless = int(rng.integers(1, 6))
        examples.append(
            record(
                i,
                [
                    {"annotator": "a", "rating": truth},
                    {"annotator": "b", "rating": truth},
                    {"annotator": "c", "rating": truth},
                    {"annotator": "d", "rating": careless},
                ],
            )
        )
    findings, metrics = run(examples)
    scores = {p["annotator"]: p["score"] for p in metrics["rating"]["per_annotator"]}
    assert scores["a"] == scores["b"] == scores["c"] == 1.0 and scores["d"] < 0.4
    outlier = [f for f in findings if f.evidence.get("annotator")]
    assert [(f.severity, f.evidence["annotator"]) for f in outlier] == [("medium", "d")]
    spread = [f for f in findings if f.index >= 0]
    assert spread and all(f.severity == "low" and f.score >= 2 for f in spread)
    assert len(spread) == sum(
        abs(r[0]["rating"] - r[3]["rating"]) >= 2 for r in (ex.metadata["extra"]["annotations"] for ex in examples)
    )


def test_spans_per_record_and_pooled() -> None:
    examples = [
        record(0, [{"annotator": "A", "spans": [[0, 5], [10, 15]]}, {"annotator": "B", "spans": [[0, 5], [11, 15]]}]),
        record(1, [{"annotator": "A", "spans": [[3, 7]]}, {"annotator": "B", "spans": [[3, 7]]}]),
        record(2, [{"annotator": "A", "spans": [[0, 4]]}, {"annotator": "B", "spans": [[20, 24]]}]),
    ]
    findings, metrics = run(examples)
    spans = metrics["spans"]
    assert spans["f1_exact"] == round(4 / 8, 4) and spans["f1_overlap"] == round((18 + 8) / (19 + 8 + 8), 4)
    per_record = {f.id: f.severity for f in findings if f.index >= 0}
    assert per_record == {"t:0": "info", "t:2": "low"}  # F1 0.5 and 0.0; the identical record is not flagged
    assert spans["headline"] == {"coefficient": "pairwise exact-match F1", "value": 0.5}


def test_malformed_and_repeated_annotations(tmp_path: Path) -> None:
    rows = [
        {
            "instruction": "a",
            "output": "x",
            "annotations": [
                {"annotator": "A", "label": "pos"},
                {"annotator": "A", "label": "neg"},  # a repeat: the first counts
                {"annotator": "B", "label": "pos"},
                {"annotator": "C", "rating": "high"},
            ],
        },
        {"instruction": "b", "output": "y", "annotations": [{"label": "neg"}, {"label": "pos"}]},  # no names
    ]
    write_jsonl(tmp_path / "ann.jsonl", rows)
    findings, metrics = run(list(read_examples(tmp_path / "ann.jsonl")))
    assert metrics["annotated"] == 2 and "rating" not in metrics and metrics["skipped"] == {"rating": 1}
    assert metrics["label"]["annotators"] == ["#0", "#1", "A", "B"]
    assert [(f.id, f.evidence) for f in findings if f.index >= 0] == [("ann:1", {"labels": {"#0": "neg", "#1": "pos"}})]


def test_no_annotations_on_real_alpaca(shared_data: Path) -> None:
    examples = list(islice(read_examples(shared_data / "alpaca" / "alpaca_data_52k.jsonl"), 2000))
    assert run(examples) == ([], {"annotated": 0})
