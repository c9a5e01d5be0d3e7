"""The local executor: every step in this process, one example at a time through a per-record step."""

from __future__ import annotations

from collections.abc import Iterator

from lmtailor.core.records import Example
from lmtailor.curate.step import RecordStep, SetStep, Step, StepContext


class LocalExecutor:
    def apply(self, step: Step, examples: Iterator[Example], ctx: StepContext) -> Iterator[Example]:
        if isinstance(step, RecordStep):
            return _each(step, examples, ctx)
        assert isinstance(step, SetStep)
        return step.run(examples, ctx)


def _each(step: RecordStep, examples: Iterator[Example], ctx: StepContext) -> Iterator[Example]:
    step.setup(ctx)  # at the first example asked for, as the step's own time
    for ex in examples:
        kept = step.process(ex, ctx)
        if kept is not None:
            yield kept
