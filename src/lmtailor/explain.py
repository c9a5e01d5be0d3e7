"""`lmtailor explain`: one example's history through a curate run, from its ledger."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmtailor.io import raw_records, read_jsonl


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

    @property
    def fate(self) -> str:
        if self.rejected:
            return f"rejected while reading: {self.rejected['reason']}"
        for e in self.events:
            if e["action"] == "drop":
                twin = f" (kept instead: {e['twin']})" if e.get("twin") else ""
                return f"dropped by {e['step']}: {e['reason']} — {e['detail']}{twin}"
        if self.source is None and not self.events:
            return "unknown: not an id from this run"
        if self.from_mix_source and not any(e["action"] == "add" for e in self.events):
            return "not in the output: a record of a mix source that was not sampled"
        return "kept"


def explain(run_dir: Path | str, example_id: str) -> History:
    """Collect the example's source record, every ledger entry about it, and those that name it as twin."""
    run = Path(run_dir)
    manifest = json.loads((run / "manifest.json").read_text())
    h = History(example_id)
    stem, _, index = example_id.rpartition(":")
    mixed = [src for step in manifest["recipe"]["steps"] for src in step.get("sources", [])]
    for n, spec in enumerate(manifest["recipe"]["inputs"] + mixed):
        p = Path(spec["path"])
        if (p.name if p.is_dir() else p.stem) == stem and index.isdigit():
            h.source, h.index = str(p), int(index)
            h.from_mix_source = n >= len(manifest["recipe"]["inputs"])
    for e in read_jsonl(run / "ledger.jsonl"):
        if e["id"] == example_id:
            h.events.append(e)
        elif e.get("twin") == example_id:
            h.twin_of.append(e)
    for r in read_jsonl(run / "rejects.jsonl"):
        if h.source is not None and r["source"] == h.source and r["index"] == h.index:
            h.rejected = r
    if h.source is not None and h.index is not None and Path(h.source).exists():
        for raw in raw_records(Path(h.source)):
            if raw.index == h.index:
                h.original = raw.record if raw.error is None else raw.text
                break
    return h
