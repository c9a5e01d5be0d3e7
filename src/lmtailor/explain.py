"""`lmtailor explain`: one example's history through a curate run, from its ledger."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmtailor import rundir
from lmtailor.io import DataError, raw_records

# A record index as the run writes it in ids: `-1`, `+3`, `03` or `３` would name no record, or another one.
_INDEX = re.compile(r"0|[1-9][0-9]*")
_LEDGER_KEYS = ("id", "step", "action", "reason")
_REJECT_KEYS = ("source", "index", "reason")


@dataclass
class History:
    id: str
    source: str | None = None
    index: int | None = None
    original: Any = None
    events: list[dict[str, Any]] = field(default_factory=list)
    twin_of: list[dict[str, Any]] = field(default_factory=list)
    rejected: dict[str, Any] | None = None
    from_mix_source: bool = False
    missing: str | None = None  # why the id names no record the run read, when it names none

    @property
    def known(self) -> bool:
        """Whether the id is a record of this run: one it read, or one a ledger entry names."""
        return self.missing is None or bool(self.events or self.rejected)

    @property
    def fate(self) -> str:
        if self.rejected:
            return f"rejected while reading: {self.rejected['reason']}"
        for e in self.events:
            if e["action"] == "drop":
                twin = f" (kept instead: {e['twin']})" if e.get("twin") else ""
                return f"dropped by {e['step']}: {e['reason']} — {e.get('detail', '')}{twin}"
        if not self.known:
            return f"unknown: {self.id} is not a record of this run: {self.missing}"
        if self.from_mix_source and not any(e["action"] == "add" for e in self.events):
            return "not in the output: a record of a mix source that was not sampled"
        return "kept"


def explain(run_dir: Path | str, example_id: str) -> History:
    """Collect the example's source record, every ledger entry about it, and those that name it as twin.

    A run that did not finish (no manifest, or files that do not match it) is refused with a RunFolderError,
    and a corrupt ledger with a DataError naming its file and line.
    """
    run = Path(run_dir)
    manifest = rundir.require_complete(run, "manifest.json", "curate")
    recipe = manifest.get("recipe")
    if not isinstance(recipe, dict) or not isinstance(recipe.get("inputs"), list):
        raise rundir.RunFolderError(run / "manifest.json", "is not a curate manifest: it has no recipe inputs")
    h = History(example_id)
    for e in _entries(run / "ledger.jsonl", _LEDGER_KEYS):
        if e["id"] == example_id:
            h.events.append(e)
        elif e.get("twin") == example_id:
            h.twin_of.append(e)
    stem, sep, index = example_id.rpartition(":")
    mixed = [src for step in recipe.get("steps", []) for src in step.get("sources", [])]
    sources = [(Path(spec["path"]), n >= len(recipe["inputs"])) for n, spec in enumerate(recipe["inputs"] + mixed)]
    match = next(((p, mix) for p, mix in sources if (p.name if p.is_dir() else p.stem) == stem and sep), None)
    if match is None:
        names = ", ".join(p.name if p.is_dir() else p.stem for p, _ in sources)
        h.missing = f"ids are <input name>:<record index>, and the inputs are {names}"
        return h
    source, h.from_mix_source = match
    h.source = str(source)
    if not _INDEX.fullmatch(index):
        h.missing = f"{index!r} is not a record index (0, 1, 2, ...)"
        return h
    h.index = int(index)
    for r in _entries(run / "rejects.jsonl", _REJECT_KEYS):
        if r["source"] == h.source and r["index"] == h.index:
            h.rejected = r
    if not source.exists():
        h.missing = f"its source {source} is gone, so record {h.index} cannot be looked up"
        return h
    count = 0
    for raw in raw_records(source, recipe.get("max_record_mb", 16.0)):
        count = raw.index + 1
        if raw.index == h.index:
            h.original = raw.record if raw.error is None else raw.text
            return h
    h.missing = f"{source} holds {count:,} records (0 to {count - 1:,})" if count else f"{source} holds no records"
    return h


def _entries(path: Path, keys: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """The run's own JSONL (ledger, rejects); a damaged line is a DataError naming the file and the line."""
    try:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(path, None, f"line {line_no} is corrupt ({e.msg}); run curate again") from None
                if not isinstance(entry, dict) or not all(k in entry for k in keys):
                    raise DataError(path, None, f"line {line_no} is not an entry of {path.name}; run curate again")
                yield entry
    except UnicodeDecodeError as e:
        raise DataError(path, None, f"is corrupt: not UTF-8 ({e.reason}); run curate again") from None
