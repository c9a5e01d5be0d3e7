"""`lmtailor explain`: one example's history through a curate run, from its ledger."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmtailor.core import rundir
from lmtailor.core.config import ConfigError
from lmtailor.core.io import DataError, parse_json, raw_records
from lmtailor.core.records import RecordError
from lmtailor.curate.recipe import Recipe

# A record index as the run writes it in ids: `-1`, `+3`, `03` or `３` would name no record, or another one;
# past 18 digits it would be past the end of any file (and past what int() reads, at 4,300).
_INDEX = re.compile(r"0|[1-9][0-9]{0,17}")
# The fields each entry of the run's own files must have, with their types: an entry of other types would
# read as no event, and a dropped record as kept.
_LEDGER_KEYS = {"id": str, "step": str, "action": str, "reason": str}
_REJECT_KEYS = {"source": str, "index": int, "reason": str}


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
    try:
        recipe = Recipe.parse(manifest.get("recipe"), "its recipe")  # type: ignore[arg-type]
    except ConfigError as e:
        raise rundir.RunFolderError(run / "manifest.json", f"is not a curate manifest: {e}") from None
    h = History(example_id)
    for e in _entries(run / "ledger.jsonl", _LEDGER_KEYS):
        if e["id"] == example_id:
            h.events.append(e)
        elif e.get("twin") == example_id:
            h.twin_of.append(e)
    stem, sep, index = example_id.rpartition(":")
    mixed = [src for step in recipe.steps for src in getattr(step, "sources", [])]
    sources = [(spec.path, n >= len(recipe.inputs)) for n, spec in enumerate([*recipe.inputs, *mixed])]
    match = next(((p, mix) for p, mix in sources if (p.name if p.is_dir() else p.stem) == stem and sep), None)
    if match is None:
        names = ", ".join(p.name if p.is_dir() else p.stem for p, _ in sources)
        h.missing = f"ids are <input name>:<record index>, and the inputs are {names}"
        return h
    source, h.from_mix_source = match
    h.source = str(source)
    if not _INDEX.fullmatch(index):
        shown = index if len(index) <= 40 else f"{index[:40]}... ({len(index):,} characters)"
        h.missing = f"{shown!r} is not a record index (0, 1, 2, ...)"
        return h
    h.index = int(index)
    for r in _entries(run / "rejects.jsonl", _REJECT_KEYS):
        if r["source"] == h.source and r["index"] == h.index:
            h.rejected = r
    if not source.exists():
        h.missing = f"its source {source} is gone, so record {h.index} cannot be looked up"
        return h
    count = 0
    for raw in raw_records(source, recipe.max_record_mb):
        count = raw.index + 1
        if raw.index == h.index:
            h.original = raw.record if raw.error is None else raw.text
            return h
    h.missing = f"{source} holds {count:,} records (0 to {count - 1:,})" if count else f"{source} holds no records"
    return h


def _entries(path: Path, keys: dict[str, type]) -> Iterator[dict[str, Any]]:
    """The run's own JSONL (ledger, rejects); a damaged line is a DataError naming the file and the line."""
    try:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    entry = parse_json(line)
                except RecordError as e:
                    raise DataError(path, None, f"line {line_no} is corrupt ({e}); run curate again") from None
                if not isinstance(entry, dict) or not all(type(entry.get(k)) is t for k, t in keys.items()):
                    raise DataError(path, None, f"line {line_no} is not an entry of {path.name}; run curate again")
                yield entry
    except UnicodeDecodeError as e:
        raise DataError(path, None, f"is corrupt: not UTF-8 ({e.reason}); run curate again") from None
