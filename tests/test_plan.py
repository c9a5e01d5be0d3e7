"""The advisor's rules: each places rungs for a stated reason, and the advice shows which rules fired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.core.config import ConfigError
from lmtailor.core.io import write_jsonl
from lmtailor.plan.rules import LADDER, Facts, Placement, advise
from lmtailor.plan.task import Goal, answer_kind, infer_facts, load_task

runner = CliRunner()


def _actions(placements: list[Placement]) -> dict[str, str]:
    return {p.rung: p.action for p in placements}


def _rules(placements: list[Placement], rung: str) -> set[str]:
    return {v.rule for p in placements if p.rung == rung for v in p.verdicts}


def test_every_rung_is_placed_in_the_ladders_order_with_a_reason() -> None:
    advice = advise(Facts(examples=500))
    assert [p.rung for p in advice] == list(LADDER)
    assert all(p.verdicts and all(v.why for v in p.verdicts) for p in advice)


def test_the_cheap_rungs_come_first_and_pretraining_is_costed_never_dropped() -> None:
    actions = _actions(advise(Facts(examples=500)))
    assert actions["zero_shot"] == actions["icl"] == "try"
    assert actions["pretraining"] == actions["continued_pretraining"] == "rule_out"
    why = next(p for p in advise(Facts(examples=500)) if p.rung == "pretraining").verdicts[0].why
    assert "GPU hours" in why


def test_few_examples_mean_in_context_learning_only() -> None:
    advice = advise(Facts(examples=6))
    actions = _actions(advice)
    assert actions["lora"] == actions["full"] == "rule_out"
    assert "data_size" in _rules(advice, "lora")
    assert _actions(advise(Facts(examples=30)))["lora"] == "later"
    assert _actions(advise(Facts(examples=80)))["lora"] == "try"


def test_facts_go_to_retrieval_and_are_never_trained_in() -> None:
    with_docs = advise(Facts(examples=500, documents=True, needs_knowledge=True, knowledge_changes=True))
    assert _actions(with_docs)["rag"] == "try"
    assert "never fine-tune facts in" in next(p for p in with_docs if p.rung == "rag").verdicts[0].why
    without = advise(Facts(examples=500, needs_knowledge=True))
    assert _actions(without)["rag"] == "rule_out"
    assert "no documents" in next(p for p in without if p.rung == "rag").verdicts[0].why
    assert _actions(advise(Facts(examples=500)))["rag"] == "rule_out"


def test_a_new_format_calls_for_lora_and_full_waits_for_it() -> None:
    advice = advise(Facts(examples=500, new_format=True))
    assert _actions(advice)["lora"] == "try"
    assert {"data_size", "new_format"} <= _rules(advice, "lora")
    assert _actions(advice)["full"] == "later"
    assert "forgets" in next(p for p in advice if p.rung == "full").verdicts[0].why


# ------------------------------------------------------------------ the task description


def test_a_goal_is_a_metric_a_direction_and_a_number() -> None:
    goal = Goal.parse("exact_match >= 0.3")
    assert (goal.metric, goal.op, goal.value, str(goal)) == ("exact_match", ">=", 0.3, "exact_match >= 0.3")
    assert goal.met(0.31) and not goal.met(0.29)
    with pytest.raises(ValueError, match="METRIC >= NUMBER"):
        Goal.parse("as good as possible")


def test_facts_are_inferred_from_real_data_and_said_to_be(shared_data: Path, tmp_path: Path) -> None:
    records = json.loads((shared_data / "rag" / "pubmedqa" / "ori_pqal.json").read_text())
    rows = [{"instruction": r["QUESTION"], "output": r["final_decision"]} for r in list(records.values())[:200]]
    write_jsonl(tmp_path / "pubmedqa.jsonl", rows)
    (tmp_path / "task.yaml").write_text("data: pubmedqa.jsonl\nmetric: choice\ngoal: 'choice >= 0.6'\n")
    facts, inferred = infer_facts(load_task(tmp_path / "task.yaml"))
    assert (facts.examples, facts.answer_kind, facts.documents) == (200, "classification", False)
    assert any("200 labelled examples" in line for line in inferred)
    assert any("no documents" in line for line in inferred)

    (tmp_path / "lima.yaml").write_text(f"data: {shared_data / 'lima' / 'lima.json'}\ngoal: 'exact_match >= 0.1'\n")
    lima, _ = infer_facts(load_task(tmp_path / "lima.yaml"))
    assert lima.answer_kind == "generation" and lima.examples > 1000


def test_a_task_file_that_is_wrong_is_named_with_its_field(tmp_path: Path) -> None:
    path = tmp_path / "task.yaml"
    path.write_text("data: x.jsonl\ngoal: 'better'\nqueries_per_dya: 10\n")
    with pytest.raises(ConfigError) as e:
        load_task(path)
    assert str(path) in str(e.value) and "goal" in str(e.value) and "queries_per_dya" in str(e.value)


def test_answer_kinds() -> None:
    assert answer_kind(["yes", "no"] * 50) == "classification"
    assert answer_kind([f"{i} mg" for i in range(100)]) == "extraction"
    assert answer_kind(["a long answer that explains at length why the thing is so"] * 3) == "generation"


# ------------------------------------------------------------------ the command


def test_plan_prints_every_rung_and_its_json_holds_the_rules(shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "task.yaml"
    path.write_text(f"data: {shared_data / 'lima' / 'lima.json'}\ngoal: 'exact_match >= 0.2'\nnew_format: true\n")
    shown = runner.invoke(app, ["plan", str(path)])
    assert shown.exit_code == 0, shown.output
    assert all(rung in shown.output for rung in LADDER) and "inferred:" in shown.output
    out = runner.invoke(app, ["plan", str(path), "--json"])
    advice = json.loads(out.output)
    assert advice["goal"] == "exact_match >= 0.2" and [r["rung"] for r in advice["rungs"]] == list(LADDER)
    lora = next(r for r in advice["rungs"] if r["rung"] == "lora")
    assert lora["action"] == "try" and {v["rule"] for v in lora["verdicts"]} == {"data_size", "new_format"}


def test_plan_refuses_a_missing_data_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "task.yaml"
    path.write_text("data: nowhere.jsonl\ngoal: 'exact_match >= 0.2'\n")
    result = runner.invoke(app, ["plan", str(path)])
    assert result.exit_code == 2 and "nowhere.jsonl" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_an_audits_findings_become_data_advice(shared_data: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (shared_data / "dolly" / "dolly_first6400.jsonl").open()][:400]
    data = tmp_path / "dolly.jsonl"
    write_jsonl(data, [{"instruction": r["instruction"], "output": r["response"]} for r in rows + rows[:40]])
    audited = runner.invoke(app, ["audit", str(data), "--checks", "duplicates", "--out", str(tmp_path / "audit")])
    assert audited.exit_code in (0, 1), audited.output
    path = tmp_path / "task.yaml"
    path.write_text("data: dolly.jsonl\naudit: audit\ngoal: 'exact_match >= 0.2'\nlabel_cost: 2\n")
    planned = runner.invoke(app, ["plan", str(path), "--json"])
    assert planned.exit_code == 0, planned.output
    advice = json.loads(planned.output)["data_advice"]
    assert any(line.startswith("audit: duplicates flags") for line in advice), advice  # 40 exact copies
    assert any("open-ended answers need more data" in line for line in advice), advice

    (tmp_path / "audit" / "summary.json").write_text("{")
    broken = runner.invoke(app, ["plan", str(path)])
    assert broken.exit_code == 2 and "summary.json" in broken.output


def test_optional_paths_in_a_task_file_are_read_from_its_folder(tmp_path: Path) -> None:
    """`ConfigPath | None` fields (eval, documents, audit) resolve like required ones: relative to the file."""
    (tmp_path / "task.yaml").write_text("data: d.jsonl\neval: e.jsonl\ndocuments: docs\ngoal: 'exact_match >= 0.1'\n")
    task = load_task(tmp_path / "task.yaml")
    assert (task.data, task.eval, task.documents, task.audit) == (
        tmp_path / "d.jsonl",
        tmp_path / "e.jsonl",
        tmp_path / "docs",
        None,
    )
