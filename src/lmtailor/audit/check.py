"""The check contract, and the context every check reports its findings and metrics through."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from lmtailor.audit.finding import Finding, Severity
from lmtailor.core.records import Example


class CheckContext:
    """What a check reports while it runs: findings that carry its name, and dataset-level metrics (rates,
    distributions, a map) for the summary and the report."""

    def __init__(self, check: str):
        self.check = check
        self.metrics: dict[str, Any] = {}

    def finding(self, ex: Example, severity: Severity, score: float, message: str, **evidence: Any) -> Finding:
        """A finding about one example, located by its metadata."""
        return Finding(
            ex.id,
            str(ex.metadata.get("source", "")),
            int(ex.metadata.get("index", -1)),
            self.check,
            severity,
            round(float(score), 4),
            message,
            evidence,
        )

    def dataset_finding(self, source: str, severity: Severity, score: float, message: str, **evidence: Any) -> Finding:
        """A finding about the dataset as a whole (a skewed balance, a dominant cluster): index -1."""
        return Finding("*", source, -1, self.check, severity, round(float(score), 4), message, evidence)


@dataclass(frozen=True, slots=True)
class Plot:
    """A box in the report's Plots section: its anchor on the page, its title, and the HTML it draws from the
    check's metrics."""

    anchor: str
    title: str
    draw: Callable[[dict[str, Any]], str]


class Check(BaseModel, ABC):
    """One audit check: its settings, `run`, which yields findings and records dataset metrics, and the plots
    the report draws from those metrics (the report knows no check by name).

    A check declares its name once, as the discriminator of its audit-recipe entry
    (`check: Literal["balance"] = "balance"`); `name` is read from it. Checks see the whole dataset (a list)
    because most compare records with each other; each one must stay fast enough for the 52K Alpaca audit to
    finish in a minute on 2 cores with all checks on.
    """

    model_config = ConfigDict(extra="forbid")
    check: str
    name: ClassVar[str]
    plots: ClassVar[tuple[Plot, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.name = cls.model_fields["check"].default

    @abstractmethod
    def run(self, examples: Sequence[Example], ctx: CheckContext) -> Iterator[Finding]:
        """Yield findings made with `ctx`; put dataset-level numbers into `ctx.metrics`."""
