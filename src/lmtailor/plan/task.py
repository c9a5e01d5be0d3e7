"""A task description for `lmtailor plan`: what the user states, and what is inferred from the data.

Everything the plan can learn from the files it learns from them (how many examples, what kind of answers,
whether documents were given) and says so; what only the user knows (do the facts change, must general
ability be kept) is asked in the YAML and stays unknown when not given.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from lmtailor.core.config import ConfigPath, load_config
from lmtailor.core.io import read_examples
from lmtailor.evaluate.task import TaskMetric
from lmtailor.plan.rules import AnswerKind, Facts

_GOAL = re.compile(r"^\s*(?P<metric>[a-z_]+)\s*(?P<op>>=|<=)\s*(?P<value>[0-9]*\.?[0-9]+)\s*$")


class Goal(BaseModel):
    metric: str
    op: Literal[">=", "<="]
    value: float

    @classmethod
    def parse(cls, text: str) -> Goal:
        """`exact_match >= 0.3`: a metric, >= or <=, a number."""
        if (m := _GOAL.match(text)) is None:
            raise ValueError(f"goal {text!r} is not 'METRIC >= NUMBER' or 'METRIC <= NUMBER'")
        return cls(metric=m["metric"], op=m["op"], value=float(m["value"]))  # type: ignore[arg-type]

    def met(self, value: float) -> bool:
        return value >= self.value if self.op == ">=" else value <= self.value

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


class Hardware(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cpu_cores: int | None = None  # None: this machine's
    gpu: str | None = None
    gpu_memory_gb: float | None = None


class TaskSpec(BaseModel):
    """The YAML a user writes; paths are relative to the file."""

    model_config = ConfigDict(extra="forbid")
    data: ConfigPath  # labelled examples to learn from (and draw shots from)
    eval: ConfigPath | None = None  # held-out examples with references
    documents: ConfigPath | None = None  # what retrieval would search
    audit: ConfigPath | None = None  # an `lmtailor audit` run folder of the data: its findings become advice
    metric: TaskMetric = "exact_match"
    goal: Goal
    needs_knowledge: bool | None = None
    knowledge_changes: bool | None = None
    new_format: bool | None = None
    keep_general: bool = True
    label_cost: float | None = None  # money per labelled example
    hardware: Hardware = Hardware()
    budget_hours: float | None = None
    queries_per_day: int | None = None

    @field_validator("goal", mode="before")
    @classmethod
    def _goal(cls, value: object) -> object:
        return Goal.parse(value) if isinstance(value, str) else value


def load_task(path: Path) -> TaskSpec:
    return load_config(TaskSpec, path, "task description", "a mapping of task settings (data, metric, goal, ...)")


def answer_kind(answers: list[str]) -> AnswerKind:
    """Classification when few distinct answers recur (at most 50, and each seen 20 times on average),
    extraction when answers are short (a median of 8 words or fewer), otherwise open-ended generation."""
    distinct = len(set(answers))
    if answers and distinct <= 50 and distinct * 20 <= len(answers):
        return "classification"
    if answers and statistics.median(len(a.split()) for a in answers) <= 8:
        return "extraction"
    return "generation"


def infer_facts(task: TaskSpec) -> tuple[Facts, list[str]]:
    """The rules' facts, and a line for each one inferred from the data rather than stated."""
    answers = [ex.field("output") for ex in read_examples(task.data)]
    kind = answer_kind(answers)
    inferred = [
        f"{len(answers)} labelled examples (counted in {task.data})",
        f"answers look like {kind} ({len(set(answers))} distinct of {len(answers)})",
    ]
    if task.documents is None:
        inferred.append("no documents given: retrieval has nothing to search")
    facts = Facts(
        examples=len(answers),
        answer_kind=kind,
        documents=task.documents is not None,
        needs_knowledge=task.needs_knowledge,
        knowledge_changes=task.knowledge_changes,
        new_format=task.new_format,
        keep_general=task.keep_general,
    )
    return facts, inferred
