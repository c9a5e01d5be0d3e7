"""Executors apply a recipe's steps to its examples: in this process (`local`), or spread over workers.

The run (`lmtailor.curate.pipeline`) keeps what is the same however the steps are applied: fingerprints,
checkpoints, the ledger's merge and the manifest. An executor gets each step with its input stream and its
context, and returns the step's output stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from lmtailor.core.records import Example
from lmtailor.curate.step import Step, StepContext


class Executor(Protocol):
    def apply(self, step: Step, examples: Iterator[Example], ctx: StepContext) -> Iterator[Example]:
        """`step`'s output, lazily: the run times the stream and checkpoints it as it flows."""
        ...
