"""Checkpoints: written atomically, read without running code, a corrupt newest one set aside.

A checkpoint ``checkpoints/checkpoint-{iteration:07d}.pt`` is written to a temp file
``.checkpoint-NNNNNNN.pt.<hex>.tmp`` beside it, fsynced and renamed into place
(:mod:`reidcore.atomic`), so a reader sees the old file or the complete new one. A process
killed mid-write (SIGKILL, power loss) leaves that temp file: :func:`cleanup_experiment`
removes such files when an experiment starts or resumes.

Checkpoints are read with :func:`reidcore.safe_load.safe_torch_load` (``weights_only=True``):
a checkpoint holding anything but tensors and plain data (a crafted pickle) is refused with
:class:`~reidcore.safe_load.UnsafeFileError` and nothing in it runs. A truncated or corrupt
newest checkpoint is renamed to ``checkpoint-NNNNNNN.pt.corrupt`` (kept for inspection) and
the newest intact one is used, with a warning naming both.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch

from reidcore.atomic import atomic_path, remove_stale_temp_files
from reidcore.errors import ExperimentError
from reidcore.safe_load import UnreadableFileError, UnsafeFileError, safe_torch_load

__all__ = [
    "CHECKPOINT_DIR", "CORRUPT_SUFFIX", "checkpoint_path", "cleanup_experiment",
    "list_checkpoints", "load_checkpoint_file", "load_latest", "save_checkpoint",
]

CHECKPOINT_DIR = "checkpoints"
#: Suffix given to a checkpoint that cannot be read (renamed aside, never deleted).
CORRUPT_SUFFIX = ".corrupt"
_NAME = re.compile(r"^checkpoint-(\d+)\.pt$")

log = logging.getLogger("reidcore")


def checkpoint_path(exp_dir: Path, iteration: int) -> Path:
    return Path(exp_dir) / CHECKPOINT_DIR / f"checkpoint-{iteration:07d}.pt"


def list_checkpoints(exp_dir: Path) -> list[tuple[int, Path]]:
    """``[(iteration, path), ...]`` of ``exp_dir/checkpoints/``, oldest first (``.corrupt`` excluded)."""
    folder = Path(exp_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def save_checkpoint(exp_dir: Path, iteration: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``state`` as ``checkpoints/checkpoint-{iteration:07d}.pt`` and keep the last ``keep``.

    ``state`` must hold only what :func:`~reidcore.safe_load.safe_torch_load` reads back:
    tensors, numbers, strings, ``None``, lists/tuples/dicts of them, NumPy arrays.

    Raises:
        AtomicWriteError: no space left, read-only file system or no permission; the
            message names the checkpoint. The previous checkpoints are left as they were.
    """
    path = checkpoint_path(exp_dir, iteration)
    with atomic_path(path) as tmp:
        # unbuffered: a failing write (ENOSPC) raises OSError here rather than torch's
        # "[enforce fail at inline_container.cc]" RuntimeError after a buffered flush
        with open(tmp, "wb", buffering=0) as f:
            torch.save(state, f)
    for _it, old in list_checkpoints(exp_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint_file(path: Path, map_location: str | torch.device = "cpu",
                         what: str = "checkpoint") -> dict[str, Any]:
    """One checkpoint file's state dict, read with ``weights_only=True``.

    Raises:
        UnsafeFileError: the file holds objects other than tensors and plain data (named).
        UnreadableFileError: the file is truncated or corrupt (named).
        ExperimentError: the file holds something other than a dict.
    """
    state = safe_torch_load(path, what=what, map_location=map_location)
    if not isinstance(state, dict):
        raise ExperimentError(f"{what} {path} holds a {type(state).__name__}, not a checkpoint "
                              "dict")
    return state


def _set_aside(path: Path) -> Path | None:
    """Rename ``path`` to ``path.corrupt`` (``.corrupt-2`` ... when taken); None when impossible."""
    target = path.with_name(path.name + CORRUPT_SUFFIX)
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}{CORRUPT_SUFFIX}-{n}")
    try:
        path.rename(target)
    except OSError as exc:
        log.warning("could not rename the corrupt checkpoint %s aside: %s", path, exc)
        return None
    return target


def load_latest(exp_dir: Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The newest readable checkpoint's state, or None when the experiment has none.

    A truncated or corrupt newer checkpoint is renamed to ``NAME.corrupt`` and an older
    intact one is used; a warning names both. Nothing is renamed when no checkpoint is
    intact (the error names them all).

    Raises:
        UnsafeFileError: a checkpoint holds objects other than tensors and plain data
            (nothing in it was executed; no other checkpoint is tried).
        ExperimentError: no checkpoint can be read (every file is named).
    """
    found = list_checkpoints(exp_dir)
    if not found:
        return None
    bad: list[tuple[Path, UnreadableFileError]] = []
    for _it, path in reversed(found):
        try:
            state = load_checkpoint_file(path, map_location)
        except UnsafeFileError:
            raise
        except FileNotFoundError:  # renamed aside by another rank, or pruned meanwhile
            continue
        except UnreadableFileError as exc:
            bad.append((path, exc))
            continue
        for corrupt, exc in bad:
            aside = _set_aside(corrupt)
            log.warning("%s; renamed it to %s and resumed from the intact %s", exc,
                        aside.name if aside else "(left in place)", path)
        return state
    if not bad:  # every file vanished while we read
        return None
    if len(bad) == 1:
        raise ExperimentError(str(bad[0][1]))
    raise ExperimentError("no checkpoint of the experiment can be read: "
                          + "; ".join(str(exc) for _p, exc in bad))


def cleanup_experiment(exp_dir: Path) -> list[Path]:
    """Remove temp files that killed atomic writes left anywhere under ``exp_dir``.

    Only names of :mod:`reidcore.atomic`'s pattern (``.NAME.<8 hex>.tmp``) are removed, e.g.
    ``checkpoints/.checkpoint-0000100.pt.1a2b3c4d.tmp`` after a SIGKILL during the write;
    each removal is logged. Call it once when an experiment starts or resumes, before any
    writer of this experiment runs (under DDP: on rank 0 only).

    Returns:
        The removed paths.
    """
    removed = remove_stale_temp_files(exp_dir, recursive=True)
    for p in removed:
        log.info("removed %s, left by an interrupted write", p)
    return removed
