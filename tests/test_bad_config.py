"""Recipes, training configs and seed-task files that are not what they claim: one clean line, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmtailor.cli import app

runner = CliRunner()
BROKEN = {
    "not UTF-8": b"inputs: [caf\xe9.jsonl]\n",
    "a YAML syntax error": b"inputs: [a.jsonl\nsteps: {\n",
    "a list, not a mapping": b"- a.jsonl\n- b.jsonl\n",
    "nested 10,000 levels": b"inputs: " + b"[" * 10_000 + b"]" * 10_000 + b"\n",
}


@pytest.mark.parametrize("defect", list(BROKEN))
@pytest.mark.parametrize("verb", ["curate --recipe", "train --config"])
def test_a_broken_recipe_or_config_is_one_clean_error(tmp_path: Path, verb: str, defect: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_bytes(BROKEN[defect])
    result = runner.invoke(app, [*verb.split(), str(path), "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and str(path) in result.output.replace("\n", "")
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b'{"instruction": "\\ud800", "instances": [{"input": "", "output": "x"}]}', "lone surrogate"),
        (b'{"instruction": "caf\xe9", "instances": [{"input": "", "output": "x"}]}', "not valid UTF-8"),
        (b'{"instruction": "a", "instruction": "b", "instances": [{"output": "x"}]}', "appears twice"),
    ],
)
def test_seed_tasks_are_read_by_the_same_rules(tmp_path: Path, line: bytes, problem: str) -> None:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_bytes(b'{"instruction": "ok", "instances": [{"input": "", "output": "x"}]}\n' + line + b"\n")
    result = runner.invoke(app, ["synth", "self-instruct", str(seeds), "--out", str(tmp_path / "o"), "--no-progress"])
    assert result.exit_code == 2 and "seeds.jsonl: record 1" in result.output and problem in result.output


def test_a_training_config_is_read_like_a_recipe(tmp_path: Path) -> None:
    """Every problem named by its field, under a line naming the file; data paths taken from the file's folder;
    a bad --format refused before any work."""
    from lmtailor.train.config import TrainConfig

    (tmp_path / "sub").mkdir()
    bad = tmp_path / "sub" / "bad.yaml"
    bad.write_text("train:\n  - path: data.jsonl\n    format: bogus\nlora: {r: 0}\n")
    result = runner.invoke(app, ["train", "--config", str(bad), "--no-progress"])
    assert result.exit_code == 2
    assert f"error: {bad} is not a valid training config:\n" in result.output
    assert "  train.0.format: Input should be 'alpaca', 'sharegpt', 'openai' or 'prompt_completion'\n" in result.output
    assert "  lora.r: Input should be greater than or equal to 1\n" in result.output
    good = tmp_path / "sub" / "good.yaml"
    good.write_text("train:\n  - path: data.jsonl\n  - path: /abs/other.jsonl\n")
    assert [s.path for s in TrainConfig.load(good).train] == [tmp_path / "sub" / "data.jsonl", Path("/abs/other.jsonl")]
    result = runner.invoke(app, ["train", str(tmp_path / "data.jsonl"), "--format", "bogus", "--no-progress"])
    assert result.exit_code == 2
    assert "--format takes alpaca, sharegpt, openai, prompt_completion; got 'bogus'" in result.output


def test_a_rubric_file_is_read_like_a_recipe(tmp_path: Path) -> None:
    from lmtailor.core.config import ConfigError
    from lmtailor.score.rubrics import load_rubric_file

    path = tmp_path / "rubrics.yaml"
    path.write_text("concise: 'Concision: is it short?'\ndetailed: {criteria: 'Detail?', needs_input: true}\n")
    rubrics = load_rubric_file(path)
    assert rubrics["concise"].criteria == "Concision: is it short?" and rubrics["detailed"].needs_input
    path.write_text("concise: ''\nBad Name: text\n")
    with pytest.raises(ConfigError) as e:
        load_rubric_file(path)
    assert str(e.value).startswith(f"{path} is not a valid rubric file:\n")
    assert "  concise.criteria: String should have at least 1 character" in str(e.value)
    assert "  Bad Name.name: String should match pattern" in str(e.value)
    for text in ("", "- a list\n"):
        path.write_text(text)
        with pytest.raises(ConfigError, match=r"maps rubric names to criteria text \(or to \{criteria, demos\}\)"):
            load_rubric_file(path)
