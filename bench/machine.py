"""What every benchmark records about the machine it ran on, so a figure can be read against its load."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def machine(packages: Sequence[str], load_before: Sequence[float]) -> dict[str, Any]:
    """CPUs, platform, the packages' versions, and the load average before the run and now."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "packages": {n: metadata.version(n) for n in packages},
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
