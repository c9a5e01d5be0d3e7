"""The advisor's rules: each a small function from what is known about a task to verdicts on rungs.

A rule says why, in words a person can check, and where the rule comes from; `advise` runs every rule and
merges their verdicts per rung, so the advice shows which rules fired. A rung any rule rules out is ruled out
(with every reason); otherwise one any rule says to try is tried; the rest wait for evidence from the rungs
below them. Rungs keep the ladder's order, cheapest first. Costs are the estimator's; these rules place rungs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

Rung = Literal["zero_shot", "icl", "rag", "lora", "full", "continued_pretraining", "pretraining"]
LADDER: tuple[Rung, ...] = ("zero_shot", "icl", "rag", "lora", "full", "continued_pretraining", "pretraining")
Action = Literal["try", "later", "rule_out"]
AnswerKind = Literal["classification", "extraction", "generation"]


@dataclass(frozen=True)
class Facts:
    """What the plan knows about the task, stated by the user or inferred from the data (None: unknown)."""

    examples: int  # labelled examples to learn from
    answer_kind: AnswerKind = "generation"
    documents: bool = False  # documents were given to retrieve from
    needs_knowledge: bool | None = None  # answers need facts the model may lack
    knowledge_changes: bool | None = None
    new_format: bool | None = None  # a new format, style or behaviour the model must learn
    keep_general: bool = True  # general ability must be kept


@dataclass(frozen=True)
class Verdict:
    rung: Rung
    action: Action
    why: str
    rule: str = ""
    source: str = ""


@dataclass
class Placement:
    """One rung of the advice: what to do with it and every verdict that placed it."""

    rung: Rung
    action: Action
    verdicts: list[Verdict] = field(default_factory=list)


Rule = Callable[[Facts], list[Verdict]]


def measure_first(facts: Facts) -> list[Verdict]:
    why = "zero-shot and in-context learning cost nothing to train: measure them before any training, so " \
        "training is judged against them"  # fmt: skip
    source = "Brown et al. 2020, Language Models are Few-Shot Learners"
    return [Verdict(rung, "try", why, source=source) for rung in ("zero_shot", "icl")]


def data_size(facts: Facts) -> list[Verdict]:
    n = facts.examples
    if n < 10:
        why = f"{n} labelled examples: too few to train on; they are shots for in-context learning"
        return [Verdict(rung, "rule_out", why) for rung in ("lora", "full")]
    if n < 50:
        return [Verdict("lora", "later", f"{n} labelled examples: fewer than the 50-100 a LoRA pilot needs")]
    harder = facts.answer_kind == "generation"
    why = f"{n} labelled examples: 50-100 good ones can already help" + (
        "; open-ended answers need more than classification or extraction" if harder else ""
    )
    return [Verdict("lora", "try", why, source="Zhou et al. 2023, LIMA: Less Is More for Alignment")]


def knowledge(facts: Facts) -> list[Verdict]:
    source = "Ovadia et al. 2023 (RAG beat fine-tuning for knowledge); Gekhman et al. 2024 (new facts by " \
        "fine-tuning raise hallucination)"  # fmt: skip
    if facts.needs_knowledge or facts.knowledge_changes:
        if not facts.documents:
            why = "the task needs facts the model may lack, but no documents were given to retrieve them from"
            return [Verdict("rag", "rule_out", why, source=source)]
        changing = " that change" if facts.knowledge_changes else ""
        why = f"the task needs facts{changing} from documents: retrieve them; never fine-tune facts in"
        return [Verdict("rag", "try", why, source=source)]
    if facts.documents:
        return [Verdict("rag", "try", "documents were given: measure whether retrieving from them helps")]
    return [Verdict("rag", "rule_out", "no documents to retrieve from, and the task was not said to need them")]


def new_format(facts: Facts) -> list[Verdict]:
    if facts.new_format and facts.examples >= 10:
        why = "a new format, style or behaviour is easier to train than to describe: parameter-efficient tuning"
        return [Verdict("lora", "try", why, source="Hu et al. 2021, LoRA")]
    return []


def full_last(facts: Facts) -> list[Verdict]:
    if facts.examples < 10:
        return []
    why = "full fine-tuning only when LoRA plateaus below the goal and the memory fits"
    if facts.keep_general:
        why += "; it forgets more of the model's general ability than LoRA (measured on every run)"
    return [Verdict("full", "later", why, source="Biderman et al. 2024, LoRA Learns Less and Forgets Less")]


def out_of_reach(facts: Facts) -> list[Verdict]:
    return [
        Verdict("pretraining", "rule_out", "10^5-10^7 GPU hours (Llama 2 70B: 1,720,320)",
                source="Touvron et al. 2023, Llama 2"),
        Verdict("continued_pretraining", "rule_out", "days of GPU time on billions of domain tokens "
                "(FinPythia-6.9B: 18 days, 24B tokens) and a risk of forgetting; run only when asked",
                source="Xie et al. 2023, Efficient Continual Pre-training for Domain Specific LLMs"),
    ]  # fmt: skip


RULES: tuple[Rule, ...] = (measure_first, data_size, knowledge, new_format, full_last, out_of_reach)


def advise(facts: Facts, rules: tuple[Rule, ...] = RULES) -> list[Placement]:
    """Every rung in the ladder's order, with the action its verdicts give and the verdicts themselves."""
    found: dict[Rung, list[Verdict]] = {rung: [] for rung in LADDER}
    for rule in rules:
        for verdict in rule(facts):
            found[verdict.rung].append(replace(verdict, rule=rule.__name__))
    placements = []
    for rung, verdicts in found.items():
        actions = {v.action for v in verdicts}
        action: Action = "rule_out" if "rule_out" in actions else "try" if "try" in actions else "later"
        if not verdicts:
            verdicts = [Verdict(rung, "later", "no rule placed it: try it when the rungs below miss the goal")]
        placements.append(Placement(rung, action, verdicts))
    return placements
