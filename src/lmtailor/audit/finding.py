"""The audit's unit of output: one finding about one record (or, with index -1, about the whole dataset)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

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


def sources(examples: Iterable[Example]) -> str:
    """The source files of `examples`, for a finding about all of them."""
    return ", ".join(sorted({str(ex.metadata.get("source", "")) for ex in examples}))


def as_written(answer: str, lowered: str, m: re.Match[str]) -> str:
    """The words `m` matched in `lowered` (the answer stripped and lower-cased), as the answer writes them.

    Lower-casing rarely changes a string's length; when it does, the lower-cased match is the best we have.
    """
    original = answer.strip()
    return (original[m.start() : m.end()] if len(original) == len(lowered) else m.group(0)).strip()
