"""Audit recipes: a YAML file whose `checks:` list names the checks to run, in order, each with its settings,
so every setting a check has is reachable. The command line's --checks, --expect and --eval build the same
recipe, or amend one given with --recipe."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lmtailor.audit.check import Check
from lmtailor.audit.checks import registry
from lmtailor.core.config import ConfigError, load_config, validate_config

_CHECKS = tuple(registry().values())
AnyCheck = Annotated[Union[_CHECKS], Field(discriminator="check")]  # noqa: UP007 - built from the registry


class AuditRecipe(BaseModel):
    """The checks an audit runs, in order, with their settings; every check with its defaults when none is listed."""

    model_config = ConfigDict(extra="forbid")
    checks: list[AnyCheck] = Field(default_factory=lambda: [check() for check in _CHECKS], min_length=1)

    @field_validator("checks")
    @classmethod
    def _once(cls, v: list[Check]) -> list[Check]:
        """A check's findings and metrics are filed under its name, so two entries for one check would mix."""
        names = [c.name for c in v]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(
                f"{', '.join(twice)} is listed more than once; each check runs once, with one set of settings"
            )
        return v

    @classmethod
    def load(cls, path: Path | str) -> AuditRecipe:
        """Read a YAML audit recipe; relative paths of the files a check reads are taken from the recipe's folder."""
        expected = "an audit recipe is a mapping with a `checks` list"
        return load_config(cls, Path(path), "audit recipe", expected)

    @classmethod
    def parse(cls, data: dict[str, Any], origin: str = "audit recipe") -> AuditRecipe:
        return validate_config(cls, data, origin, "audit recipe")

    @classmethod
    def from_command_line(
        cls, path: Path | None, names: Sequence[str] | None, expect: dict[str, float], eval_paths: Sequence[Path]
    ) -> AuditRecipe:
        """The recipe at `path` (every check with its defaults without one), as the command line amends it:
        `names` (--checks) picks the checks and their order, those the recipe lists keeping their settings;
        `expect` (--expect) replaces balance's expected rates and `eval_paths` (--eval) duplicates' evaluation
        sets."""
        recipe = cls.load(path) if path is not None else cls()
        if not (names or expect or eval_paths):
            return recipe
        available = registry()
        listed = {c.name: c for c in recipe.checks}
        chosen = list(names) if names else list(listed)
        if unknown := [n for n in chosen if n not in available]:
            raise ConfigError(f"unknown check(s) {', '.join(unknown)}; choose from {', '.join(available)}")
        entries = []
        for name in chosen:
            entry = listed[name].model_dump() if name in listed else {"check": name}
            if name == "balance" and expect:
                entry["expect"] = expect
            if name == "duplicates" and eval_paths:
                entry["eval"] = [{"path": p} for p in eval_paths]
            entries.append(entry)
        return cls.parse({"checks": entries}, "command line")
