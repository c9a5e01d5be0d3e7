"""Where lmtailor keeps what it computes once and reuses: $LMTAILOR_CACHE, else ~/.cache/lmtailor."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(part: str = "") -> Path:
    """The cache folder (or its `part` subfolder), created on first use."""
    path = Path(os.environ.get("LMTAILOR_CACHE") or Path.home() / ".cache" / "lmtailor") / part
    path.mkdir(parents=True, exist_ok=True)
    return path
