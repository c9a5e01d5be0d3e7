"""This process's resident memory from Linux's /proc: the peak can be reset there, unlike `ru_maxrss`,
which Linux also carries across exec, so a child would start with its parent's peak."""

from __future__ import annotations

from pathlib import Path


def status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(f"{field} is not in /proc/self/status")


def reset_peak() -> bool:
    """Make VmHWM start again from the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True
