"""The quality classifier (`classify` step, `lmtailor score --classifier`) on real data and real embeddings.

Small real subsets: LIMA as good against raw Alpaca as unlabeled (positive-unlabeled), and user labels built
from Dolly (the human answer labelled good, flan-t5-base's answer to the same question labelled bad).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.core.config import ConfigError
from lmtailor.core.io import DataError, read_jsonl
from lmtailor.curate.pipeline import Run, curate
from lmtailor.curate.recipe import Recipe
from lmtailor.score.classifier import QualityClassifier, TrainingSource, train

pytestmark = pytest.mark.model  # loads a model to generate, score or train: not in the fast tier

runner = CliRunner()


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict[str, Path]:
    """Real subsets in a temporary folder: 55 LIMA, 240 Alpaca (a pool and a fresh part), 100 Dolly label pairs."""
    tmp = tmp_path_factory.mktemp("classifier-data")
    lima = json.loads((shared_data / "lima" / "lima.json").read_text())
    alpaca = [json.loads(line) for line in (shared_data / "alpaca" / "alpaca_data_52k.jsonl").open().readlines()[:240]]
    dolly = [json.loads(line) for line in (shared_data / "dolly" / "dolly_first6400.jsonl").open().readlines()[:100]]
    labels = [1, "good", True, "1"]  # users write labels many ways
    labeled = []
    for i, d in enumerate(dolly):
        labeled.append({"instruction": d["instruction"], "output": d["response"], "quality": labels[i % 4]})
        labeled.append(
            {"instruction": d["instruction"], "output": d["flan_t5_base_output"], "quality": i % 2 and "bad"}
        )
    return {
        "lima": _jsonl(tmp / "lima_sub.jsonl", lima[:40]),
        "lima_fresh": _jsonl(tmp / "lima_fresh.jsonl", lima[40:55]),
        "pool": _jsonl(tmp / "alpaca_pool.jsonl", alpaca[:200]),
        "fresh": _jsonl(tmp / "alpaca_fresh.jsonl", alpaca[200:]),
        "labeled": _jsonl(tmp / "dolly_labeled.jsonl", labeled),
    }


def _pu_recipe(data: dict[str, Path], out: Path, **cut: Any) -> Recipe:
    step = {
        "step": "classify",
        "train": [{"path": str(data["lima"]), "label": "good"}, {"path": str(data["pool"]), "label": "unlabeled"}],
        "save": str(out / "classifier.npz"),
        **cut,
    }
    return Recipe.parse({"inputs": [str(data["pool"])], "steps": [step]})


@pytest.fixture(scope="module")
def pu_run(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("pu-run")
    return out, curate(_pu_recipe(data, out, top_fraction=0.5), out, progress=False)


def test_pu_training_reports_cv_and_keeps_the_top_half_with_scores_and_provenance(pu_run) -> None:
    out, manifest = pu_run
    metrics = manifest.step_stats[-1].metrics
    cv = metrics["classifier"]["cv"]
    assert metrics["classifier"]["setting"] == "positive-unlabeled"
    assert cv["folds"] == 5 and cv["good"] == 40 and cv["other"] == 200
    assert cv["roc_auc"]["mean"] > 0.9  # LIMA's long, careful answers are easy to tell from Alpaca's
    assert {"average_precision", "accuracy", "balanced_accuracy", "precision", "recall"} <= set(cv)
    assert metrics["cut"] == {"rule": "top fraction 0.5", "score": metrics["cut"]["score"], "kept": 100, "dropped": 100}
    assert metrics["scores"]["n"] == 200 and sum(metrics["scores"]["histogram"]["counts"]) == 200
    assert metrics["out_of_fold"] == 200  # the pool it scores is the pool it learned from

    kept = list(read_jsonl(out / "curated.jsonl"))
    ledger = list(read_jsonl(out / "ledger.jsonl"))
    drops = [e for e in ledger if e["action"] == "drop"]
    assert manifest.counts.accounted and manifest.counts.dropped == 100 == len(drops)
    assert all(e["step"] == "classify" and e["reason"] == "low_quality" for e in drops)
    assert min(r["quality_score"] for r in kept) >= max(e["score"] for e in drops)
    changes = [e for e in ledger if e["action"] == "change"]
    assert len(changes) == 100 and {e["reason"] for e in changes} == {"scored"}
    assert not {e["id"] for e in changes} & {e["id"] for e in drops}
    prov = kept[0]["provenance"]
    assert prov["step"] == "classify"
    assert prov["classifier"] == metrics["classifier"]["id"] and prov["embedding_model"] == "all-MiniLM-L6-v2"
    assert prov["out_of_fold"] is True and prov["cv_roc_auc"] == cv["roc_auc"]["mean"]
    assert [t["label"] for t in prov["trained_on"]] == ["good", "unlabeled"] and len(prov["trained_on"][0]["digest"])
    assert (out / "classifier.npz").exists() and metrics["classifier"]["saved"] == str(out / "classifier.npz")


def test_a_reused_classifier_rescores_a_scored_file_alike_and_chains_provenance(pu_run, tmp_path: Path) -> None:
    first_out, first = pu_run
    step = {"step": "classify", "classifier": str(first_out / "classifier.npz")}
    inputs = [str(first_out / "curated.jsonl")]
    manifest = curate(Recipe.parse({"inputs": inputs, "steps": [step]}), tmp_path, progress=False)
    metrics = manifest.step_stats[-1].metrics
    assert metrics["classifier"]["id"] == first.step_stats[-1].metrics["classifier"]["id"]
    assert metrics["classifier"]["reused"] and metrics["classifier"]["saved"] is None
    assert metrics["cut"]["rule"] == "keep all (scores only)" and manifest.counts.kept == 100
    before = list(read_jsonl(first_out / "curated.jsonl"))
    after = list(read_jsonl(tmp_path / "curated.jsonl"))
    assert [r["quality_score"] for r in after] == [r["quality_score"] for r in before]  # out-of-fold, from the file
    assert after[0]["provenance"]["previous"] == before[0]["provenance"]
    assert after[0]["provenance"]["classifier"] == before[0]["provenance"]["classifier"]


def test_user_labels_train_a_classifier_and_the_threshold_drops_below_it(data, tmp_path: Path) -> None:
    step = {
        "step": "classify",
        "train": [{"path": str(data["labeled"]), "label_field": "quality"}],
        "fields": ["output"],  # each question comes twice, once per answer: only the answer tells them apart
        "threshold": 0.5,
        "folds": 3,
    }
    manifest = curate(Recipe.parse({"inputs": [str(data["labeled"])], "steps": [step]}), tmp_path, progress=False)
    metrics = manifest.step_stats[-1].metrics
    cv = metrics["classifier"]["cv"]
    assert metrics["classifier"]["setting"] == "labeled" and cv["good"] == 100 and cv["other"] == 100
    assert cv["roc_auc"]["mean"] > 0.6  # human answers against flan-t5-base's
    ledger = [e for e in read_jsonl(tmp_path / "ledger.jsonl") if e["action"] == "drop"]
    kept = list(read_jsonl(tmp_path / "curated.jsonl"))
    assert len(kept) + len(ledger) == 200 and manifest.counts.accounted
    assert all(e["score"] < 0.5 and "< threshold 0.5" in e["detail"] for e in ledger)
    assert all(r["quality_score"] >= 0.5 for r in kept)
    humans = sum(r["quality"] != 0 and r["quality"] != "bad" for r in kept)
    assert humans > len(kept) / 2  # most of what survives is a human answer


def test_training_errors_name_the_problem(data, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"0 good and 200 other"):
        train([TrainingSource(path=data["pool"], label="unlabeled")], ["instruction", "input", "output"])
    broken = tmp_path / "labels.jsonl"
    records = [{"instruction": f"q{i}", "output": f"a{i}", "ok": i % 2} for i in range(5)]
    del records[3]["ok"]
    _jsonl(broken, records)
    with pytest.raises(DataError, match=rf"{broken}: record 3: has no label field 'ok'"):
        TrainingSource(path=broken, label_field="ok").labelled()
    records[3]["ok"] = "maybe"
    _jsonl(broken, records)
    with pytest.raises(DataError, match=r"record 3: label 'ok' is 'maybe'; use 0/1"):
        TrainingSource(path=broken, label_field="ok").labelled()
    not_npz = _jsonl(tmp_path / "classifier.npz", records)
    with pytest.raises(DataError, match="not a classifier saved by lmtailor score"):
        QualityClassifier.load(not_npz)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"step": "classify"}, "give training data"),
        ({"step": "classify", "classifier": "c.npz", "top": 3, "threshold": 0.5}, "keep by one rule: threshold or top"),
        ({"step": "classify", "train": [{"path": "a.jsonl"}]}, "give either label"),
    ],
)
def test_recipe_errors(step: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Recipe.parse({"inputs": ["x.jsonl"], "steps": [step]})


def test_training_files_resolve_from_the_recipe_and_enter_the_checkpoint_fingerprint(data, tmp_path: Path) -> None:
    """A changed training file must not let a resumed run reuse work done with the old classifier."""
    good = _jsonl(tmp_path / "good.jsonl", [{"instruction": "q", "output": "a"}])
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"inputs: [{data['pool']}]\nsteps:\n  - step: classify\n"
        "    train: [{path: good.jsonl, label: good}, {path: good.jsonl, label: unlabeled}]\n  - step: filter\n"
    )
    loaded = Recipe.load(recipe)
    assert loaded.steps[0].train[0].path == good
    before = Run(loaded, tmp_path / "run").fingerprints
    _jsonl(good, [{"instruction": "q", "output": "another answer"}])
    assert Run(Recipe.load(recipe), tmp_path / "run").fingerprints[0] != before[0]


def test_cli_scores_reports_and_reuses(data, tmp_path: Path) -> None:
    """Train on LIMA against the Alpaca pool, score unseen Alpaca and unseen LIMA: LIMA should come out on top."""
    inputs = [str(data["fresh"]), str(data["lima_fresh"])]  # 40 Alpaca, then 15 LIMA
    args = ["score", *inputs, "--classifier", "--good", str(data["lima"]), "--unlabeled", str(data["pool"])]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--top", "10", "--no-progress"])
    assert result.exit_code == 0, result.output
    for text in ("5-fold cross-validation, 40 good vs 200 other", "roc_auc", "positive-unlabeled:", "top 10"):
        assert text in result.output
    assert "kept 10, dropped 45" in result.output and "every record accounted for" in result.output
    reuse = ["score", *inputs, "--classifier", "--reuse", str(tmp_path / "a" / "classifier.npz")]
    result = runner.invoke(app, [*reuse, "--out", str(tmp_path / "b"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "reused" in result.output and "keep all" in result.output
    scores = [r["quality_score"] for r in read_jsonl(tmp_path / "b" / "scored.jsonl")]
    assert np.mean(scores[40:]) > np.mean(scores[:40]) + 0.3  # unseen LIMA still looks like LIMA
    assert not any(r["provenance"]["out_of_fold"] for r in read_jsonl(tmp_path / "b" / "scored.jsonl"))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "choose a scorer: --classifier"),
        (["--classifier", "--good", "x.json"], "train on --good with --bad or --unlabeled"),
        (["--classifier", "--labeled", "x.json"], "--labeled files and --label-field"),
        (["--classifier", "--reuse", "c.npz", "--good", "x.json"], "--reuse scores with a saved classifier"),
    ],
)
def test_cli_flag_errors(extra: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["score", "in.jsonl", "--out", str(tmp_path), *extra])
    assert result.exit_code == 2 and message in result.output
