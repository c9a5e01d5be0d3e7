"""Reading a YAML settings file (recipe, training config): one clean error for every way it can be wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_mapping(path: Path, what: str) -> dict[str, Any]:
    """The file's top-level mapping; ValueError naming the file when it is missing, not UTF-8, not YAML,
    nested past the parser's depth, or not a mapping (`what` says what it should hold)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, RecursionError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: {e or 'nested too deeply'}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: {what}")
    return data
