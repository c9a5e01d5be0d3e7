"""exact_dedup: drop examples whose chosen fields are identical after case and whitespace folding."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from lmtailor.core.fields import FieldList
from lmtailor.core.records import Example
from lmtailor.curate.step import SetStep, StepContext
from lmtailor.text.keys import fingerprint


class ExactDedup(SetStep):
    """Keeps the first of each group of identical examples. A whole-set step, since each decision depends on
    every example before it, that streams: it holds one 16-byte key per kept example, not the examples."""

    step: Literal["exact_dedup"] = "exact_dedup"
    holds_all = False
    groups_duplicates = True
    fields: FieldList = ["instruction", "input", "output"]

    def run(self, examples: Iterable[Example], ctx: StepContext) -> Iterator[Example]:
        seen: dict[bytes, str] = {}
        for ex in examples:
            key = fingerprint([ex.field(f) for f in self.fields])
            twin = seen.get(key)
            if twin is not None:
                ctx.drop(ex, "exact_duplicate", f"same {'+'.join(self.fields)} as {twin}", twin=twin)
                continue
            seen[key] = ex.id
            yield ex
