"""What the judge reads: rubrics (a name, criteria, graded demonstrations) and the prompts built from them.

The demonstrations matter most for small base models, which grade by imitation: each default rubric shows
one poor, one middling and one good answer, so no score is favoured by the examples alone. A rubric from a
recipe or a YAML file may bring its own demonstrations; without them it borrows the helpfulness ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model, model_validator

from lmtailor.core.config import ConfigError, load_config


class Demo(BaseModel):
    """One graded example shown to the judge before the answer it grades."""

    model_config = ConfigDict(extra="forbid")
    instruction: str
    input: str = ""
    answer: str
    score: int = Field(ge=1, le=5)
    reason: str


class Rubric(BaseModel):
    """`needs_input`: the rubric judges the answer against the record's input (context), so records
    without one are not scored on it."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    criteria: str = Field(min_length=1)
    needs_input: bool = False
    demos: list[Demo] = []


_HELPFUL_DEMOS = [
    Demo(
        instruction="Give three tips for staying healthy.",
        answer="1. Eat vegetables and fruit every day. 2. Exercise for 30 minutes most days. 3. Sleep 7-8 hours.",
        score=5,
        reason="Three clear, useful tips, exactly as asked.",
    ),
    Demo(
        instruction="Write a short poem about the sea.",
        answer="The sea is big.",
        score=2,
        reason="One flat line; barely a poem.",
    ),
    Demo(
        instruction="Explain why the sky is blue.",
        answer="Sunlight is scattered by air molecules.",
        score=3,
        reason="Right idea but too brief to explain it.",
    ),
]

_CORRECT_DEMOS = [
    Demo(
        instruction="What is the capital of Australia?",
        answer="The capital of Australia is Canberra.",
        score=5,
        reason="Correct.",
    ),
    Demo(
        instruction="How many legs does a spider have?",
        answer="A spider has six legs.",
        score=1,
        reason="Wrong: spiders have eight legs.",
    ),
    Demo(
        instruction="Who wrote Hamlet and when?",
        answer="William Shakespeare wrote Hamlet in the 1800s.",
        score=3,
        reason="Right author, wrong century (about 1600).",
    ),
]

_GROUNDED_DEMOS = [
    Demo(
        instruction="When did the company open its first store?",
        input="Acme was founded in 1990 and opened its first store in Leeds in 1994.",
        answer="Acme opened its first store in 1994, in Leeds.",
        score=5,
        reason="Every fact comes from the input.",
    ),
    Demo(
        instruction="Summarise the text.",
        input="The library opens at 9am on weekdays and is closed on Sundays.",
        answer="The library, built in 1887 by the mayor, opens at 8am every day.",
        score=1,
        reason="Invents the date and the mayor; contradicts the hours.",
    ),
    Demo(
        instruction="What does the bakery sell?",
        input="The bakery sells bread and cakes.",
        answer="It sells bread, cakes and coffee.",
        score=3,
        reason="Bread and cakes are in the input; coffee is not.",
    ),
]

DEFAULT_RUBRICS: dict[str, Rubric] = {
    r.name: r
    for r in (
        Rubric(
            name="helpfulness",
            criteria="Helpfulness: does the answer do what the instruction asks, completely and usefully?",
            demos=_HELPFUL_DEMOS,
        ),
        Rubric(
            name="correctness",
            criteria="Correctness: are the facts, numbers and reasoning in the answer right?",
            demos=_CORRECT_DEMOS,
        ),
        Rubric(
            name="groundedness",
            criteria="Groundedness: is everything the answer states supported by the input, with nothing invented?",
            needs_input=True,
            demos=_GROUNDED_DEMOS,
        ),
    )
}


# ---------------------------------------------------------------- prompts

REASON_CHARS = 120


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rstrip() + " [...]"


def _block(instruction: str, input: str, answer: str, limit: int) -> str:
    out = f"Instruction: {_clip(instruction, limit)}\n"
    if input.strip():
        out += f"Input: {_clip(input, limit)}\n"
    return out + f"Answer: {_clip(answer, limit)}\nGrade:"


def rubric_preamble(rubric: Rubric, reasons: bool) -> str:
    """Everything before the graded record: the task, the criteria and the graded demonstrations."""
    head = f"Grade each answer for {rubric.name} from 1 (very poor) to 5 (excellent).\n{rubric.criteria}\n\n"
    demos = "".join(
        f"{_block(d.instruction, d.input, d.answer, 10**6)} "
        f"{json.dumps({'score': d.score} | ({'reason': d.reason} if reasons else {}))}\n\n"
        for d in rubric.demos
    )
    return head + demos


