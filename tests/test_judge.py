"""lmtailor judge: rubric grades and pairwise preferences from the real embedded Gemma 3 270M, on real Alpaca
and Dolly records; ledger, provenance, agreement with human labels, clear errors, and resume after SIGKILL.

Inputs are small slices of the real files written to tmp_path (the judge reads whole files). Most runs use
`--no-reasons`, which needs only log-likelihoods (no sampling), to keep the module fast.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.core.io import read_jsonl
from lmtailor.curate.pipeline import curate
from lmtailor.curate.recipe import Recipe
from lmtailor.score.judge import preference_agreement, score_agreement

pytestmark = pytest.mark.model  # loads a model to generate, score or train: not in the fast tier

runner = CliRunner()


def _slice(src: Path, dst: Path, n: int, start: int = 0, edit=None) -> Path:
    """The first `n` records of a real JSONL file from `start`, optionally rewritten by `edit`."""
    with src.open() as f:
        rows = [json.loads(line) for i, line in enumerate(f) if start <= i < start + n]
    dst.write_text("".join(json.dumps(edit(r) if edit else r) + "\n" for r in rows))
    return dst


@pytest.fixture(scope="module")
def dolly(shared_data: Path) -> Path:
    return shared_data / "dolly" / "dolly_first6400.jsonl"


@pytest.fixture(scope="module")
def alpaca(shared_data: Path) -> Path:
    return shared_data / "alpaca" / "alpaca_data_52k.jsonl"


def _judge(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["judge", *args, "--no-progress"])
    return result.exit_code, result.output


def _metrics(run: Path) -> dict:
    manifest = json.loads((run / "manifest.json").read_text())
    return next(s["metrics"] for s in manifest["steps"] if s["step"].endswith(":judge"))


def test_agreement_figures_on_known_cases() -> None:
    same = score_agreement([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    assert same == {"n": 5, "exact": 1.0, "within_1": 1.0, "spearman": 1.0, "weighted_kappa": 1.0}
    off_by_one = score_agreement([2.2, 3, 4, 5, 4.6], [1, 2, 3, 4, 5])
    assert off_by_one["exact"] == 0.2 and off_by_one["within_1"] == 1.0 and off_by_one["spearman"] == 0.9
    pref = preference_agreement(["a", "a", "tie", "b"], ["a", "b", "a", "b"])
    assert pref["agreement"] == 0.5 and pref["decided"] == 3 and pref["agreement_decided"] == pytest.approx(0.6667)


def test_rubric_grades_filter_with_reasons_provenance_and_ledger(alpaca: Path, tmp_path: Path) -> None:
    """Sampled verdicts (grammar-constrained JSON with a reason) plus G-Eval weights, one custom rubric from a
    YAML file; --min-score drops the low ones with their grades and reasons in the ledger."""
    data = _slice(alpaca, tmp_path / "alpaca2.jsonl", 2)
    rubrics = tmp_path / "rubrics.yaml"
    rubrics.write_text("concise: 'Concision: is the answer short and to the point, with nothing padded?'\n")
    run = tmp_path / "run"
    code, out = _judge(
        str(data), "--out", str(run), "--rubric", "helpfulness,concise", "--rubrics-file", str(rubrics),
        "--min-score", "3",
    )  # fmt: skip
    assert code == 0, out
    assert "judge: grades (weighted)" in out and "tokens/s" in out and "calls paid" in out
    m = _metrics(run)
    assert m["judge"]["rubrics"]["helpfulness"]["scored"] == 2 and m["judge"]["rubrics"]["concise"]["scored"] == 2
    assert m["usage"]["calls"] > 0 and m["usage"]["prompt_tokens"] > 0 and m["usage"]["completion_tokens"] > 0
    ledger = list(read_jsonl(run / "ledger.jsonl"))
    kept = list(read_jsonl(run / "judged.jsonl"))
    assert len(ledger) == 2 and len(kept) == sum(e["action"] == "change" for e in ledger)
    for e in ledger:
        if e["action"] == "drop":
            assert e["reason"] == "judge_below_min" and set(e["scores"]) == {"helpfulness", "concise"}
            assert all(isinstance(r, str) and r for r in e["reasons"].values())
        else:
            assert e["reason"] == "judged" and "extra.judge_score" in e["changes"]
    for rec in kept:
        assert 3 <= rec["judge_score"] <= 5
        assert 1 <= rec["judge_helpfulness"] <= 5 and rec["judge_reason_helpfulness"]
        prov = rec["provenance"]
        assert prov["step"] == "judge" and prov["backend"] == "llamacpp" and prov["model"] == "gemma-3-270m"
        assert prov["template"].startswith("judge-helpfulness@") and "+judge-concise@" in prov["template"]
        assert abs(sum(prov["probs"]["helpfulness"]) - 1) < 1e-3


def test_labels_agreement_and_select_ranks_by_judge_score(dolly: Path, tmp_path: Path) -> None:
    """Human Dolly answers graded 5 and flan-t5-base answers graded 1 (the same pairs the pairwise test uses)
    as labels; a recipe judges, then `select` keeps the best by judge_score."""
    human = _slice(dolly, tmp_path / "human.jsonl", 2, edit=lambda r: {**r, "grade": 5})
    flan = _slice(
        dolly, tmp_path / "flan.jsonl", 2, 2, edit=lambda r: {**r, "response": r["flan_t5_base_output"], "grade": 1}
    )
    recipe = Recipe.parse(
        {
            "inputs": [{"path": str(p), "columns": {"response": "output"}} for p in (human, flan)],
            "steps": [
                {"step": "judge", "rubrics": ["helpfulness"], "reasons": False, "labels": "grade"},
                {"step": "select", "n": 2, "score_field": "judge_score", "min_distance": 0},
            ],
        }
    )
    manifest = curate(recipe, tmp_path / "run", progress=False)
    judged = json.loads((tmp_path / "run" / ".work" / "ckpt-0.jsonl").read_text().splitlines()[0])
    assert "judge_helpfulness" in judged["metadata"]["extra"]
    m = next(s.metrics for s in manifest.step_stats if s.step == "0:judge")
    agreement = m["judge"]["agreement"]["judge_score"]
    assert agreement["n"] == 4 and set(agreement) == {"n", "exact", "within_1", "spearman", "weighted_kappa"}
    # the figures are those of the grades written into the records
    ckpt = [json.loads(line) for line in (tmp_path / "run" / ".work" / "ckpt-0.jsonl").read_text().splitlines()]
    grades = [r["metadata"]["extra"]["judge_score"] for r in ckpt]
    assert score_agreement(grades, [r["metadata"]["extra"]["grade"] for r in ckpt]) == agreement
    kept = list(read_jsonl(tmp_path / "run" / "curated.jsonl"))
    assert sorted(r["judge_score"] for r in kept) == sorted(grades)[-2:]


def test_pairwise_dolly_two_fields_and_against_file_agree(dolly: Path, tmp_path: Path) -> None:
    """Human answer (a) against flan-t5-base (b) on real Dolly pairs, asked in both orders; the same pairs
    given as two files matched by position ask the very same prompts, so they come from the cache."""
    data = _slice(dolly, tmp_path / "dolly6.jsonl", 6)
    code, out = _judge(
        str(data), "--out", str(tmp_path / "fields"), "--columns", "response=output",
        "--pair", "output,flan_t5_base_output", "--preferred", "a", "--no-reasons",
    )  # fmt: skip
    assert code == 0, out
    assert "agreement with human preference" in out
    m = _metrics(tmp_path / "fields")["judge"]
    assert m["pairs"] == 6 and sum(m["preferred"].values()) == 6 and m["agreement"]["n"] == 6
    assert 0 <= m["first_position_rate"] <= 1 and 0 <= m["agreement"]["agreement"] <= 1
    recs = list(read_jsonl(tmp_path / "fields" / "judged.jsonl"))
    assert {r["judge_preferred"] for r in recs} <= {"a", "b", "tie"}
    assert all(r["provenance"]["seed_ids"] == [f"dolly6:{i}"] for i, r in enumerate(recs))

    flan = _slice(dolly, tmp_path / "flan6.jsonl", 6, edit=lambda r: {**r, "response": r["flan_t5_base_output"]})
    code, out = _judge(
        str(data), "--out", str(tmp_path / "files"), "--columns", "response=output", "--against", str(flan),
        "--preferred", "a", "--no-reasons",
    )  # fmt: skip
    assert code == 0, out
    m2 = _metrics(tmp_path / "files")
    assert m2["usage"]["calls"] == 0 and m2["usage"]["cached_calls"] == 24  # 6 pairs x 2 orders x (A, B)
    assert m2["judge"]["preferred"] == m["preferred"]
    recs2 = list(read_jsonl(tmp_path / "files" / "judged.jsonl"))
    assert [r["judge_p_a"] for r in recs2] == [r["judge_p_a"] for r in recs]
    assert recs2[0]["provenance"]["seed_ids"] == ["dolly6:0", "flan6:0"]


def test_clear_errors(alpaca: Path, dolly: Path, tmp_path: Path) -> None:
    data = _slice(alpaca, tmp_path / "a4.jsonl", 4)
    code, out = _judge(str(data), "--out", str(tmp_path / "r1"), "--rubric", "helpfulness,wit")
    assert code == 2 and "unknown rubric 'wit'" in out and "correctness, groundedness, helpfulness" in out

    other = _slice(alpaca, tmp_path / "b3.jsonl", 3, 10)
    code, out = _judge(str(data), "--out", str(tmp_path / "r2"), "--against", str(other))
    assert code == 2 and str(data) in out and "4 records" in out and str(other) in out and "3" in out

    labelled = _slice(alpaca, tmp_path / "l2.jsonl", 2, edit=lambda r: {**r, "grade": "great"})
    code, out = _judge(str(labelled), "--out", str(tmp_path / "r3"), "--labels", "grade")
    assert code == 2 and str(labelled) in out and "record 0" in out and "'great'" in out

    d = _slice(dolly, tmp_path / "d2.jsonl", 2)
    code, out = _judge(str(d), "--out", str(tmp_path / "r4"), "--columns", "response=output", "--pair", "output,gpt4")
    assert code == 2 and str(d) in out and "record 0" in out and "'gpt4'" in out

    code, out = _judge(str(data), "--out", str(tmp_path / "r5"), "--pair", "output,input", "--min-score", "3")
    assert code == 2 and "min_score" in out


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return con.execute("SELECT count(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_killed_run_resumes_without_repeating_calls(
    alpaca: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL a real `python -m lmtailor judge` once the cache holds some answers; the rerun pays only for
    the rest, and its output equals an uninterrupted run's (made with a separate cache). Sampled grades
    without reasons: one short generation per record, 3 cache batches of 8, then a re-ask for any verdict
    that did not parse (how many depends on what the model writes, so the counts come from the clean run)."""
    from lmtailor.llm.embedded import gguf_path

    data = _slice(alpaca, tmp_path / "alpaca24.jsonl", 24, 100)
    args = ["judge", str(data), "--rubric", "helpfulness", "--method", "generate", "--no-reasons",
            "--model", str(gguf_path()), "--no-progress"]  # fmt: skip
    monkeypatch.setenv("LMTAILOR_CACHE", str(tmp_path / "cache-clean"))
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "clean")])
    assert result.exit_code == 0, result.output
    clean = _metrics(tmp_path / "clean")
    total = clean["usage"]["calls"]
    assert total >= 24 and clean["usage"]["cached_calls"] == 0  # every record asked once, re-asks on top
    assert clean["judge"]["rubrics"]["helpfulness"]["scored"] + clean["judge"]["rubrics"]["helpfulness"]["failed"] == 24

    cache = tmp_path / "cache"
    monkeypatch.setenv("LMTAILOR_CACHE", str(cache))
    cmd = [sys.executable, "-m", "lmtailor", *args, "--out", str(tmp_path / "run")]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600  # a safety net for a loaded machine, not a timing requirement
    while _count(cache / "llm.sqlite") < 8:
        assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the judge wrote nothing to the cache in 600 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _count(cache / "llm.sqlite")
    assert 8 <= done < 24 and not (tmp_path / "run" / "manifest.json").exists()  # killed in the first pass

    rerun = subprocess.run(cmd, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    usage = _metrics(tmp_path / "run")["usage"]
    assert usage["cached_calls"] == done and usage["calls"] == total - done
    assert (tmp_path / "run" / "judged.jsonl").read_bytes() == (tmp_path / "clean" / "judged.jsonl").read_bytes()
    assert (tmp_path / "run" / "ledger.jsonl").read_bytes() == (tmp_path / "clean" / "ledger.jsonl").read_bytes()
