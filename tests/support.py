"""Builders of alpaca-style Examples shared by the test modules.

Many test modules construct small alpaca records by hand and read chosen lines of the real Alpaca file; they
each used to carry their own copy of these helpers. Kept here, the copies cannot drift apart. It is a plain
module rather than conftest.py fixtures because the builders are called with arguments inside test bodies and
parametrize lists; pytest puts the tests folder on sys.path, so `from support import alpaca` works.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from lmtailor.core.records import Example, to_example


def alpaca(instruction: str, output: str, inp: str = "", i: int = 0, source: str = "t.jsonl") -> Example:
    """A one-turn alpaca Example with id "t:{i}" and metadata {"source": source, "index": i}."""
    msgs = [{"role": "user", "content": instruction}, {"role": "assistant", "content": output}]
    return Example(f"t:{i}", msgs, inp, {"source": source, "index": i})


def alpaca_records(shared_data: Path, indices: Iterable[int]) -> dict[int, Example]:
    """The real Alpaca records at the given 0-based line indices, id "alpaca_data_52k:{i}", read in one pass."""
    path = shared_data / "alpaca" / "alpaca_data_52k.jsonl"
    wanted = set(indices)
    with path.open() as f:
        return {
            i: to_example(json.loads(line), "alpaca", f"alpaca_data_52k:{i}", {"source": str(path), "index": i})
            for i, line in enumerate(f)
            if i in wanted
        }
