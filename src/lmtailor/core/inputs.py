"""Where a step reads another dataset from (an evaluation set, general data to mix in)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from lmtailor.core.io import OnError, ReadOptions, read_examples
from lmtailor.core.records import Example, Format


class InputSpec(BaseModel):
    """A dataset file or `datasets` directory; `columns` renames source fields to a format's names."""

    model_config = ConfigDict(extra="forbid")
    path: Path
    format: Format | None = None
    columns: dict[str, str] = {}

    def read(self, on_error: OnError = "fail", max_record_mb: float = 16.0) -> Iterator[Example]:
        return read_examples(self.path, ReadOptions(self.format, self.columns, on_error, max_record_mb))
