"""The audit's unit of output: one finding about one record (or, with index -1, about the whole dataset)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from lmtailor.core.records import Example

Severity = Literal["info", "low", "medium", "high"]
SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high")


@dataclass(slots=True)
class Finding:
    """What a check found: where (id, source file, 0-based record index), how bad, and the evidence."""

    id: str
    source: str
    index: int
    check: str
    severity: Severity
    score: float
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def finding(ex: Example, check: str, severity: Severity, score: float, message: str, **evidence: Any) -> Finding:
    """A finding about one example, located by its metadata."""
    return Finding(
        ex.id,
        str(ex.metadata.get("source", "")),
        int(ex.metadata.get("index", -1)),
        check,
        severity,
        round(float(score), 4),
        message,
        evidence,
    )


def dataset_finding(
    source: str, check: str, severity: Severity, score: float, message: str, **evidence: Any
) -> Finding:
    """A finding about the dataset as a whole (a skewed balance, a dominant cluster): index -1."""
    return Finding("*", source, -1, check, severity, round(float(score), 4), message, evidence)


def sources(examples: Iterable[Example]) -> str:
    """The source files of `examples`, for a finding about all of them."""
    return ", ".join(sorted({str(ex.metadata.get("source", "")) for ex in examples}))


def as_written(answer: str, lowered: str, m: re.Match[str]) -> str:
    """The words `m` matched in `lowered` (the answer stripped and lower-cased), as the answer writes them.

    Lower-casing rarely changes a string's length; when it does, the lower-cased match is the best we have.
    """
    original = answer.strip()
    return (original[m.start() : m.end()] if len(original) == len(lowered) else m.group(0)).strip()


class Check(BaseModel, ABC):
    """One audit check: its settings, and `run`, which yields findings and may record dataset metrics.

    Checks see the whole dataset (a list) because most compare records with each other; each one must stay
    fast enough for the 52K Alpaca audit to finish in a minute on 2 cores with all checks on.
    """

    model_config = ConfigDict(extra="forbid")
    name: ClassVar[str]

    @abstractmethod
    def run(self, examples: Sequence[Example], metrics: dict[str, Any]) -> Iterator[Finding]:
        """Yield findings; put dataset-level numbers for the summary and report into `metrics`."""
