"""mix: blend general instruction data into the task data, to limit forgetting.

The share of general data is fixed by `ratio`; each source gets a part in proportion to its weight,
capped by its `max`. Sampling is seeded, so the same recipe gives the same mix.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from typing import Literal

from pydantic import Field

from lmtailor.core.inputs import InputSpec
from lmtailor.core.records import Example
from lmtailor.curate.step import SetStep, StepContext


class MixSource(InputSpec):
    weight: float = Field(1.0, gt=0)
    max: int | None = Field(None, ge=0)


class Mix(SetStep):
    step: Literal["mix"] = "mix"
    sources: list[MixSource] = Field(min_length=1)
    ratio: float = Field(0.2, gt=0, lt=1, description="share of general data in the result")
    seed: int = 0
    shuffle: bool = False

    def quotas(self, n_task: int, sizes: list[int]) -> list[int]:
        """How many records to take from each source."""
        want = round(n_task * self.ratio / (1 - self.ratio))
        total_w = sum(s.weight for s in self.sources)
        return [
            min(size, s.max if s.max is not None else size, round(want * s.weight / total_w))
            for s, size in zip(self.sources, sizes, strict=True)
        ]

    def data_files(self) -> list[MixSource]:
        return list(self.sources)

    def run(self, examples: Iterable[Example], ctx: StepContext) -> Iterator[Example]:
        task = list(examples)
        pools = [list(s.read()) for s in self.sources]
        rng = random.Random(self.seed)
        mixed: list[Example] = []
        for source, pool, quota in zip(
            self.sources, pools, self.quotas(len(task), [len(p) for p in pools]), strict=True
        ):
            for i in sorted(rng.sample(range(len(pool)), quota)):
                ex = pool[i]
                ex.metadata["mix_source"] = str(source.path)
                ctx.add(ex, "mixed_in", f"general data from {source.path} ({quota} of {len(pool)})")
                mixed.append(ex)
        out = task + mixed
        if self.shuffle:
            rng.shuffle(out)
        yield from out
