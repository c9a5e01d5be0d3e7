"""The advice for one task: its facts (stated and inferred) and every rung placed by the rules."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lmtailor.core.rundir import AuditFolder
from lmtailor.plan.data_advice import data_advice
from lmtailor.plan.rules import Facts, Placement, advise
from lmtailor.plan.task import TaskSpec, infer_facts, load_task


@dataclass
class Advice:
    task: TaskSpec
    facts: Facts
    inferred: list[str]
    rungs: list[Placement]
    data: list[str]  # advice on the data itself

    def to_json(self) -> dict[str, Any]:
        return {
            "goal": str(self.task.goal),
            "facts": asdict(self.facts),
            "inferred": self.inferred,
            "rungs": [asdict(p) for p in self.rungs],
            "data_advice": self.data,
        }


def plan(path: Path) -> Advice:
    """Read the task description at `path`, infer what the data says, and place every rung."""
    task = load_task(path)
    facts, inferred = infer_facts(task)
    audit = AuditFolder(task.audit).require_complete() if task.audit is not None else None
    return Advice(task, facts, inferred, advise(facts), data_advice(facts, task.label_cost, audit))
