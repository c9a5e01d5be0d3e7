"""The index folder's own embedding store: vectors of chunk texts keyed by content hash, for one model.

It is what makes indexing incremental and resumable without leaning on the user's embedding cache: a batch of
vectors is committed as soon as it is computed, so a killed run loses at most the batch in flight, and a rerun
embeds only the chunks whose text the store lacks. It holds one model's vectors and refuses another's, so
vectors of two models never meet in one index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lmtailor.core.io import DataError

_LOOKUP = 500  # keys per statement, under SQLite's limit on bound parameters


class StoreError(DataError):
    def __init__(self, path: Path, problem: str):
        super().__init__(path, None, problem)


class VectorStore:
    def __init__(self, path: Path, model: str, dim: int):
        self.path, self.dim = path, dim
        try:
            self._con = sqlite3.connect(path, timeout=60)
            self._con.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._con.execute("CREATE TABLE IF NOT EXISTS vector (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
            with self._con:
                self._con.execute("INSERT OR IGNORE INTO meta VALUES ('model', ?)", (model,))
            (held,) = self._con.execute("SELECT value FROM meta WHERE name = 'model'").fetchone()
        except sqlite3.DatabaseError as e:
            raise StoreError(path, f"is not a readable embedding store ({e}); index again with --fresh") from None
        if held != model:
            self._con.close()
            raise StoreError(path, f"holds {held} embeddings, not {model}; index into another folder or use --fresh")

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self._con.close()

    def missing(self, keys: Sequence[str]) -> list[str]:
        """The keys (each once, in order) that have no vector yet."""
        unique = list(dict.fromkeys(keys))
        held: set[str] = set()
        for lo in range(0, len(unique), _LOOKUP):
            part = unique[lo : lo + _LOOKUP]
            rows = self._con.execute(f"SELECT key FROM vector WHERE key IN ({','.join('?' * len(part))})", part)
            held.update(k for (k,) in rows)
        return [k for k in unique if k not in held]

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Commit one batch: it survives whatever happens to the run after this returns."""
        with self._con:
            self._con.executemany(
                "INSERT OR REPLACE INTO vector VALUES (?, ?)",
                [(k, v.astype(np.float32).tobytes()) for k, v in zip(keys, vectors, strict=True)],
            )

    def matrix(self, keys: Sequence[str]) -> np.ndarray:
        """The vectors of `keys`, one row each, in their order (a key may repeat)."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for lo in range(0, len(unique), _LOOKUP):
            part = unique[lo : lo + _LOOKUP]
            rows = self._con.execute(f"SELECT key, vector FROM vector WHERE key IN ({','.join('?' * len(part))})", part)
            found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        out = np.empty((len(keys), self.dim), dtype=np.float32)
        for i, k in enumerate(keys):
            if k not in found or found[k].shape != (self.dim,):
                raise StoreError(self.path, f"has no {self.dim}-dimensional vector for chunk {k}; index again")
            out[i] = found[k]
        return out

    def keep_only(self, keys: Sequence[str]) -> int:
        """Forget the vectors of chunks no longer indexed (edited or deleted documents); returns how many."""
        with self._con:
            self._con.execute("CREATE TEMP TABLE IF NOT EXISTS kept (key TEXT PRIMARY KEY)")
            self._con.execute("DELETE FROM kept")
            self._con.executemany("INSERT OR IGNORE INTO kept VALUES (?)", ((k,) for k in keys))
            dropped = self._con.execute("DELETE FROM vector WHERE key NOT IN (SELECT key FROM kept)").rowcount
        return dropped
