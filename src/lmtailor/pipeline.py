"""Run a curation recipe: read, chain the steps, checkpoint around whole-set steps, write the run folder.

A run folder holds the curated data, `ledger.jsonl` (every drop/change/addition and why),
`rejects.jsonl` (unreadable records), `clusters.jsonl` (duplicate groups) and `manifest.json`
(recipe, per-step counts and timings). Work in `.work/` lets a killed run resume at its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from lmtailor import __version__
from lmtailor.config import Recipe
from lmtailor.io import DataError, ReadOptions, Reject, read_examples, read_jsonl, write_examples, write_jsonl
from lmtailor.progress import make_progress, track
from lmtailor.records import Example
from lmtailor.step import StepContext

DEDUP_STEPS = ("exact_dedup", "near_dedup", "semantic_dedup")


def _scan(path: Path) -> tuple[str, int]:
    """Content digest (checkpoints and the manifest) and newline count (the progress ETA), in one read."""
    if not path.exists():
        raise DataError(path, None, "no such file or directory")
    h = hashlib.blake2b(digest_size=16)
    lines = 0
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        with open(f, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
                lines += block.count(b"\n")
    return h.hexdigest(), lines


def _expected_records(path: Path, lines: int) -> int | None:
    """A record count for the progress bar's ETA, where the container gives one cheaply."""
    if path.suffix in (".jsonl", ".ndjson"):
        return lines
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return None