def rubric_prompt(preamble: str, instruction: str, input: str, answer: str, limit: int) -> str:
    """The preamble and the record, ending where the verdict's JSON begins."""
    return preamble + _block(instruction, input, answer, limit)


# The better answer is the complete, relevant one, once in each position, so neither place nor brevity wins.
_PAIR_DEMOS = [
    ("Name three primary colours.", "Red, blue and yellow.", "Colours are nice.", "A", "A names three; B does not."),
    (
        "Why do leaves change colour in autumn?",
        "Trees.",
        "As days shorten, trees stop making green chlorophyll, so the yellow and orange pigments show.",
        "B",
        "B explains the cause; A says nothing.",
    ),
]


def _pair_block(instruction: str, a: str, b: str, limit: int) -> str:
    return (
        f"Instruction: {_clip(instruction, limit)}\nAnswer A: {_clip(a, limit)}\nAnswer B: {_clip(b, limit)}\nBetter:"
    )


def pair_preamble(reasons: bool) -> str:
    head = (
        "Compare two answers to the same instruction. Say which is better, A or B: the one that is more "
        "correct, complete and helpful.\n\n"
    )
    demos = "".join(
        f"{_pair_block(i, a, b, 10**6)} {json.dumps({'better': better} | ({'reason': reason} if reasons else {}))}\n\n"
        for i, a, b, better, reason in _PAIR_DEMOS
    )
    return head + demos


def pair_prompt(preamble: str, instruction: str, a: str, b: str, limit: int) -> str:
    return preamble + _pair_block(instruction, a, b, limit)


def verdict_schema(reasons: bool) -> type[BaseModel]:
    """The judge's answer; the grade comes first so it does not depend on how the reason rambles."""
    fields: dict[str, Any] = {"score": (Literal[1, 2, 3, 4, 5], ...)}
    if reasons:
        fields["reason"] = (str, Field(max_length=REASON_CHARS))
    return create_model("Verdict", **fields)


def preference_schema(reasons: bool) -> type[BaseModel]:
    fields: dict[str, Any] = {"better": (Literal["A", "B", "tie"], ...)}
    if reasons:
        fields["reason"] = (str, Field(max_length=REASON_CHARS))
    return create_model("Preference", **fields)


# ---------------------------------------------------------------- choosing rubrics


class RubricError(ValueError):
    """An unknown rubric name, or two rubrics of one name; the message names the choices."""


RUBRIC_FILE = "a rubric file maps rubric names to criteria text (or to {criteria, demos})"


class RubricFile(RootModel[dict[str, Rubric]]):
    """Rubrics from YAML: a mapping name -> criteria text, or name -> {criteria, needs_input, demos}."""

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        """Each key is its rubric's name; a bare string is the criteria."""
        if not isinstance(data, dict):
            return data
        specs = {name: {"criteria": body} if isinstance(body, str) else body or {} for name, body in data.items()}
        return {name: {"name": name, **spec} if isinstance(spec, dict) else spec for name, spec in specs.items()}


def load_rubric_file(path: Path) -> dict[str, Rubric]:
    rubrics = load_config(RubricFile, path, "rubric file", RUBRIC_FILE).root
    if not rubrics:
        raise ConfigError(f"{path}: {RUBRIC_FILE}")
    return rubrics


def resolve(choices: list[str | Rubric], path: Path | None = None) -> list[Rubric]:
    """Rubric names (defaults, or those in `path`) and inline rubrics, as rubrics with demonstrations."""
    known = {**DEFAULT_RUBRICS, **(load_rubric_file(path) if path else {})}
    out: list[Rubric] = []
    for choice in choices:
        if isinstance(choice, Rubric):
            rubric = choice
        elif choice in known:
            rubric = known[choice]
        else:
            where = f" or in {path}" if path else ""
            raise RubricError(f"unknown rubric {choice!r}; choose from {', '.join(sorted(known))}{where}")
        out.append(rubric if rubric.demos else rubric.model_copy(update={"demos": _HELPFUL_DEMOS}))
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        raise RubricError(f"rubric names must be distinct; got {', '.join(names)}")
    return out
