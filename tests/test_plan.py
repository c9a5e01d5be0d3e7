"""The advisor's rules: each places rungs for a stated reason, and the advice shows which rules fired."""

from __future__ import annotations

from lmtailor.plan.rules import LADDER, Facts, Placement, advise


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
