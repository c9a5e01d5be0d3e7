"""A run folder's life: one writer at a time, files committed as one unit, readers that refuse a half run.

A run is complete when its index file (curate's `manifest.json`, audit's `summary.json`) is present. A writer
takes the folder's lock, removes the old index before it writes anything, writes the other files, and
writes the index last with the byte count and digest of every file it vouches for. A run killed part way
therefore has no index, and `require_complete` refuses it; a file changed since the index was written fails
its digest. The lock is an OS lock on `.lock`, so a killed run never leaves it held.

`CurateFolder` and `AuditFolder` own their run folders' file names; code that reads or writes one asks them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any, ClassVar

from lmtailor.core.io import DataError, atomic_path, parse_json
from lmtailor.core.records import RecordError

LOCK = ".lock"


class RunFolderError(DataError):
    """A run folder that cannot be used: busy, not a folder, incomplete or inconsistent."""

    def __init__(self, path: Path | str, problem: str):
        super().__init__(path, None, problem)


def prepare(out: Path) -> Path:
    """Create the run folder, refusing a path that is a file or lies under one."""
    if out.exists() and not out.is_dir():
        raise RunFolderError(out, "exists and is not a folder; give a folder for the run")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise RunFolderError(out, "cannot be created: a part of the path is a file") from None
    except OSError as e:
        raise RunFolderError(out, f"cannot be created: {e.strerror}") from None
    return out


@contextmanager
def locked(out: Path) -> Iterator[Path]:
    """Hold the run folder alone for the block; a second run into it is refused at once, not queued."""
    prepare(out)
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise RunFolderError(
                out, f"another lmtailor run (pid {holder}) is writing this folder; wait for it or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _remove_stale_temporaries(out)
        yield out
    finally:
        os.close(fd)  # closing releases the lock


def _remove_stale_temporaries(out: Path) -> None:
    """Temporaries of atomic writes (`.NAME.tmpPID`) a killed run left; with the lock held, none is live."""
    for p in out.iterdir():
        if p.name.startswith(".") and ".tmp" in p.name and p.name != LOCK:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def begin(out: Path, index: str) -> None:
    """Mark the run incomplete before any of its files is replaced: no index, no run."""
    (out / index).unlink(missing_ok=True)


def file_digest(path: Path) -> dict[str, Any]:
    """Size and content digest of a file, or of a folder's files in name order (a `datasets` output)."""
    h, size = hashlib.blake2b(digest_size=16), 0
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\x00")
        with open(f, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
                size += len(block)
    return {"bytes": size, "blake2b": h.hexdigest()}


def commit(out: Path, index: str, content: dict[str, Any], files: Iterable[str]) -> dict[str, Any]:
    """Write the index last, atomically, with the digest of each of `files`; returns the content written."""
    content = {**content, "files": {name: file_digest(out / name) for name in files}}
    with atomic_path(out / index) as tmp, open(tmp, "w", encoding="utf-8") as f:
        _dump(content, f)
    return content


def _dump(content: dict[str, Any], f: IO[str]) -> None:
    f.write(json.dumps(content, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    f.flush()
    os.fsync(f.fileno())


def require_complete(out: Path, index: str, what: str) -> dict[str, Any]:
    """The run's index, once its files are checked against it; a clear error for a half or changed run."""
    path = out / index
    if not out.is_dir():
        raise RunFolderError(out, f"is not a {what} run folder (no such folder)")
    if not path.exists():
        raise RunFolderError(
            out, f"is not a finished {what} run: no {index} (the run was interrupted or is still going; run it again)"
        )
    try:
        content = parse_json(path.read_text(encoding="utf-8"))  # nested 10,000 deep or a huge number: refused
    except (RecordError, UnicodeDecodeError) as e:
        raise RunFolderError(path, f"is corrupt: {e}") from None
    if not isinstance(content, dict):
        raise RunFolderError(path, "is corrupt: not a JSON object")
    files = content.get("files") or {}
    if not isinstance(files, dict) or not all(
        plain_name(name) and isinstance(want, dict) for name, want in files.items()
    ):
        raise RunFolderError(path, "is corrupt: its files are not a mapping of the folder's file names to digests")
    for name, want in files.items():
        target = out / name
        if not target.exists():
            raise RunFolderError(out, f"{name} is missing though {index} lists it: the folder was changed since")
        if file_digest(target) != want:
            raise RunFolderError(
                out, f"{name} does not match {index} (another run or a hand edit changed it); run it again"
            )
    return content


def plain_name(name: str) -> bool:
    """A file directly in the run folder: "", "..", `../x` or `/etc/x` name the folder, its parent or elsewhere."""
    return name not in ("", ".", "..") and "/" not in name and "\\" not in name


class RunFolder:
    """A run folder and the names of its files: each kind below names its index and what the index vouches for,
    so no other module spells them."""

    INDEX: ClassVar[str]
    WHAT: ClassVar[str]  # the verb, for messages: "is not a finished curate run"

    def __init__(self, path: Path | str):
        self.path = Path(path)

    @property
    def index(self) -> Path:
        return self.path / self.INDEX

    def locked(self) -> AbstractContextManager[Path]:
        return locked(self.path)

    def begin(self) -> None:
        begin(self.path, self.INDEX)

    def commit(self, content: dict[str, Any], files: Iterable[str]) -> dict[str, Any]:
        return commit(self.path, self.INDEX, content, files)

    def require_complete(self) -> dict[str, Any]:
        return require_complete(self.path, self.INDEX, self.WHAT)


class CurateFolder(RunFolder):
    """A curate run: the curated data (its name is the recipe's), the ledger, rejects, duplicate clusters,
    quarantined records and the manifest; `.work/` holds what a killed run resumes from."""

    INDEX = "manifest.json"
    WHAT = "curate"
    LEDGER = "ledger.jsonl"
    REJECTS = "rejects.jsonl"
    CLUSTERS = "clusters.jsonl"
    QUARANTINE = "quarantine.jsonl"
    # an output of one of these names would overwrite the run's own file
    OWN_FILES = (INDEX, LEDGER, REJECTS, CLUSTERS, QUARANTINE)

    @property
    def ledger(self) -> Path:
        return self.path / self.LEDGER

    @property
    def rejects(self) -> Path:
        return self.path / self.REJECTS

    @property
    def work(self) -> Path:
        return self.path / ".work"

    @property
    def staged(self) -> Path:
        """Where the run's files are written before they replace the earlier run's, all at once."""
        return self.work / "staged"

    @property
    def state(self) -> Path:
        """The checkpoints so far: step index -> fingerprint and the stats up to it."""
        return self.work / "state.json"

    @property
    def read_rejects(self) -> Path:
        return self.work / self.REJECTS

    def checkpoint(self, j: int) -> Path:
        """The examples after step `j`."""
        return self.work / f"ckpt-{j}.jsonl"

    def step_ledger(self, j: int) -> Path:
        return self.work / f"ledger-{j}.jsonl"


class AuditFolder(RunFolder):
    """An audit run: its findings, the HTML report, and summary.json, the index."""

    INDEX = "summary.json"
    WHAT = "audit"
    FINDINGS = "findings.jsonl"
    REPORT = "report.html"
    VOUCHED = (FINDINGS, REPORT)  # what summary.json vouches for

    @property
    def findings(self) -> Path:
        return self.path / self.FINDINGS

    @property
    def report(self) -> Path:
        return self.path / self.REPORT


class TrainFolder(RunFolder):
    """A training run: its config (which the folder belongs to), rejects, metrics and curves, the figures before
    and after, checkpoints (what a killed run resumes from), the exports and manifest.json, written last."""

    INDEX = "manifest.json"
    WHAT = "train"
    # export kind -> its file or folder
    EXPORTS = {"adapter": "adapter", "merged": "merged", "gguf": "adapter.gguf"}

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def rejects(self) -> Path:
        return self.path / "rejects.jsonl"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def curves(self) -> Path:
        return self.path / "curves.png"

    @property
    def eval_before(self) -> Path:
        return self.path / "eval_before.json"

    @property
    def eval_after(self) -> Path:
        return self.path / "eval_after.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def export(self, kind: str, whole_model: bool = False) -> Path:
        """Where an export goes; a full fine-tune's GGUF is the whole model, not an adapter."""
        return self.path / ("model.gguf" if kind == "gguf" and whole_model else self.EXPORTS[kind])


class EvalFolder(RunFolder):
    """An evaluation of one system: its config, one prediction row per example, and manifest.json, written last."""

    INDEX = "manifest.json"
    WHAT = "eval"

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def predictions(self) -> Path:
        return self.path / "predictions.jsonl"
