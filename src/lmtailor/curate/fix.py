"""`audit --fix`: a curate recipe that sends an audit's flagged records through its `findings` steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmtailor.curate.recipe import Recipe
from lmtailor.curate.steps.findings import Findings


def fix_recipe(path: Path, inputs: list[dict[str, Any]], findings: Path) -> Recipe:
    """The recipe at `path` over the audited `inputs`. Its `findings` steps read the audit's `findings` file
    unless they name one of their own; a recipe without one gets one first, with the default rule (drop at high
    severity), so the flagged records never reach its other steps."""
    recipe = Recipe.load(path, {"inputs": inputs})
    acting = [s for s in recipe.steps if isinstance(s, Findings)]
    if not acting:
        acting = [Findings()]
        recipe.steps.insert(0, acting[0])
    for s in acting:
        s.path = s.path or findings
    return recipe
