"""Every step a recipe may name, as `name: "module:Class"`: registering a step is one line here.

The classes are imported when a recipe is first validated, not when curate is, so curate can name the steps
of the packages above it (score, synth) without depending on them, as datatrove and distilabel resolve theirs.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Annotated, Any, Union

from pydantic import Field, GetCoreSchemaHandler
from pydantic_core import CoreSchema

from lmtailor.curate.step import Step

STEPS = {
    "normalize": "lmtailor.curate.steps.normalize:Normalize",
    "exact_dedup": "lmtailor.curate.steps.exact_dedup:ExactDedup",
    "near_dedup": "lmtailor.curate.steps.near_dedup:NearDedup",
    "semantic_dedup": "lmtailor.curate.steps.semantic_dedup:SemanticDedup",
    "filter": "lmtailor.curate.steps.filters:Filter",
    "decontaminate": "lmtailor.curate.steps.decontaminate:Decontaminate",
    "mix": "lmtailor.curate.steps.mix:Mix",
    "select": "lmtailor.curate.steps.select:Select",
    "findings": "lmtailor.curate.steps.findings:Findings",
    "classify": "lmtailor.score.classify:Classify",
    "self_instruct": "lmtailor.synth.self_instruct:SelfInstruct",
    "backtranslate": "lmtailor.synth.backtranslate:Backtranslate",
    "paraphrase": "lmtailor.synth.paraphrase:Paraphrase",
    "failure_targets": "lmtailor.synth.failures:FailureTargets",
    "judge": "lmtailor.score.judge:Judge",
}


@cache
def step_class(name: str) -> type[Step]:
    """The class registered as `name` (a KeyError for a name not registered)."""
    module, _, attr = STEPS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def needs_recipe(name: str) -> bool:
    """Whether the step has settings without a default (other datasets, a size): no command-line default."""
    return any(f.is_required() for f in step_class(name).model_fields.values())


class _Registered:
    """The schema of a recipe's step: the registered classes as one union told apart by `step`."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        classes = tuple(step_class(name) for name in STEPS)
        return handler.generate_schema(Annotated[Union[classes], Field(discriminator="step")])  # noqa: UP007


# A recipe's step, as the type checker sees it (a Step) and as pydantic validates it (the registered union).
AnyStep = Annotated[Step, _Registered()]
