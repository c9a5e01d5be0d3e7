"""`lmtailor audit` end to end: the three outputs, the CI exit status, and --fix through curate."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.io import read_jsonl

runner = CliRunner()


def _sample(tmp_path: Path, shared_data: Path) -> Path:
    """400 real Alpaca records with defects appended: a placeholder answer, wrong arithmetic, a false claim,
    an exact duplicate and an unreadable line."""
    lines = (shared_data / "alpaca" / "alpaca_data_52k.jsonl").read_text().splitlines()[:400]
    lines += [
        json.dumps({"instruction": "Write a haiku about rain.", "input": "", "output": "<nooutput>"}),
        json.dumps({"instruction": "What is 17 * 23?", "input": "", "output": "17 * 23 = 401"}),
        json.dumps(
            {
                "instruction": "Send an email to my boss saying I am sick.",
                "input": "",
                "output": "I have sent the email to your boss.",
            }
        ),
        lines[3],
        '{"instruction": "broken',
    ]
    path = tmp_path / "sample.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_audit_writes_findings_summary_and_report(tmp_path: Path, shared_data: Path) -> None:
    data, out = _sample(tmp_path, shared_data), tmp_path / "audit"
    result = runner.invoke(app, ["audit", str(data), "--out", str(out), "--expect", "refusal=0.05", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "records flagged" in result.output
    findings = list(read_jsonl(out / "findings.jsonl"))
    assert {"id", "source", "index", "check", "severity", "score", "message", "evidence"} <= set(findings[0])
    by_id = {}
    for f in findings:
        by_id.setdefault(f["id"], set()).add(f["check"])
    assert "broken_fields" in by_id["sample:400"] and "correctness" in by_id["sample:401"]
    assert "claims" in by_id["sample:402"] and "duplicates" in by_id["sample:403"]
    assert "broken_fields" in by_id["sample:404"]  # the unreadable line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"]["records"] == 405
    assert set(summary["checks"]) >= {
        "broken_fields",
        "balance",
        "claims",
        "grounding",
        "format",
        "correctness",
        "duplicates",
        "diversity",
        "agreement",
    }
    assert summary["flagged"]["share"] < 0.1
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_fail_on_and_fix(tmp_path: Path, shared_data: Path, monkeypatch) -> None:
    data, out = _sample(tmp_path, shared_data), tmp_path / "audit"
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "audit_fix.yaml"
    monkeypatch.chdir(tmp_path)  # the data path is given relative to here, the recipe lives elsewhere
    result = runner.invoke(
        app,
        [
            "audit",
            data.name,
            "--out",
            str(out),
            "--checks",
            "broken_fields,correctness,claims",
            "--fail-on",
            "high",
            "--fix",
            str(recipe),
            "--no-progress",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "audit failed" in result.output
    ledger = {e["id"]: e for e in read_jsonl(out / "fixed" / "ledger.jsonl")}
    assert ledger["sample:401"]["reason"] == "audit:correctness"
    assert ledger["sample:402"]["reason"] == "quarantine"
    assert [q["id"] for q in read_jsonl(out / "fixed" / "quarantine.jsonl")] == ["sample:402"]
    manifest = json.loads((out / "fixed" / "manifest.json").read_text())
    assert manifest["counts"]["accounted"] and manifest["counts"]["rejected"] == 1
    clean = tmp_path / "clean.jsonl"
    clean.write_text("".join((shared_data / "alpaca" / "alpaca_data_52k.jsonl").open().readlines()[:50]))
    args = ["--checks", "claims,agreement", "--fail-on", "high", "--no-progress"]
    quiet = runner.invoke(app, ["audit", str(clean), "--out", str(tmp_path / "clean_audit"), *args])
    assert quiet.exit_code == 0, quiet.output


def test_unknown_check_is_a_clear_error(tmp_path: Path, shared_data: Path) -> None:
    result = runner.invoke(
        app, ["audit", str(_sample(tmp_path, shared_data)), "--out", str(tmp_path / "a"), "--checks", "balance,nope"]
    )
    assert result.exit_code == 2 and "unknown check(s) nope" in " ".join(result.output.split())
