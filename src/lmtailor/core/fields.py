"""Field names a recipe may point a step at."""

from typing import Annotated, Literal

from pydantic import Field

FieldName = Literal["system", "instruction", "input", "output", "text"]
FieldList = Annotated[list[FieldName], Field(min_length=1)]
