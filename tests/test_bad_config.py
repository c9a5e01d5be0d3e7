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
