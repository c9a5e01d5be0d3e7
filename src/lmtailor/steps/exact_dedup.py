"""exact_dedup: drop examples whose chosen fields are identical after case and whitespace folding."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Literal

from lmtailor.records import Example
from lmtailor.step import Step, StepContext
from lmtailor.steps.fields import FieldList


def fingerprint(fields: list[str]) -> bytes:
    """Content key: each field casefolded with whitespace collapsed, so 'Hello  World' and 'hello world' collide.

    Fields are folded one by one and joined with NUL, which no whitespace rule can swallow.
    """
    folded = "\x00".join(" ".join(f.casefold().split()) for f in fields)
    return hashlib.blake2b(folded.encode(), digest_size=16).digest()


class ExactDedup(Step):
    """Keeps the first of each group of identical examples; streams, holding one 16-byte key per kept example."""

    step: Literal["exact_dedup"] = "exact_dedup"
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
