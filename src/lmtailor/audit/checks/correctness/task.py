"""What a solver hands the check: the question it understood and the answers it accepts."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Task:
    """A question a solver understood: what it is, the acceptable answers, and how to compare."""

    kind: str
    question: str
    expected: list[float] = field(default_factory=list)
    rel_tol: float = 0.0
    items: list[str] | None = None  # sorting: the items given, in their order
    order: list[str] | None = None  # numeric sorting: the items sorted
    descending: bool = False
    weekday: str | None = None
    units: tuple[str, str] | None = None  # conversion: (from, to), to read "5 feet 6 inches" as one length
