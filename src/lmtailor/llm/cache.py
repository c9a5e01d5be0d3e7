"""A persistent response cache in SQLite: a rerun, or a run killed half way, pays only for what it had not
finished. Keys hash the backend identity, the call kind, the parameters and the prompt; each batch is
committed as soon as it is answered, so nothing finished is lost to a kill."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmtailor.core.cachedir import cache_dir


def default_path() -> Path:
    return cache_dir() / "llm.sqlite"


def cache_key(identity: dict[str, Any], kind: str, params: dict[str, Any], prompt: Any) -> str:
    blob = json.dumps([identity, kind, params, prompt], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """key -> JSON value. Safe across threads of one process and across processes (WAL, short transactions)."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else default_path()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, kind TEXT NOT NULL, value TEXT NOT NULL,"
            " created REAL NOT NULL)"
        )

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        with self._lock:
            for lo in range(0, len(keys), 500):
                chunk = list(keys[lo : lo + 500])
                marks = ",".join("?" * len(chunk))
                for key, value in self._db.execute(f"SELECT key, value FROM responses WHERE key IN ({marks})", chunk):
                    found[key] = json.loads(value)
        return found

    def put_many(self, kind: str, items: Sequence[tuple[str, Any]]) -> None:
        now = time.time()
        rows = [(key, kind, json.dumps(value, ensure_ascii=False), now) for key, value in items]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO responses (key, kind, value, created) VALUES (?, ?, ?, ?)", rows
            )
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
