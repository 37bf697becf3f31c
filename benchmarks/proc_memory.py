"""Memory readings for the benchmarks: fields of /proc/self/status in MiB (Linux)."""

from __future__ import annotations

from pathlib import Path


def status_mib(field: str) -> float | None:
    """``VmRSS``, ``VmHWM``, ... of this process in MiB, or None where /proc is unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None
