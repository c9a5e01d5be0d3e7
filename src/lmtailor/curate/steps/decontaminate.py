"""decontaminate: drop training examples that share a long n-gram with an evaluation set.

A model that saw its test questions in training scores well and has learned nothing; 13-gram overlap
is the test GPT-3 and most later reports use. Texts shorter than n words match on their whole word sequence.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PrivateAttr

from lmtailor.core.fields import FieldList
from lmtailor.core.inputs import InputSpec
from lmtailor.core.records import Example
from lmtailor.curate.step import RecordStep, StepContext
from lmtailor.text.keys import ngram_keys


class Decontaminate(RecordStep):
    step: Literal["decontaminate"] = "decontaminate"
    eval: list[InputSpec] = Field(min_length=1)
    ngram: int = Field(13, ge=1)
    # `input` is often context shared by many records (a schema, a document); matching on it would
    # flag every record that shares the context rather than the question
    fields: FieldList = ["instruction", "output"]
    _owner: dict[int, str] = PrivateAttr(default_factory=dict)  # n-gram key -> the first eval record with it

    def data_files(self) -> list[InputSpec]:
        return list(self.eval)

    def setup(self, ctx: StepContext) -> None:
        self._owner = {}
        for spec in self.eval:
            for ev in spec.read():
                for h in ngram_keys(ev.fields(self.fields), self.ngram):
                    self._owner.setdefault(h, ev.id)

    def process(self, ex: Example, ctx: StepContext) -> Example | None:
        owner = self._owner
        hit = next((owner[h] for h in sorted(ngram_keys(ex.fields(self.fields), self.ngram)) if h in owner), None)
        if hit is None:
            return ex
        ctx.drop(ex, "eval_overlap", f"shares a {self.ngram}-word sequence with evaluation record {hit}", twin=hit)
        return None
