"""Atomic checkpoints: written to a temporary file in the same folder, then renamed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from reidcore.atomic import atomic_write_bytes
from reidcore.errors import ExperimentError

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^checkpoint-(\d+)\.pt$")


def checkpoint_path(exp_dir: Path, iteration: int) -> Path:
    return Path(exp_dir) / CHECKPOINT_DIR / f"checkpoint-{iteration:07d}.pt"


def list_checkpoints(exp_dir: Path) -> list[tuple[int, Path]]:
    folder = Path(exp_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def save_checkpoint(exp_dir: Path, iteration: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``state`` as ``checkpoints/checkpoint-{iteration:07d}.pt`` and keep the last ``keep``."""
    path = checkpoint_path(exp_dir, iteration)
    atomic_write_bytes(path, lambda f: torch.save(state, f))
    for _it, old in list_checkpoints(exp_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_latest(exp_dir: Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The newest checkpoint's state, or None when the experiment has none.

    Raises:
        ExperimentError: the newest checkpoint cannot be read (named).
    """
    found = list_checkpoints(exp_dir)
    if not found:
        return None
    path = found[-1][1]
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise ExperimentError(f"cannot read checkpoint {path}: {exc}") from exc
