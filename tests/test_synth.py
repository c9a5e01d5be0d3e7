"""`lmtailor synth`: the four generating modes end to end on the embedded model, through the CLI and curate.

Quality of a 270M base model's writing is not the point; these check the mechanics: provenance on every new
record, an add (and, for rejects, a drop with the candidate's text) in the ledger, the manifest's sums, the
novelty, dedup and decontamination filters, and a rerun answered from the response cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rouge_score import rouge_scorer
from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.io import read_examples, read_jsonl
from lmtailor.records import Example
from lmtailor.synth.failures import _parse
from lmtailor.synth.novelty import RougeIndex, folded
from lmtailor.synth.paraphrase import Paraphrase
from lmtailor.synth.self_instruct import SelfInstruct, convert_seed_tasks

runner = CliRunner()
SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
PROVENANCE_KEYS = {"step", "backend", "model", "template", "params", "seed_ids"}


def _rouge(a: str, b: str) -> float:
    return SCORER.score(a, b)["rougeL"].fmeasure


def _lines(path: Path, n: int, start: int = 0) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for i, line in enumerate(f) if start <= i < start + n]


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _synth(args: list[str], out: Path) -> tuple[dict[str, Any], list[Example], list[dict[str, Any]], str]:
    """Run `lmtailor synth ...`; return the manifest, the output records, the ledger and the printed text."""
    result = runner.invoke(app, ["synth", *args, "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    records = list(read_examples(out / manifest["output"]["path"])) if manifest["output"]["records"] else []
    return manifest, records, list(read_jsonl(out / "ledger.jsonl")), result.output


def _check_run(manifest: dict[str, Any], records: list[Example], ledger: list[dict[str, Any]], step: str) -> list:
    """What every synth run must show; returns the generated records."""
    assert manifest["counts"]["accounted"]
    made = [r for r in records if "provenance" in r.metadata.get("extra", {})]
    for r in made:
        origin = r.metadata["extra"]["provenance"]
        assert origin.keys() >= PROVENANCE_KEYS and origin["step"] == step
        assert origin["backend"] == "llamacpp" and origin["model"] == "gemma-3-270m" and origin["seed_ids"]
        assert "@" in origin["template"] and origin["params"]["max_tokens"] > 0
    adds = [e for e in ledger if e["action"] == "add"]
    rejected = [e for e in ledger if e["action"] == "drop" and "candidate" in e]
    assert len(adds) == len(made) + len(rejected) == manifest["counts"]["added"]
    assert {e["id"] for e in rejected} <= {e["id"] for e in adds}
    assert all(e["reason"] and e["detail"] for e in rejected)
    metrics = manifest["steps"][-1]["metrics"]
    assert made and metrics["candidates"] == len(adds) and metrics["accepted"] == len(made)
    assert metrics["usage"]["calls"] + metrics["usage"]["cached_calls"] > 0
    return made


# ---------------------------------------------------------------- filters, without the model


def test_rouge_index_gives_rouge_scores_exactly(shared_data: Path) -> None:
    """The bag-of-tokens bound only skips work: every match equals a brute-force rouge-score search."""
    texts = [r["instruction"] for r in _lines(shared_data / "alpaca" / "alpaca_data_52k.jsonl", 460)]
    kept, queries = texts[:400], texts[400:]
    queries += [" ".join(t.split()[:-1]) for t in kept[:30]]  # near copies: the last word gone
    index = RougeIndex(0.7)
    for i, t in enumerate(kept):
        index.add(str(i), t)
    for q in queries:
        best = max((_rouge(t, q), str(i)) for i, t in enumerate(kept))
        match = index.closest(q)
        if best[0] >= 0.7:
            assert match is not None and match.score == pytest.approx(best[0])
        else:
            assert match is None
    assert index.closest(kept[5].upper() + "!!").exact  # the same text once folded


def test_self_instruct_filter_drops_a_near_copy_of_a_seed(shared_data: Path) -> None:
    seeds = _lines(shared_data / "alpaca" / "seed_tasks.jsonl", 175)
    held = RougeIndex(0.7)
    for s in seeds:
        held.add(s["id"], s["instruction"])
    cfg = SelfInstruct()

    def reason(instruction: str) -> str | None:
        problem = cfg.instruction_problem(instruction, [held])
        return problem[0] if problem else None

    seed = seeds[1]["instruction"]  # "What is the relation between the given pairs?"
    near = seed.replace("given", "following")
    assert reason(near) == "not_novel" and seeds[1]["id"] in cfg.instruction_problem(near, [held])[1]  # type: ignore[index]
    assert reason(seed.upper()) == "not_novel"
    assert reason("Describe the picture of the beach at dawn.") == "needs_unseen_media"
    assert reason("Sort it.") == "too_short"
    assert reason("- List three uses of copper wire.") == "bad_start"
    assert reason("List three everyday uses of copper wire in a home.") is None


def test_paraphrase_filter_drops_copies_of_the_original() -> None:
    held = RougeIndex(0.8)
    held.add("a:0", "Give three tips for staying healthy.")

    def reason(text: str, similarity: float = 1.0) -> str | None:
        original = "Give three tips for staying healthy."
        problem = Paraphrase().rewording_problem(text, original, "stop", held, similarity)
        return problem[0] if problem else None

    assert reason("give three tips for staying healthy") == "duplicate"
    assert reason("Give three tips for staying really healthy.") == "near_duplicate"
    assert reason("What should I do to keep fit and well?") is None
    assert reason("How to prevent falls?", similarity=0.29) == "meaning_drift"


def test_failure_answers_are_parsed_without_a_copied_wrong_answer() -> None:
    parsed = _parse(" Which fish lives in rivers?\nWrong answer: A tree\nAnswer: The trout.\n")
    assert parsed == ("Which fish lives in rivers?", "The trout.", False)
    assert _parse(" Name a fish.\nAnswer: a. Tope\nAnswer: a. a.\nAnswer:") == ("Name a fish.", "a. Tope", True)
    assert _parse(" a question with no answer") == ("a question with no answer", "", False)


def test_seed_tasks_conversion_names_a_broken_record(tmp_path: Path, shared_data: Path) -> None:
    target = tmp_path / "seeds.jsonl"
    assert convert_seed_tasks(shared_data / "alpaca" / "seed_tasks.jsonl", target) == 175
    first = next(read_examples(target))
    assert first.id == "seeds:0" and first.metadata["extra"]["id"] == "seed_task_0"
    bad = _write(tmp_path / "bad.jsonl", [{"instruction": "Do it.", "instances": []}])
    result = runner.invoke(app, ["synth", "self-instruct", str(bad), "--out", str(tmp_path / "o"), "--no-progress"])
    assert result.exit_code == 2 and "bad.jsonl: record 0" in result.output and "instances" in result.output


# ---------------------------------------------------------------- the four modes on the embedded model


def test_self_instruct_from_seed_tasks_then_rerun_from_cache(tmp_path: Path, shared_data: Path) -> None:
    seeds = shared_data / "alpaca" / "seed_tasks.jsonl"
    args = ["self-instruct", str(seeds), "--n", "2", "--max-rounds", "2", "--prompts-per-round", "2",
            "--max-tokens", "80", "--output-tokens", "48"]  # fmt: skip
    manifest, records, ledger, printed = _synth(args, tmp_path / "si")
    made = _check_run(manifest, records, ledger, "self_instruct")
    assert "generated" in printed and "tok/s" in printed
    assert [e["reason"] for e in ledger if e["action"] == "drop" and "candidate" not in e] == ["input_not_kept"] * 175
    held = [s["instruction"] for s in _lines(seeds, 175)]
    for r in made:
        instruction = r.contents("user")[-1]
        assert all(_rouge(h, instruction) < 0.7 for h in held)  # novel against every seed
        assert len(r.metadata["extra"]["provenance"]["seed_ids"]) == 8  # the k instructions shown
        held.append(instruction)
    assert manifest["steps"][-1]["metrics"]["usage"]["calls"] > 0

    again, records2, _, _ = _synth(args, tmp_path / "si2")
    usage = again["steps"][-1]["metrics"]["usage"]
    assert usage["calls"] == 0 and usage["cached_calls"] > 0
    assert [r.messages for r in records2] == [r.messages for r in records]


def test_backtranslate_documents(tmp_path: Path, shared_data: Path) -> None:
    lima = json.loads((shared_data / "lima" / "lima.json").read_text())
    picked = [r for r in lima if 30 < len(r["output"].split()) < 90][:3]
    docs = _write(tmp_path / "docs.jsonl", [*picked, {"instruction": "Hi", "input": "", "output": "Hello!"}])
    manifest, records, ledger, _ = _synth(["backtranslate", str(docs), "--field", "output"], tmp_path / "bt")
    made = _check_run(manifest, records, ledger, "backtranslate")
    reasons = [e["reason"] for e in ledger if e["action"] == "drop" and "candidate" not in e]
    assert sorted(reasons) == ["document_too_short"] + ["input_not_kept"] * 3
    outputs = {r["output"] for r in picked}
    for r in made:
        assert r.contents("assistant")[-1] in outputs and r.contents("user")[-1].strip()
        assert r.metadata["extra"]["provenance"]["seed_ids"][0].startswith("docs:")


def test_paraphrase_rewordings_never_copy_an_original(tmp_path: Path, shared_data: Path) -> None:
    data = _write(tmp_path / "al.jsonl", _lines(shared_data / "alpaca" / "alpaca_data_52k.jsonl", 3))
    manifest, records, ledger, _ = _synth(["paraphrase", str(data), "--n", "2", "--max-tokens", "40"], tmp_path / "pp")
    made = _check_run(manifest, records, ledger, "paraphrase")
    originals = [r for r in records if "provenance" not in r.metadata.get("extra", {})]
    assert len(originals) == 3  # kept by default, each followed by its rewordings
    texts = [o.contents("user")[-1] for o in originals]
    for r in made:
        new = r.contents("user")[-1]
        source = next(o for o in originals if o.contents("assistant") == r.contents("assistant"))
        assert r.input == source.input  # input and answer stay
        assert all(folded(new) != folded(t) and _rouge(t, new) < 0.8 for t in texts)
        texts.append(new)


def test_failure_targets_leave_out_the_eval_cases(tmp_path: Path, shared_data: Path) -> None:
    """Dolly's first rows with flan-t5-base's wrong answers as the failed evaluation cases."""
    rows = _lines(shared_data / "dolly" / "dolly_first6400.jsonl", 2)
    cases = _write(tmp_path / "cases.jsonl", rows)
    args = ["failures", str(cases), "--per-case", "2", "--max-tokens", "80", "--columns", "response=output",
            "--wrong-field", "flan_t5_base_output"]  # fmt: skip
    manifest, records, ledger, _ = _synth(args, tmp_path / "fail")
    made = _check_run(manifest, records, ledger, "failure_targets")
    assert [e["reason"] for e in ledger if e["action"] == "drop" and "candidate" not in e] == ["eval_case"] * 2
    questions = [r["instruction"] for r in rows]
    for r in made:
        assert r.metadata["extra"]["provenance"]["seed_ids"][0] in ("cases:0", "cases:1")
        assert all(_rouge(q, r.contents("user")[-1]) < 0.7 for q in questions)

    # Decontamination with a strict threshold: every generated question shares a word with its case, so all go;
    # the same prompts and seeds make this rerun free.
    strict, records, ledger, _ = _synth([*args, "--max-rouge", "0.05"], tmp_path / "strict")
    assert strict["counts"]["kept"] == 0 and strict["steps"][-1]["metrics"]["usage"]["calls"] == 0
    reasons = {e["reason"] for e in ledger if "candidate" in e}
    assert "too_close_to_eval_case" in reasons
