"""Run a curation recipe: read, chain the steps, checkpoint around those that hold every example, write the
run folder.

A run folder (`CurateFolder`) holds the curated data, `ledger.jsonl` (every drop/change/addition and why),
`rejects.jsonl` (unreadable records), `clusters.jsonl` (duplicate groups), `quarantine.jsonl` (records set
aside for review) and `manifest.json` (recipe, per-step counts and timings). Work in `.work/` lets a killed
run resume at its last checkpoint. How each step is applied to the examples is the executor's part.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lmtailor import __version__
from lmtailor.core.io import (
    DataError,
    ReadOptions,
    Reject,
    dumps,
    read_examples,
    read_jsonl,
    write_examples,
    write_jsonl,
)
from lmtailor.core.progress import make_progress, track
from lmtailor.core.records import Example
from lmtailor.core.rundir import CurateFolder
from lmtailor.curate.executors import Executor
from lmtailor.curate.executors.local import LocalExecutor
from lmtailor.curate.manifest import STAGES, Counts, FileDigest, InputDigest, Manifest, Output, ReadStats, StepStats
from lmtailor.curate.recipe import Recipe
from lmtailor.curate.step import StepContext


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
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except (pa.ArrowException, OSError):
            return None  # not Parquet after all: the reader says so, naming the file
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
            f.write(dumps(ex.to_json(), path) + "\n")
            yield ex
    tmp.replace(path)
    commit()


class Run:
    """One execution of a recipe into a run folder."""

    def __init__(
        self,
        recipe: Recipe,
        out_dir: Path | str,
        *,
        fresh: bool = False,
        progress: bool = True,
        executor: Executor | None = None,
    ):
        self.recipe = recipe
        self.folder = CurateFolder(out_dir)
        self.fresh = fresh
        self.show_progress = progress
        self.executor = executor or LocalExecutor()
        self.stats: list[ReadStats | StepStats] = []
        self._resumed_stages = 0
        scans = [_scan(Path(i.path)) for i in recipe.inputs]
        self.inputs = [
            InputDigest(path=str(i.path), digest=digest) for i, (digest, _) in zip(recipe.inputs, scans, strict=True)
        ]
        self._expected = [
            _expected_records(Path(i.path), lines) for i, (_, lines) in zip(recipe.inputs, scans, strict=True)
        ]
        base = _digest(
            __version__,
            [i.model_dump() for i in self.inputs],
            recipe.model_dump(mode="json", exclude={"steps", "output", "output_format"}),
        )
        # a step's identity is its settings plus the contents of the files it reads (eval sets, mix sources, …)
        steps = [(s.model_dump(mode="json"), [_scan(f.path)[0] for f in s.data_files()]) for s in recipe.steps]
        self.fingerprints = [_digest(base, steps[: i + 1]) for i in range(len(steps))]
        self._refuse_overwriting_inputs()

    def _refuse_overwriting_inputs(self) -> None:
        """No file this run writes may be, or lie inside, a file it reads (`--out . --output data.jsonl` over
        data.jsonl would replace the raw records with the curated ones), nor the run folder lie in an input."""
        out = self.folder.path.resolve()
        written = [(out / name).resolve() for name in (self.recipe.output, *CurateFolder.OWN_FILES)]
        steps = self.recipe.steps
        read = [Path(i.path) for i in self.recipe.inputs] + [Path(f.path) for s in steps for f in s.data_files()]
        for path in read:
            p = path.resolve()
            if any(w == p or p.is_relative_to(w) for w in written):
                raise DataError(path, None, f"is an input of the run and would be overwritten by its output in {out}")
            if p.is_dir() and out.is_relative_to(p):
                raise DataError(path, None, f"is an input folder; the run folder {out} cannot lie inside it")

    # ------------------------------------------------------------ state

    def _state(self) -> dict[str, Any]:
        """The checkpoints so far; a damaged state (a hand edit, a failing disk) means none, so the run redoes
        them instead of stopping: checkpoints save time, never data."""
        try:
            state = json.loads(self.folder.state.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return {"checkpoints": {}}
        return state if isinstance(state, dict) and isinstance(state.get("checkpoints"), dict) else {"checkpoints": {}}

    def _save_checkpoint(self, j: int) -> None:
        state = self._state()
        stats = [s.model_dump(mode="json") for s in self.stats]
        state["checkpoints"][str(j)] = {"fingerprint": self.fingerprints[j], "stats": stats}
        path = self.folder.state
        path.with_suffix(".tmp").write_text(json.dumps(state, indent=1))
        path.with_suffix(".tmp").replace(path)

    def _resume_point(self) -> int:
        """Index of the first step to run: one past the newest checkpoint that matches this recipe and input."""
        checkpoints = self._state()["checkpoints"]
        for j in reversed(range(len(self.recipe.steps))):
            ck = checkpoints.get(str(j))
            if (
                isinstance(ck, dict)
                and ck.get("fingerprint") == self.fingerprints[j]
                and self.folder.checkpoint(j).exists()
            ):
                try:
                    self.stats = STAGES.validate_python(ck.get("stats"))
                except ValidationError:
                    continue  # damaged: an earlier checkpoint may still serve
                self._resumed_stages = len(self.stats)
                return j + 1
        return 0

    def _checkpoint_after(self, j: int) -> bool:
        steps = self.recipe.steps
        return j < len(steps) - 1 and (steps[j].holds_all or steps[j + 1].holds_all)

    # ------------------------------------------------------------ stages

    def _read(self, progress) -> Iterator[Example]:
        rejects = open(self.folder.read_rejects, "w", encoding="utf-8")  # noqa: SIM115 - closed in done()
        count = {"rejected": 0}

        def reject(r: Reject) -> None:
            count["rejected"] += 1
            rejects.write(dumps(r.to_json(), rejects.name) + "\n")

        def done(n: int, seconds: float) -> None:
            rejects.close()
            self.stats.append(
                ReadStats(in_=n + count["rejected"], out=n, rejected=count["rejected"], seconds=round(seconds, 3))
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
        ctx = StepContext(step.step, self.folder.step_ledger(j), progress)
        entered = {"n": 0}

        def count_in(n: int, _s: float) -> None:
            entered["n"] = n

        def done(n: int, seconds: float) -> None:
            ctx.close()
            upstream = sum(s.seconds for s in self.stats[self._resumed_stages :])
            self.stats.append(
                StepStats(
                    step=name,
                    in_=entered["n"],
                    out=n,
                    dropped=ctx.total("drop"),
                    changed=ctx.total("change"),
                    added=ctx.total("add"),
                    seconds=round(max(seconds - upstream, 0.0), 3),
                    reasons=dict(sorted(ctx.counts.items())),
                    metrics=ctx.metrics,
                )
            )

        out = _timed(self.executor.apply(step, _timed(stream, count_in), ctx), done)
        if self._checkpoint_after(j):
            out = _tee(out, self.folder.checkpoint(j), lambda: self._save_checkpoint(j))
        return out

    # ------------------------------------------------------------ run

    def execute(self) -> Manifest:
        """Run under the folder's lock; the earlier run's files stay whole until this one's are all staged."""
        folder = self.folder
        with folder.locked():
            if self.fresh and folder.work.exists():
                shutil.rmtree(folder.work)
            folder.work.mkdir(exist_ok=True)
            shutil.rmtree(folder.staged, ignore_errors=True)
            folder.staged.mkdir()
            started = time.time()
            start = self._resume_point()
            with make_progress(self.show_progress) as progress:
                if start == 0:
                    stream = self._read(progress)
                else:
                    stream = (Example.from_json(d) for d in read_jsonl(folder.checkpoint(start - 1)))
                for j in range(start, len(self.recipe.steps)):
                    stream = self._step(j, stream, progress)
                first = next(stream, None)
                fmt = self.recipe.output_format or (first.metadata.get("format", "alpaca") if first else "alpaca")
                kept = write_examples(folder.staged / self.recipe.output, chain([first] if first else [], stream), fmt)
            manifest, names = self._finish(kept, fmt, start, time.time() - started)
            return self._publish(manifest, names)

    def _publish(self, manifest: Manifest, names: list[str]) -> Manifest:
        """Replace the earlier run's files with this one's, then write the manifest: until it is written the
        folder has none, so a run killed in between is seen as unfinished rather than as the earlier run."""
        folder = self.folder
        folder.begin()
        # an earlier run's quarantine is not this one's
        for name in dict.fromkeys([*names, CurateFolder.QUARANTINE]):
            target, new = folder.path / name, folder.staged / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)  # a `datasets` folder: os.replace cannot put a folder over another
            else:
                target.unlink(missing_ok=True)
            if new.exists():
                os.replace(new, target)
        written = folder.commit(manifest.to_json(), names)
        manifest.files = {name: FileDigest.model_validate(d) for name, d in written["files"].items()}
        return manifest

    def _finish(self, kept: int, fmt: str, resumed_at: int, seconds: float) -> tuple[Manifest, list[str]]:
        folder, steps = self.folder, self.recipe.steps
        parts = [folder.step_ledger(j) for j in range(len(steps))]
        grouping = {s.step for s in steps if s.groups_duplicates}
        clusters: dict[tuple[str, str], dict[str, Any]] = {}
        quarantined: list[dict[str, Any]] = []

        def ledger() -> Iterator[dict[str, Any]]:
            """The step ledgers in step order, noting duplicate groups and quarantined records on the way."""
            for e in chain.from_iterable(read_jsonl(p) for p in parts):
                if e["action"] == "drop" and e["step"] in grouping and "twin" in e:
                    group = {"step": e["step"], "kept": e["twin"], "dropped": []}
                    clusters.setdefault((e["step"], e["twin"]), group)["dropped"].append(e["id"])
                elif (record := StepContext.quarantined(e)) is not None:
                    quarantined.append(record)
                yield e

        names = [self.recipe.output, CurateFolder.LEDGER, CurateFolder.REJECTS, CurateFolder.CLUSTERS]
        write_jsonl(folder.staged / CurateFolder.LEDGER, ledger())
        write_jsonl(folder.staged / CurateFolder.REJECTS, read_jsonl(folder.read_rejects))
        write_jsonl(folder.staged / CurateFolder.CLUSTERS, clusters.values())
        if quarantined:
            write_jsonl(folder.staged / CurateFolder.QUARANTINE, quarantined)
            names.append(CurateFolder.QUARANTINE)
        read, stepped = self.stats[0], [s for s in self.stats if isinstance(s, StepStats)]
        assert isinstance(read, ReadStats)
        dropped = sum(s.dropped for s in stepped)
        added = sum(s.added for s in stepped)
        manifest = Manifest(
            lmtailor=__version__,
            recipe=self.recipe,
            inputs=self.inputs,
            output=Output(path=self.recipe.output, format=fmt, records=kept),
            counts=Counts(
                input=read.in_,
                rejected=read.rejected,
                dropped=dropped,
                added=added,
                kept=kept,
                accounted=read.in_ - read.rejected - dropped + added == kept,
            ),
            steps=self.stats,
            resumed_at_step=resumed_at or None,
            seconds=round(seconds, 2),
        )
        return manifest, names


def curate(recipe: Recipe, out_dir: Path | str, *, fresh: bool = False, progress: bool = True) -> Manifest:
    """Run `recipe` into `out_dir`, resuming from a matching checkpoint unless `fresh`; returns the manifest."""
    return Run(recipe, out_dir, fresh=fresh, progress=progress).execute()
