"""Recipes: YAML files validated by pydantic. Every CLI flag of `lmtailor curate` maps to a field here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lmtailor.core.config import ConfigError, load_config, validate_config
from lmtailor.core.inputs import InputSpec
from lmtailor.core.io import DataError, OnError, container_of
from lmtailor.core.records import Format
from lmtailor.core.rundir import CurateFolder, plain_name
from lmtailor.curate.registry import STEPS, AnyStep, needs_recipe


class Recipe(BaseModel):
    """What to read, which steps to run in order, and where the curated data goes."""

    # built at the first validation, when the registered steps are imported
    model_config = ConfigDict(extra="forbid", defer_build=True)
    inputs: list[InputSpec] = Field(min_length=1)
    output: str = "curated.jsonl"
    output_format: Format | None = None
    on_error: OnError = "fail"
    max_record_mb: float = Field(16.0, gt=0, le=2.0**20)  # up to 1 TiB: inf would overflow the byte count
    steps: list[AnyStep] = []

    @field_validator("inputs", mode="before")
    @classmethod
    def _paths(cls, v: Any) -> Any:
        items = v if isinstance(v, list) else [v]
        return [{"path": i} if isinstance(i, str | Path) else i for i in items]

    @field_validator("output")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        """A real file name inside the run folder: "" or ".." would name the folder itself or its parent."""
        if v.strip() != v or not plain_name(v) or v.startswith("."):
            raise ValueError(
                f"output is a file name inside the run folder, e.g. curated.jsonl or curated.parquet; got {v!r}"
            )
        if v in CurateFolder.OWN_FILES:
            own = ", ".join(CurateFolder.OWN_FILES)
            raise ValueError(f"output {v!r} is one of the run folder's own files ({own})")
        try:
            container_of(Path(v))
        except DataError as e:
            raise ValueError(e.problem) from None
        return v

    @model_validator(mode="after")
    def _distinct_stems(self) -> Recipe:
        """Ids are `<file stem>:<index>`, so two sources with one stem would give two records one id."""
        specs = list(self.inputs) + [src for step in self.steps for src in getattr(step, "sources", [])]
        stems = [s.path.name if s.path.is_dir() else s.path.stem for s in specs]
        clashes = sorted({s for s in stems if stems.count(s) > 1})
        if clashes:
            raise ValueError(
                f"inputs and mix sources need distinct file names (ids are <file stem>:<index>); "
                f"{', '.join(clashes)} is used twice"
            )
        return self

    @classmethod
    def load(cls, path: Path | str, overrides: dict[str, Any] | None = None) -> Recipe:
        """Read a YAML recipe; relative data paths are taken from the recipe's folder."""
        return load_config(cls, Path(path), "recipe", "a recipe is a mapping with inputs, steps, ...", overrides)

    @classmethod
    def parse(cls, data: dict[str, Any], origin: str = "recipe") -> Recipe:
        return validate_config(cls, data, origin, "recipe")


def default_step(name: str) -> dict[str, Any]:
    """The recipe entry for a step named on the command line, with its defaults."""
    if name not in STEPS or needs_recipe(name):
        usable = [n for n in STEPS if not needs_recipe(n)]
        *others, last = [n for n in STEPS if needs_recipe(n)]
        raise ConfigError(
            f"--steps takes {', '.join(usable)}; {', '.join(others)} and {last} need a recipe "
            f"(they name other datasets or a size)"
        )
    return {"step": name}
