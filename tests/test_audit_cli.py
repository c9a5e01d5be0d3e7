"""`lmtailor audit` end to end: the three outputs, the CI exit status, and --fix through curate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.core.io import read_jsonl

runner = CliRunner()
LMTAILOR = str(Path(sys.executable).parent / "lmtailor")


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


def test_summary_vouches_for_the_findings_and_report(tmp_path: Path, shared_data: Path) -> None:
    """summary.json is written last with the digests of the other two, and the report reads it unchanged."""
    from lmtailor.audit.report import render
    from lmtailor.core.rundir import file_digest

    out = tmp_path / "audit"
    args = ["audit", str(_sample(tmp_path, shared_data)), "--out", str(out), "--checks", "broken_fields,claims"]
    assert runner.invoke(app, [*args, "--no-progress"]).exit_code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["files"] == {name: file_digest(out / name) for name in ("findings.jsonl", "report.html")}
    assert summary["dataset"]["records"] == 405 and set(summary["checks"]) == {"broken_fields", "claims"}
    page = render(summary, list(read_jsonl(out / "findings.jsonl")), {})
    assert "Dataset audit" in page and "blake2b" not in page


def test_a_second_audit_into_a_busy_folder_is_refused(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "audit"
    alpaca = shared_data / "alpaca" / "alpaca_data_52k.jsonl"
    first = subprocess.Popen(
        [LMTAILOR, "audit", str(alpaca), "--out", str(out), "--checks", "broken_fields", "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "LMTAILOR_NO_PROGRESS": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        # the lock holder writes its pid into the lock file once it holds it
        while not ((out / ".lock").exists() and (out / ".lock").read_text() == str(first.pid)):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read() if first.stderr else ""
            time.sleep(0.02)
        second = runner.invoke(app, ["audit", str(alpaca), "--out", str(out), "--checks", "claims", "--no-progress"])
        assert first.poll() is None  # still writing when the second was refused
    finally:
        first.wait(timeout=120)
    assert second.exit_code == 2, second.output
    assert f"error: {out}: another lmtailor run (pid {first.pid}) is writing this folder" in second.output
    assert first.returncode == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["checks"]) == ["broken_fields"]  # the first audit's, whole


def test_findings_of_an_unfinished_audit_are_refused(tmp_path: Path, shared_data: Path) -> None:
    """An audit killed before summary.json is written leaves findings.jsonl without it; a later audit
    may replace the findings under an earlier summary. Curating by either would drop the wrong records."""
    data, out = _sample(tmp_path, shared_data), tmp_path / "audit"
    args = ["audit", str(data), "--out", str(out), "--checks", "broken_fields,correctness", "--no-progress"]
    assert runner.invoke(app, args).exit_code == 0
    recipe = tmp_path / "fix.yaml"
    recipe.write_text(
        f"inputs: [{json.dumps(str(data))}]\non_error: skip\n"
        f"steps: [{{step: findings, path: {json.dumps(str(out / 'findings.jsonl'))}}}]\n"
    )
    fixed = tmp_path / "fixed"
    curate = ["curate", "--recipe", str(recipe), "--out", str(fixed), "--no-progress"]
    assert runner.invoke(app, curate).exit_code == 0  # the finished audit is acted on

    findings = (out / "findings.jsonl").read_text()
    (out / "findings.jsonl").write_text(findings.splitlines(keepends=True)[0])  # replaced since the summary
    changed = runner.invoke(app, curate)
    assert changed.exit_code == 2, changed.output
    assert f"error: {out}: findings.jsonl does not match summary.json" in changed.output

    (out / "findings.jsonl").write_text(findings)
    (out / "summary.json").unlink()  # killed after the findings were written, before the summary
    killed = runner.invoke(app, curate)
    assert killed.exit_code == 2, killed.output
    assert f"error: {out}: is not a finished audit run: no summary.json" in killed.output
