"""The step contract, and the ledger every step reports its drops, changes, additions and quarantines to.

Two kinds of step: a `RecordStep` decides each example alone (`process`), so an executor may map it over
shards of the data; a `SetStep` sees the whole stream (`run`), for decisions that compare examples.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator
from rich.progress import Progress

from lmtailor.core.config import ConfigPath
from lmtailor.core.io import dumps
from lmtailor.core.progress import track
from lmtailor.core.records import Example

T = TypeVar("T")
_QUARANTINE = "quarantine"  # the ledger reason of a record set aside


class StepContext:
    """What a step may touch while it runs: its ledger and a progress display."""

    def __init__(self, step: str, ledger_path: Path, progress: Progress):
        self.step = step
        self.progress = progress
        self.counts: Counter[str] = Counter()  # "action:reason" -> entries
        self.metrics: dict[str, Any] = {}  # step-specific figures for the manifest (LLM usage, CV scores)
        self._file = open(ledger_path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def _write(self, entry: dict[str, Any]) -> None:
        self._file.write(dumps({"step": self.step, **entry}, self._file.name) + "\n")
        self.counts[f"{entry['action']}:{entry['reason']}"] += 1

    def drop(self, ex: Example, reason: str, detail: str = "", twin: str | None = None, **extra: Any) -> None:
        """Record that `ex` leaves the dataset; `twin` names the example kept in its place."""
        entry = {"id": ex.id, "action": "drop", "reason": reason, "detail": detail}
        if twin is not None:
            entry["twin"] = twin
        self._write({**entry, **extra})

    def quarantine(self, ex: Example, detail: str = "", twin: str | None = None) -> None:
        """Set `ex` aside for review: it leaves the dataset like a drop, and the run keeps the record in
        quarantine.jsonl."""
        self.drop(ex, _QUARANTINE, detail, twin=twin, record=ex.to_json())

    @staticmethod
    def quarantined(entry: dict[str, Any]) -> dict[str, Any] | None:
        """The record a ledger entry set aside, or None when the entry is no quarantine."""
        return entry["record"] if entry["action"] == "drop" and entry["reason"] == _QUARANTINE else None

    def change(self, ex: Example, reason: str, changes: dict[str, tuple[str, str]]) -> None:
        """Record field edits as {field: (before, after)}."""
        self._write(
            {"id": ex.id, "action": "change", "reason": reason, "changes": {k: list(v) for k, v in changes.items()}}
        )

    def add(self, ex: Example, reason: str, detail: str = "") -> None:
        self._write({"id": ex.id, "action": "add", "reason": reason, "detail": detail})

    def total(self, action: str) -> int:
        """How many entries of `action` (drop, change, add) this step has written."""
        return sum(n for key, n in self.counts.items() if key.startswith(f"{action}:"))

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        return track(self.progress, items, description, total)

    def close(self) -> None:
        self._file.close()


class FileRef(BaseModel):
    """A file a step reads that is not a dataset (a saved classifier, a rubrics file); a bare path is accepted."""

    model_config = ConfigDict(extra="forbid")
    path: ConfigPath

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, v: Any) -> Any:
        return {"path": v} if isinstance(v, str | Path) else v


class Step(BaseModel, ABC):
    """A curation step: its recipe fields, and what the run needs to know about it, as class variables."""

    model_config = ConfigDict(extra="forbid")
    # reads every example before it yields one: the run checkpoints around it, as its input is whole anyway
    holds_all: ClassVar[bool] = False
    # its drops with a twin are duplicate groups (the run's clusters.jsonl)
    groups_duplicates: ClassVar[bool] = False
    # keeps a chosen share by design (a size, a top fraction), so dropping most records is no warning sign
    keeps_a_share: ClassVar[bool] = False

    def data_files(self) -> list[Any]:
        """The files this step reads besides its input, as objects with a `path`: the pipeline fingerprints their
        contents, so changing one invalidates the checkpoints from this step on."""
        return []


class RecordStep(Step):
    """A step that decides each example alone: an executor may split the stream and map it over the parts."""

    def setup(self, ctx: StepContext) -> None:
        """Prepare what every example is checked against (an index of evaluation n-grams, an audit's
        decisions); runs once, before the first example, in each process that runs the step."""

    @abstractmethod
    def process(self, ex: Example, ctx: StepContext) -> Example | None:
        """The example, changed or not; None when it leaves the dataset, after `ctx` was told why."""


class SetStep(Step):
    """A step that sees the whole stream: dedup, selection, mixing, scoring and generation compare examples."""

    holds_all = True

    @abstractmethod
    def run(self, examples: Iterable[Example], ctx: StepContext) -> Iterator[Example]: ...
