"""Where a dataset is read from: a recipe's inputs, a step's other datasets (an evaluation set, general data to
mix in), a training run's train and eval files."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict

from lmtailor.core.config import ConfigPath
from lmtailor.core.io import OnError, ReadOptions, read_examples
from lmtailor.core.records import Example, Format


class InputSpec(BaseModel):
    """A dataset file or `datasets` directory; `columns` renames source fields to a format's names."""

    model_config = ConfigDict(extra="forbid")
    path: ConfigPath
    format: Format | None = None
    columns: dict[str, str] = {}

    def read(self, on_error: OnError = "fail", max_record_mb: float = 16.0) -> Iterator[Example]:
        return read_examples(self.path, ReadOptions(self.format, self.columns, on_error, max_record_mb))