def _digest(*parts: Any) -> str:
    return hashlib.blake2b(json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def _timed(items: Iterable[Example], done: Callable[[int, float], None]) -> Iterator[Example]:
    """Pass items through, timing the work done upstream of this point; call `done(count, seconds)` at the end."""
    it, n, spent = iter(items), 0, 0.0
    while True:
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            spent += time.perf_counter() - t0
            break
        spent += time.perf_counter() - t0
        n += 1
        yield item
    done(n, spent)


def _tee(items: Iterable[Example], path: Path, commit: Callable[[], None]) -> Iterator[Example]:
    """Copy items to a checkpoint file while they stream; `commit` runs once the stream is whole."""
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for ex in items:
            f.write(json.dumps(ex.to_json(), ensure_ascii=False) + "\n")
            yield ex
    tmp.replace(path)
    commit()


class Run:
    """One execution of a recipe into a run folder."""

    def __init__(self, recipe: Recipe, out_dir: Path | str, *, fresh: bool = False, progress: bool = True):
        self.recipe, self.out = recipe, Path(out_dir)
        self.work = self.out / ".work"
        if fresh and self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.show_progress = progress
        self.stats: list[dict[str, Any]] = []
        self._resumed_stages = 0
        scans = [_scan(Path(i.path)) for i in recipe.inputs]
        self.inputs = [
            {"path": str(i.path), "digest": digest} for i, (digest, _) in zip(recipe.inputs, scans, strict=True)
        ]
        self._expected = [
            _expected_records(Path(i.path), lines) for i, (_, lines) in zip(recipe.inputs, scans, strict=True)
        ]
        base = _digest(
            __version__, self.inputs, recipe.model_dump(mode="json", exclude={"steps", "output", "output_format"})
        )
        # a step's identity is its settings plus the contents of the files it reads (eval sets, mix sources, …)
        steps = [(s.model_dump(mode="json"), [_scan(f.path)[0] for f in s.data_files()]) for s in recipe.steps]
        self.fingerprints = [_digest(base, steps[: i + 1]) for i in range(len(steps))]

    # ------------------------------------------------------------ state

    def _state(self) -> dict[str, Any]:
        path = self.work / "state.json"
        return json.loads(path.read_text()) if path.exists() else {"checkpoints": {}}

    def _save_checkpoint(self, j: int) -> None:
        state = self._state()
        state["checkpoints"][str(j)] = {"fingerprint": self.fingerprints[j], "stats": self.stats}
        path = self.work / "state.json"
        path.with_suffix(".tmp").write_text(json.dumps(state, indent=1))
        path.with_suffix(".tmp").replace(path)

    def _resume_point(self) -> int:
        """Index of the first step to run: one past the newest checkpoint that matches this recipe and input."""
        checkpoints = self._state()["checkpoints"]
        for j in reversed(range(len(self.recipe.steps))):
            ck = checkpoints.get(str(j))
            if ck and ck["fingerprint"] == self.fingerprints[j] and (self.work / f"ckpt-{j}.jsonl").exists():
                self.stats = ck["stats"]
                self._resumed_stages = len(self.stats)
                return j + 1
        return 0

    def _checkpoint_after(self, j: int) -> bool:
        steps = self.recipe.steps
        return j < len(steps) - 1 and (steps[j].whole_set or steps[j + 1].whole_set)

    # ------------------------------------------------------------ stages

    def _read(self, progress) -> Iterator[Example]:
        rejects = open(self.work / "rejects.jsonl", "w", encoding="utf-8")  # noqa: SIM115 - closed in done()
        count = {"rejected": 0}

        def reject(r: Reject) -> None:
            count["rejected"] += 1
            rejects.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")

        def done(n: int, seconds: float) -> None:
            rejects.close()
            self.stats.append(
                {
                    "step": "read",
                    "in": n + count["rejected"],
                    "out": n,
                    "rejected": count["rejected"],
                    "seconds": round(seconds, 3),
                }
            )

        r = self.recipe
        streams = [
            read_examples(i.path, ReadOptions(i.format, i.columns, r.on_error, r.max_record_mb), reject)
            for i in r.inputs
        ]
        total = sum(t for t in self._expected if t is not None) if None not in self._expected else None
        return _timed(track(progress, chain.from_iterable(streams), "read + streaming steps", total), done)

    def _step(self, j: int, stream: Iterator[Example], progress) -> Iterator[Example]:
        step = self.recipe.steps[j]
        name = f"{j}:{step.step}"
        ctx = StepContext(step.step, self.work / f"ledger-{j}.jsonl", progress)
        entered = {"n": 0}

        def count_in(n: int, _s: float) -> None:
            entered["n"] = n

        def done(n: int, seconds: float) -> None:
            ctx.close()
            upstream = sum(s["seconds"] for s in self.stats[self._resumed_stages :])
            self.stats.append(
                {
                    "step": name,
                    "in": entered["n"],
                    "out": n,
                    "dropped": ctx.total("drop"),
                    "changed": ctx.total("change"),
                    "added": ctx.total("add"),
                    "seconds": round(max(seconds - upstream, 0.0), 3),
                    "reasons": dict(sorted(ctx.counts.items())),
                    **({"metrics": ctx.metrics} if ctx.metrics else {}),
                }
            )

        out = _timed(step.run(_timed(stream, count_in), ctx), done)
        if self._checkpoint_after(j):
            out = _tee(out, self.work / f"ckpt-{j}.jsonl", lambda: self._save_checkpoint(j))
        return out

    # ------------------------------------------------------------ run

    def execute(self) -> dict[str, Any]:
        started = time.time()
        start = self._resume_point()
        with make_progress(self.show_progress) as progress:
            if start == 0:
                stream = self._read(progress)
            else:
                stream = (Example.from_json(d) for d in read_jsonl(self.work / f"ckpt-{start - 1}.jsonl"))
            for j in range(start, len(self.recipe.steps)):
                stream = self._step(j, stream, progress)
            first = next(stream, None)
            fmt = self.recipe.output_format or (first.metadata.get("format", "alpaca") if first else "alpaca")
            kept = write_examples(self.out / self.recipe.output, chain([first] if first else [], stream), fmt)
        return self._finish(kept, fmt, start, time.time() - started)

    def _finish(self, kept: int, fmt: str, resumed_at: int, seconds: float) -> dict[str, Any]:
        parts = [self.work / f"ledger-{j}.jsonl" for j in range(len(self.recipe.steps))]
        clusters: dict[tuple[str, str], dict[str, Any]] = {}
        quarantined: list[dict[str, Any]] = []

        def ledger() -> Iterator[dict[str, Any]]:
            """The step ledgers in step order, noting duplicate groups and quarantined records on the way."""
            for e in chain.from_iterable(read_jsonl(p) for p in parts):
                if e["action"] == "drop" and e["step"] in DEDUP_STEPS and "twin" in e:
                    group = {"step": e["step"], "kept": e["twin"], "dropped": []}
                    clusters.setdefault((e["step"], e["twin"]), group)["dropped"].append(e["id"])
                elif e["reason"] == "quarantine":
                    quarantined.append(e["record"])
                yield e

        write_jsonl(self.out / "ledger.jsonl", ledger())
        write_jsonl(self.out / "rejects.jsonl", read_jsonl(self.work / "rejects.jsonl"))
        write_jsonl(self.out / "clusters.jsonl", clusters.values())
        if quarantined:
            write_jsonl(self.out / "quarantine.jsonl", quarantined)
        else:
            (self.out / "quarantine.jsonl").unlink(missing_ok=True)  # an earlier run's, not this one's
        read = self.stats[0]
        dropped = sum(s.get("dropped", 0) for s in self.stats)
        added = sum(s.get("added", 0) for s in self.stats)
        manifest = {
            "lmtailor": __version__,
            "recipe": self.recipe.model_dump(mode="json"),
            "inputs": self.inputs,
            "output": {"path": self.recipe.output, "format": fmt, "records": kept},
            "counts": {
                "input": read["in"],
                "rejected": read["rejected"],
                "dropped": dropped,
                "added": added,
                "kept": kept,
                "accounted": read["in"] - read["rejected"] - dropped + added == kept,
            },
            "steps": self.stats,
            "resumed_at_step": resumed_at or None,
            "seconds": round(seconds, 2),
        }
        tmp = self.out / ".manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        tmp.replace(self.out / "manifest.json")
        return manifest


def curate(recipe: Recipe, out_dir: Path | str, *, fresh: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run `recipe` into `out_dir`, resuming from a matching checkpoint unless `fresh`; returns the manifest."""
    return Run(recipe, out_dir, fresh=fresh, progress=progress).execute()
