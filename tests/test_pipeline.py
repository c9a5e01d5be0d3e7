"""The curate run as a whole: accounting, reproducibility, resume after SIGKILL, explain, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.core.config import resolve_paths
from lmtailor.core.io import read_jsonl
from lmtailor.curate.pipeline import curate
from lmtailor.curate.recipe import Recipe

RECIPE = """
inputs:
  - path: {src}
on_error: skip
steps:
  - step: normalize
  - step: exact_dedup
  - step: near_dedup
    threshold: 0.7
  - step: semantic_dedup
    threshold: 0.97
  - step: filter
"""


@pytest.fixture
def sample(tmp_path: Path, shared_data: Path) -> Path:
    """500 real Alpaca lines plus two unreadable ones and an exact duplicate."""
    lines = (shared_data / "alpaca" / "alpaca_data_52k.jsonl").read_text().splitlines()[:500]
    lines[10] = '{"instruction": "broken", "output": '
    lines.insert(20, '{"prompt": 1}')
    lines.append(lines[5])
    path = tmp_path / "sample.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _recipe(tmp_path: Path, src: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.format(src=src))
    return path


def test_every_record_is_accounted_for(tmp_path: Path, sample: Path) -> None:
    manifest = curate(Recipe.load(_recipe(tmp_path, sample)), tmp_path / "run", progress=False)
    c = manifest.counts
    assert c.input == 502 and c.rejected == 2 and c.accounted
    assert c.kept + c.dropped + c.rejected == c.input
    ledger = list(read_jsonl(tmp_path / "run" / "ledger.jsonl"))
    assert sum(e["action"] == "drop" for e in ledger) == c.dropped
    rejects = list(read_jsonl(tmp_path / "run" / "rejects.jsonl"))
    assert [(r["index"], r["line"]) for r in rejects] == [(10, 11), (20, 21)]
    assert "invalid JSON" in rejects[0]["reason"] and "none of the formats" in rejects[1]["reason"]
    assert any(e["reason"] == "exact_duplicate" and e["twin"] == "sample:5" for e in ledger)
    assert [s.step for s in manifest.steps] == [
        "read",
        "0:normalize",
        "1:exact_dedup",
        "2:near_dedup",
        "3:semantic_dedup",
        "4:filter",
    ]


def test_rerun_is_byte_identical(tmp_path: Path, sample: Path) -> None:
    recipe = Recipe.load(_recipe(tmp_path, sample))
    curate(recipe, tmp_path / "a", progress=False)
    curate(recipe, tmp_path / "b", progress=False, fresh=True)
    for name in ("curated.jsonl", "ledger.jsonl", "rejects.jsonl", "clusters.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_killed_run_resumes_from_checkpoint(tmp_path: Path, sample: Path) -> None:
    recipe_path = _recipe(tmp_path, sample)
    run = tmp_path / "run"
    # an empty embedding cache keeps the child busy in semantic_dedup long enough to be killed there
    env = {**os.environ, "LMTAILOR_NO_PROGRESS": "1", "LMTAILOR_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmtailor", "curate", "--recipe", str(recipe_path), "--out", str(run)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = run / ".work" / "state.json"  # names checkpoint 2 once near_dedup (a whole-set step) is done

    def checkpointed() -> bool:
        return state.exists() and "2" in json.loads(state.read_text())["checkpoints"]

    deadline = time.time() + 120
    while not checkpointed() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert checkpointed(), "the run never reached its near_dedup checkpoint"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "manifest.json").exists()
    assert not (run / "curated.jsonl").exists()  # no half-written output

    resumed = curate(Recipe.load(recipe_path), run, progress=False)
    assert resumed.resumed_at_step == 3
    assert [s.step for s in resumed.steps][:4] == ["read", "0:normalize", "1:exact_dedup", "2:near_dedup"]
    fresh = curate(Recipe.load(recipe_path), tmp_path / "fresh", progress=False)
    for name in ("curated.jsonl", "ledger.jsonl"):
        assert (run / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes(), name
    assert resumed.counts == fresh.counts


@pytest.mark.parametrize("damage", ["{oops", "[" * 10_000, '{"checkpoints": [1]}', '{"checkpoints": {"1": 5}}'])
def test_a_damaged_checkpoint_state_means_no_checkpoint(tmp_path: Path, sample: Path, damage: str) -> None:
    """Checkpoints save time, never data: a damaged state reruns the steps rather than stopping the run."""
    steps = [{"step": "normalize"}, {"step": "exact_dedup"}, {"step": "near_dedup"}, {"step": "filter"}]
    recipe = Recipe.parse({"inputs": [str(sample)], "on_error": "skip", "steps": steps})
    first = curate(recipe, tmp_path / "run", progress=False)
    kept = (tmp_path / "run" / "curated.jsonl").read_bytes()
    (tmp_path / "run" / ".work" / "state.json").write_text(damage)
    again = curate(recipe, tmp_path / "run", progress=False)
    assert again.resumed_at_step is None and again.counts == first.counts
    assert (tmp_path / "run" / "curated.jsonl").read_bytes() == kept


def test_changed_recipe_reuses_only_checkpoints_before_the_change(tmp_path: Path, sample: Path) -> None:
    recipe = Recipe.load(_recipe(tmp_path, sample))
    assert curate(recipe, tmp_path / "run", progress=False).resumed_at_step is None
    assert curate(recipe, tmp_path / "run", progress=False).resumed_at_step == 4  # after semantic_dedup
    recipe.steps[2].threshold = 0.75  # type: ignore[union-attr]
    assert curate(recipe, tmp_path / "run", progress=False).resumed_at_step == 2  # before near_dedup


def test_files_a_step_reads_resolve_against_the_recipe_and_changing_one_invalidates(
    tmp_path: Path, sample: Path
) -> None:
    """Every file a step reads besides its input (decontaminate's eval set, judge's second file and rubrics,
    the classifier's training files) is found relative to the recipe, and its contents are part of the step's
    fingerprint: editing it reruns that step, not the ones before."""
    (tmp_path / "eval.jsonl").write_text('{"instruction": "Give three tips for staying healthy.", "output": "x"}\n')
    (tmp_path / "rubrics.yaml").write_text("concise: 'Is the answer short?'\n")
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(f"""
inputs: [{{path: {sample}}}]
on_error: skip
steps:
  - {{step: near_dedup}}
  - {{step: decontaminate, eval: [{{path: eval.jsonl}}]}}
  - {{step: near_dedup, threshold: 0.9}}
  - {{step: filter}}
""")
    judge = resolve_paths(Recipe.parse({"inputs": [{"path": str(sample)}], "steps": [
        {"step": "judge", "rubrics": ["concise"], "rubrics_file": "rubrics.yaml"},
        {"step": "judge", "against": {"path": "eval.jsonl"}},
        {"step": "classify", "train": [{"path": "eval.jsonl", "label": "good"}, {"path": "b.jsonl", "label": "bad"}]},
    ]}), tmp_path)  # fmt: skip
    assert [[f.path for f in s.data_files()] for s in judge.steps] == [
        [tmp_path / "rubrics.yaml"],
        [tmp_path / "eval.jsonl"],
        [tmp_path / "eval.jsonl", tmp_path / "b.jsonl"],
    ]

    recipe = Recipe.load(recipe_path)
    assert recipe.steps[1].data_files()[0].path == tmp_path / "eval.jsonl"  # type: ignore[attr-defined]
    assert curate(recipe, tmp_path / "run", progress=False).resumed_at_step is None
    assert curate(recipe, tmp_path / "run", progress=False).resumed_at_step == 3  # checkpoints: at whole sets
    with (tmp_path / "eval.jsonl").open("a") as f:
        f.write('{"instruction": "What are the three primary colors?", "output": "y"}\n')
    assert curate(recipe, tmp_path / "run", progress=False).resumed_at_step == 1  # decontaminate reruns


runner = CliRunner()


def test_cli_curate_and_explain(tmp_path: Path, sample: Path) -> None:
    run = tmp_path / "run"
    result = runner.invoke(app, ["curate", str(sample), "--out", str(run), "--on-error", "skip", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "every record accounted for" in result.output
    dup = next(e for e in read_jsonl(run / "ledger.jsonl") if e["reason"] == "exact_duplicate")
    shown = runner.invoke(app, ["explain", dup["id"], "--run", str(run)])
    assert shown.exit_code == 0, shown.output
    assert "dropped by exact_dedup: exact_duplicate" in shown.output and dup["twin"] in shown.output
    twin = runner.invoke(app, ["explain", dup["twin"], "--run", str(run)])
    assert "kept in place of 1 duplicate" in twin.output and "fate: kept" in twin.output
    assert "Give three tips" in runner.invoke(app, ["explain", "sample:0", "--run", str(run)]).output
    rejected = runner.invoke(app, ["explain", "sample:10", "--run", str(run)])
    assert "rejected while reading: invalid JSON" in rejected.output
    assert runner.invoke(app, ["explain", "nope:1", "--run", str(run)]).exit_code == 1


def test_cli_bad_input_names_file_and_record(tmp_path: Path, sample: Path) -> None:
    result = runner.invoke(app, ["curate", str(sample), "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 2
    assert f"{sample}: record 10 (line 11): invalid JSON" in " ".join(result.output.split())


def test_cli_convert_round_trip(tmp_path: Path, shared_data: Path) -> None:
    lima = shared_data / "lima" / "lima.json"
    out = tmp_path / "lima.parquet"
    result = runner.invoke(app, ["convert", str(lima), str(out), "--to", "sharegpt"])
    assert result.exit_code == 0, result.output
    assert "wrote 1,029 records" in result.output
    back = tmp_path / "lima.jsonl"
    assert runner.invoke(app, ["convert", str(out), str(back), "--to", "sharegpt"]).exit_code == 0
    first = json.loads(back.read_text().splitlines()[0])
    assert first["conversations"][0]["from"] == "human"


def test_edited_eval_file_invalidates_the_checkpoints_that_read_it(tmp_path: Path, sample: Path) -> None:
    eval_path = tmp_path / "eval.jsonl"
    eval_path.write_text('{"instruction": "What are the three primary colors?", "output": "Red, blue, yellow."}\n')
    recipe = Recipe.parse(
        {
            "inputs": [str(sample)],
            "on_error": "skip",
            "steps": [
                {"step": "decontaminate", "eval": [{"path": str(eval_path)}]},
                {"step": "near_dedup"},
                {"step": "filter"},
            ],
        }
    )
    assert curate(recipe, tmp_path / "run", progress=False).resumed_at_step is None
    assert curate(recipe, tmp_path / "run", progress=False).resumed_at_step == 2
    eval_path.write_text('{"instruction": "Describe the structure of an atom.", "output": "Nucleus, electrons."}\n')
    assert curate(recipe, tmp_path / "run", progress=False).resumed_at_step is None
