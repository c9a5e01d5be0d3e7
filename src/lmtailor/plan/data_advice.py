"""What the plan says about the data itself: how much a task of this kind needs, and what an audit found that
would poison training (most of a fine-tune's result comes from its data)."""

from __future__ import annotations

from typing import Any

from lmtailor.plan.rules import Facts

SHARE = 0.01  # a check that flags at least this share of the records is worth fixing before training


def data_advice(facts: Facts, label_cost: float | None, audit: dict[str, Any] | None) -> list[str]:
    """Lines of advice, most important first: the audit's findings, then how much data the task needs."""
    lines = []
    if audit is not None:
        total = audit["dataset"]["records"]
        found = sorted(
            ((name, c) for name, c in audit["checks"].items() if c["rate"] >= SHARE),
            key=lambda item: -item[1]["rate"],
        )
        for name, c in found:
            lines.append(
                f"audit: {name} flags {c['records_flagged']} of {total} records ({c['rate']:.1%}); a model learns "
                "what its data does, so fix or drop them before training (lmtailor audit --fix, lmtailor curate)"
            )
        if not found:
            lines.append(f"audit: no check flags {SHARE:.0%} or more of the {total} records")
    harder = facts.answer_kind == "generation"
    need = "several hundred" if harder else "50-100"
    kind = "open-ended answers need more data than" if harder else "answers of this kind need less data than"
    line = (
        f"{kind} {'classification or extraction' if harder else 'open-ended generation'}: plan on {need} good examples"
    )
    if facts.examples < 50:
        short = 50 - facts.examples
        cost = f", about {short * label_cost:,.0f} at {label_cost:g} each" if label_cost else ""
        line += f"; {facts.examples} is below the 50 a LoRA pilot needs ({short} more{cost})"
    lines.append(line)
    return lines
