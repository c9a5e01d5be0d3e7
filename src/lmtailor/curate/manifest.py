"""A curate run's manifest (`manifest.json`): the recipe, the inputs' digests, what each stage did, the counts
that show every record accounted for, and the digests of the files it vouches for."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from lmtailor.core import rundir
from lmtailor.core.config import ConfigError
from lmtailor.curate.recipe import Recipe

# `in` is a keyword: the field is `in_` in Python and "in" in the file
_STATS = ConfigDict(extra="forbid", validate_by_name=True, serialize_by_alias=True)


class ReadStats(BaseModel):
    """The read: records in the inputs, those read, and those rejected as unreadable (rejects.jsonl)."""

    model_config = _STATS
    step: Literal["read"] = "read"
    in_: int = Field(alias="in")
    out: int
    rejected: int
    seconds: float


class StepStats(BaseModel):
    """One step (`<index>:<name>`): records in and out, its ledger's entries by action and by reason, and the
    figures it reports itself (LLM usage, cross-validated quality; absent when it reports none)."""

    model_config = _STATS
    step: str
    in_: int = Field(alias="in")
    out: int
    dropped: int
    changed: int
    added: int
    seconds: float
    reasons: dict[str, int]  # "action:reason" -> entries
    metrics: dict[str, Any] = Field(default_factory=dict, exclude_if=lambda m: not m)


# The read first, then one entry per step, in recipe order.
STAGES = TypeAdapter(list[ReadStats | StepStats])


class InputDigest(BaseModel):
    path: str
    digest: str


class Output(BaseModel):
    path: str  # the file name in the run folder
    format: str
    records: int


class Counts(BaseModel):
    """The run's sums: `accounted` says input - rejected - dropped + added == kept."""

    input: int
    rejected: int
    dropped: int
    added: int
    kept: int
    accounted: bool


class FileDigest(BaseModel):
    bytes: int
    blake2b: str


class Manifest(BaseModel):
    model_config = ConfigDict(defer_build=True)  # its recipe's steps are imported at the first validation
    lmtailor: str  # the version that wrote it
    recipe: Recipe
    inputs: list[InputDigest]
    output: Output
    counts: Counts
    steps: list[ReadStats | StepStats]
    resumed_at_step: int | None  # the first step this run ran, when it resumed from a checkpoint
    seconds: float
    files: dict[str, FileDigest] = {}  # what the manifest vouches for; a run of an early version lists none

    @property
    def step_stats(self) -> list[StepStats]:
        """Each recipe step's stats, in recipe order (beside `recipe.steps`)."""
        return [s for s in self.steps if isinstance(s, StepStats)]

    def to_json(self) -> dict[str, Any]:
        """The manifest as written, less `files`, which the run folder adds when it commits."""
        return self.model_dump(mode="json", exclude={"files"})

    @classmethod
    def read_from(cls, folder: rundir.CurateFolder) -> Manifest:
        """A finished run's manifest, once its files are checked against it (RunFolderError otherwise)."""
        content = folder.require_complete()
        try:
            recipe = Recipe.parse(content.get("recipe"), "its recipe")  # type: ignore[arg-type]
            return cls.model_validate({**content, "recipe": recipe})
        except ConfigError as e:
            problem = str(e)
        except ValidationError as e:
            problem = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise rundir.RunFolderError(folder.index, f"is not a curate manifest: {problem}") from None
