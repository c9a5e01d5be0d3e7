"""Rich progress bars with throughput and ETA for anything that can take more than a moment."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")
console = Console(stderr=True)


class _Rate(TextColumn):
    """Items per second, so a user can tell a slow step from a stuck one."""

    def __init__(self, unit: str = "rec") -> None:
        super().__init__("")
        self.unit = unit

    def render(self, task):  # type: ignore[override]
        speed = task.finished_speed or task.speed
        return TextColumn(f"{speed:,.0f} {self.unit}/s" if speed else "").render(task)


def make_progress(enabled: bool = True, unit: str = "rec") -> Progress:
    """A progress display counting `unit`s; LMTAILOR_NO_PROGRESS=1 or a non-terminal quiets it."""
    disable = not enabled or os.environ.get("LMTAILOR_NO_PROGRESS") == "1"
    return Progress(
        TextColumn("[bold]{task.description:<22}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        _Rate(unit),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
        transient=False,
    )


def track(progress: Progress, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Yield `items`, advancing a task on `progress`; total defaults to len() where there is one."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    task = progress.add_task(description, total=total)
    for item in items:
        yield item
        progress.advance(task)
    progress.update(task, total=progress.tasks[task].completed)
