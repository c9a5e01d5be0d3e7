"""Reading settings (recipes, training configs, rubric files): one loader, so every verb finds a file's relative
paths and reports what is wrong with it the same way."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """Settings that cannot be read or do not validate; the message names the file (or origin) and each field."""


class _FromFile:
    """Marks a path field that a settings file gives relative to its own folder."""


# A path a settings file names: relative to the file's folder, not to where the command runs.
ConfigPath = Annotated[Path, _FromFile()]


def read_mapping(path: Path, what: str) -> dict[str, Any]:
    """The file's top-level mapping; ConfigError naming the file when it is missing, not UTF-8, not YAML,
    nested past the parser's depth, or not a mapping (`what` says what it should hold)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, RecursionError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: {e or 'nested too deeply'}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {what}")
    return data


def load_config(model: type[M], path: Path, what: str, expected: str, overrides: Mapping[str, Any] | None = None) -> M:
    """The settings file at `path` as a `model` (`what` names it, e.g. "recipe"; `expected` says what its top level
    holds), with `overrides` on top as if written in the file. Relative ConfigPath fields are read from the file's
    folder."""
    data = read_mapping(path, expected)
    data.update(overrides or {})
    return resolve_paths(validate_config(model, data, str(path), what), path.parent)


def validate_config(model: type[M], data: Any, origin: str, what: str) -> M:
    """`data` as a `model`; a ConfigError lists every problem by its field path, under a line naming `origin`."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        lines = [f"  {'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
        raise ConfigError(f"{origin} is not a valid {what}:\n" + "\n".join(lines)) from None


def _from_file(info: FieldInfo) -> bool:
    """A ConfigPath field, also where it is optional (`ConfigPath | None` keeps its mark inside the union)."""
    marks = list(info.metadata)
    marks += [m for arg in get_args(info.annotation) for m in getattr(arg, "__metadata__", ())]
    return any(isinstance(m, _FromFile) for m in marks)


def resolve_paths(config: M, base: Path) -> M:
    """Every relative ConfigPath in `config`, at any depth, taken from `base` (the settings file's folder)."""
    seen: set[int] = set()  # an object reached twice is resolved once

    def walk(value: Any) -> None:
        if isinstance(value, BaseModel) and id(value) not in seen:
            seen.add(id(value))
            for name, info in type(value).model_fields.items():
                item = getattr(value, name)
                if _from_file(info):
                    if item is not None and not item.is_absolute():
                        setattr(value, name, base / item)
                else:
                    walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(config)
    return config
