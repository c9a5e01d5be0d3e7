"""What the generating steps share: reading the text they work on, checking what a base model wrote, and
reporting every candidate to the ledger.

Every candidate is added to the ledger; one that fails a check is dropped again at once, with the reason and
its text, so `ledger.jsonl` shows what was generated and why it went, and the manifest's sums still hold.
"""

from __future__ import annotations

import re
from typing import Literal

from lmtailor.core.records import Example
from lmtailor.curate.step import StepContext

FieldName = Literal["system", "instruction", "input", "output", "text"]

_ROLE = {"instruction": "user", "output": "assistant", "system": "system"}
_WORD = re.compile(r"\w+")


def text_of(ex: Example, field: FieldName) -> str:
    """A record's text for one field: for turns, the final one (the instruction and answer a step works on,
    not the whole conversation); `input` and `text` as `Example.field` gives them."""
    if field in _ROLE:
        turns = ex.contents(_ROLE[field])
        return turns[-1] if turns else ""
    return ex.field(field)


def question_of(ex: Example) -> str:
    """The final instruction with its input: what a model is asked."""
    return "\n".join(t for t in (text_of(ex, "instruction"), ex.input) if t)


def one_line(text: str) -> str:
    """A completion as one clean line: whitespace collapsed, wrapping quotes removed."""
    text = " ".join(text.split())
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def words(text: str) -> int:
    return len(_WORD.findall(text))


def length_problem(text: str, min_words: int, max_words: int) -> tuple[str, str] | None:
    """(reason, detail) when a generated text is empty, too short or too long."""
    n = words(text)
    if n == 0:
        return "empty", "the model wrote nothing usable"
    if n < min_words:
        return "too_short", f"{n} words, fewer than {min_words}"
    if n > max_words:
        return "too_long", f"{n} words, more than {max_words}"
    return None


def report(ctx: StepContext, ex: Example, detail: str, problem: tuple[str, str] | None) -> bool:
    """Ledger a generated candidate: added, and dropped again when it has a problem. True when it stays."""
    ctx.add(ex, "generated", detail)
    ctx.metrics["candidates"] = ctx.metrics.get("candidates", 0) + 1
    if problem is None:
        ctx.metrics["accepted"] = ctx.metrics.get("accepted", 0) + 1
        return True
    candidate = {"instruction": text_of(ex, "instruction"), "input": ex.input, "output": text_of(ex, "output")}
    ctx.drop(ex, problem[0], problem[1], candidate=candidate)
    return False
