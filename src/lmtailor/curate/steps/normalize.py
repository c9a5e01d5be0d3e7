"""normalize: repair text, blank placeholder fields, and standardise answers (canonical SQL, a fixed template).

Standardising outputs teaches the model the task rather than its annotators' habits: with canonical SQL it
learns SQL, not spacing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Literal

import sqlglot
from pydantic import BaseModel, ConfigDict, PrivateAttr, field_validator
from sqlglot.errors import SqlglotError

from lmtailor.core.records import Example
from lmtailor.curate.step import RecordStep, StepContext
from lmtailor.sql.canonical import canonical_sql
from lmtailor.text.cleaning import DEFAULT_PLACEHOLDERS, repair_unicode, strip_control, tidy_whitespace


class SqlOptions(BaseModel):
    """Canonical SQL: sqlglot's one-line form with upper-case keywords and unquoted names in the dialect's case,
    for `dialect`."""

    model_config = ConfigDict(extra="forbid")
    dialect: str = "sqlite"
    invalid: Literal["keep", "drop"] = "drop"

    @field_validator("dialect")
    @classmethod
    def _known(cls, v: str) -> str:
        sqlglot.Dialect.get_or_raise(v)
        return v


class Normalize(RecordStep):
    """Repairs text in every field; blanks placeholders; optional canonical SQL and answer template."""

    step: Literal["normalize"] = "normalize"
    unicode: bool = True
    straight_quotes: bool = False
    control_chars: bool = True
    whitespace: bool = True
    placeholders: list[str] = DEFAULT_PLACEHOLDERS
    output_placeholders: list[str] = ["<nooutput>", "<no output>"]
    sql: SqlOptions | None = None
    answer_template: str | None = None
    _fixes: list[tuple[str, Callable[[str], str]]] = PrivateAttr(default_factory=list)
    _blank_in: set[str] = PrivateAttr(default_factory=set)
    _blank_out: set[str] = PrivateAttr(default_factory=set)

    @field_validator("answer_template")
    @classmethod
    def _has_slot(cls, v: str | None) -> str | None:
        if v is not None and v.count("{answer}") != 1:
            raise ValueError("answer_template must contain {answer} exactly once, e.g. 'Sure! {answer}'")
        return v

    def _text_fixes(self) -> list[tuple[str, Callable[[str], str]]]:
        fixes: list[tuple[str, Callable[[str], str]]] = []
        if self.unicode:
            fixes.append(("unicode", partial(repair_unicode, straight_quotes=self.straight_quotes)))
        if self.control_chars:
            fixes.append(("control_chars", strip_control))
        if self.whitespace:
            fixes.append(("whitespace", tidy_whitespace))
        return fixes

    def setup(self, ctx: StepContext) -> None:
        self._fixes = self._text_fixes()
        self._blank_in = {p.casefold() for p in self.placeholders}
        self._blank_out = {p.casefold() for p in self.output_placeholders}

    def process(self, ex: Example, ctx: StepContext) -> Example | None:
        for reason, fix in self._fixes:
            _apply(ex, ctx, reason, fix, ("system", "instruction", "input", "output"))
        if ex.input and ex.input.strip().casefold() in self._blank_in:
            _apply(ex, ctx, "placeholder_input", lambda _: "", ("input",))
        blank_out = self._blank_out
        _apply(ex, ctx, "placeholder_output", lambda t: "" if t.strip().casefold() in blank_out else t, ("output",))
        if self.sql is not None and not self._sql(ex, ctx):
            return None
        if self.answer_template is not None:
            _apply(ex, ctx, "template", self._templated, ("output",))
        return ex

    def _sql(self, ex: Example, ctx: StepContext) -> bool:
        """Canonicalise SQL answers; False when an answer does not parse and the recipe drops those."""
        assert self.sql is not None
        dialect = self.sql.dialect
        try:
            _apply(ex, ctx, "sql", lambda t: canonical_sql(t, dialect) if t.strip() else t, ("output",))
        except SqlglotError as e:
            if self.sql.invalid == "drop":
                ctx.drop(ex, "invalid_sql", f"answer is not valid {dialect} SQL: {str(e).splitlines()[0][:200]}")
                return False
        return True

    def _templated(self, answer: str) -> str:
        assert self.answer_template is not None
        prefix, suffix = self.answer_template.split("{answer}")
        if not answer or (answer.startswith(prefix) and answer.endswith(suffix)):
            return answer
        return prefix + answer + suffix


_FIELD_OF_ROLE = {"system": "system", "user": "instruction", "assistant": "output"}


def _apply(ex: Example, ctx: StepContext, reason: str, fix: Callable[[str], str], fields: tuple[str, ...]) -> None:
    """Apply `fix` to the named fields in place and ledger what changed (turn-indexed in multi-turn records)."""
    changes: dict[str, tuple[str, str]] = {}
    if "input" in fields and ex.input and (new := fix(ex.input)) != ex.input:
        changes["input"] = (ex.input, new)
        ex.input = new
    turns = Counter(m["role"] for m in ex.messages)
    for i, m in enumerate(ex.messages):
        field = _FIELD_OF_ROLE[m["role"]]
        if field in fields and m["content"] and (new := fix(m["content"])) != m["content"]:
            changes[field if turns[m["role"]] == 1 else f"{field}[{i}]"] = (m["content"], new)
            ex.messages[i] = {**m, "content": new}
    if changes:
        ctx.change(ex, reason, changes)
