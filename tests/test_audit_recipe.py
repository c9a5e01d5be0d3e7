"""Audit recipes: a `checks:` list reaches every check's settings; errors name the file and the field; the
command line's --checks, --expect and --eval build the same recipe or amend one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmtailor.audit.checks import registry
from lmtailor.audit.checks.balance import Balance
from lmtailor.audit.checks.duplicates import Duplicates
from lmtailor.audit.recipe import AuditRecipe
from lmtailor.cli import app
from lmtailor.core.config import ConfigError
from lmtailor.core.io import read_jsonl

runner = CliRunner()
RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_recipe_lists_checks_in_order_with_their_settings(tmp_path: Path) -> None:
    (tmp_path / "evals").mkdir()
    recipe = AuditRecipe.load(
        _write(
            tmp_path / "audit.yaml",
            "checks:\n"
            "  - check: duplicates\n    threshold: 0.9\n    eval: [{path: evals/test.jsonl}]\n"
            "  - {check: balance, expect: {Refusal: 0.05}, max_majority_label: 0.6}\n"
            "  - check: claims\n",
        )
    )
    assert [c.name for c in recipe.checks] == ["duplicates", "balance", "claims"]
    duplicates, balance = recipe.checks[0], recipe.checks[1]
    assert isinstance(duplicates, Duplicates) and duplicates.threshold == 0.9
    assert duplicates.eval[0].path == tmp_path / "evals" / "test.jsonl"  # relative to the recipe
    assert isinstance(balance, Balance) and balance.expect == {"refusal": 0.05} and balance.max_majority_label == 0.6


def test_without_a_recipe_every_check_runs_with_its_defaults() -> None:
    recipe = AuditRecipe.from_command_line(None, None, {}, [])
    assert [c.name for c in recipe.checks] == list(registry())
    assert all(c == type(c)() for c in recipe.checks)


def test_the_example_recipe_names_every_check() -> None:
    recipe = AuditRecipe.load(RECIPES / "audit_alpaca.yaml")
    assert [c.name for c in recipe.checks] == list(registry())
    duplicates = next(c for c in recipe.checks if isinstance(c, Duplicates))
    assert duplicates.eval[0].path.resolve().parts[-3:] == ("data", "lima", "lima.json")


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        ("checks:\n  - check: nope\n", "checks.0", "Input tag 'nope' found using 'check' does not match"),
        ("checks:\n  - {check: balance, expct: {refusal: 0.1}}\n", "checks.0.balance.expct", "Extra inputs"),
        ("checks:\n  - {check: duplicates, threshold: 2}\n", "checks.0.duplicates.threshold", "less than 1"),
        ("checks:\n  - {check: balance, expect: {refusal: 5}}\n", "checks.0.balance.expect", "must lie in [0, 1]"),
        ("checks:\n  - {threshold: 0.9}\n", "checks.0", "Unable to extract tag using discriminator 'check'"),
        ("checks: []\n", "checks", "at least 1 item"),
        ("checks:\n  - check: claims\n  - check: claims\n", "checks", "claims is listed more than once"),
        ("check:\n  - check: claims\n", "check", "Extra inputs"),
    ],
)
def test_a_bad_recipe_names_the_file_and_the_field(tmp_path: Path, text: str, field: str, problem: str) -> None:
    path = _write(tmp_path / "audit.yaml", text)
    with pytest.raises(ConfigError) as e:
        AuditRecipe.load(path)
    assert str(e.value).startswith(f"{path} is not a valid audit recipe:\n")
    assert f"  {field}: " in str(e.value) and problem in str(e.value)


def test_a_file_that_is_no_recipe_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(str(tmp_path / 'missing.yaml'))}: "):
        AuditRecipe.load(tmp_path / "missing.yaml")
    listed = _write(tmp_path / "list.yaml", "- check: claims\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: an audit recipe is a mapping with a `checks` list"):
        AuditRecipe.load(listed)


def test_the_command_line_amends_a_recipe(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "audit.yaml",
        "checks:\n  - {check: balance, max_refusal_rate: 0.3}\n  - {check: duplicates, threshold: 0.9}\n",
    )
    picked = AuditRecipe.from_command_line(path, ["claims", "duplicates"], {}, [])
    assert [c.name for c in picked.checks] == ["claims", "duplicates"]
    assert picked.checks[1].threshold == 0.9  # type: ignore[union-attr]  # the recipe's setting is kept
    amended = AuditRecipe.from_command_line(path, None, {"refusal": 0.05}, [tmp_path / "eval.jsonl"])
    balance, duplicates = amended.checks
    assert isinstance(balance, Balance) and balance.expect == {"refusal": 0.05} and balance.max_refusal_rate == 0.3
    assert isinstance(duplicates, Duplicates) and [s.path for s in duplicates.eval] == [tmp_path / "eval.jsonl"]
    with pytest.raises(ConfigError, match="unknown check\\(s\\) nope; choose from broken_fields, balance"):
        AuditRecipe.from_command_line(path, ["balance", "nope"], {}, [])


def test_recipe_settings_reach_the_checks(tmp_path: Path, shared_data: Path) -> None:
    """An audit run from a recipe: balance compares with the recipe's expected rate, duplicates reads the
    recipe's evaluation set (relative to the recipe) and flags the records copied from it."""
    lines = (shared_data / "alpaca" / "alpaca_data_52k.jsonl").read_text().splitlines()
    data = _write(tmp_path / "train.jsonl", "\n".join(lines[:300]) + "\n")
    (tmp_path / "recipes").mkdir()
    _write(tmp_path / "recipes" / "eval.jsonl", "\n".join(lines[10:13]) + "\n")
    recipe = _write(
        tmp_path / "recipes" / "audit.yaml",
        "checks:\n  - {check: balance, expect: {refusal: 0.4}}\n  - {check: duplicates, eval: [{path: eval.jsonl}]}\n",
    )
    out = tmp_path / "audit"
    result = runner.invoke(app, ["audit", str(data), "--out", str(out), "--recipe", str(recipe), "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["checks"]) == ["balance", "duplicates"]
    assert summary["checks"]["balance"]["metrics"]["expected"] == {"refusal": 0.4}
    assert "far below the expected 40.0%" in summary["checks"]["balance"]["dataset_findings"][0]["message"]
    leaks = [f for f in read_jsonl(out / "findings.jsonl") if f["evidence"].get("kind") == "eval_overlap"]
    assert sorted(f["index"] for f in leaks) == [10, 11, 12]

    bad = _write(tmp_path / "bad.yaml", "checks:\n  - {check: balance, expect: {refusal: 7}}\n")
    result = runner.invoke(app, ["audit", str(data), "--out", str(out), "--recipe", str(bad), "--no-progress"])
    assert result.exit_code == 2 and f"{bad} is not a valid audit recipe" in result.output
    assert "checks.0.balance.expect" in result.output
