"""Atomic file writes: the one place the project writes a file that must never be half-written.

Every writer goes through :func:`atomic_path`: the data go to a temp file
``.NAME.<random>.tmp`` in the destination's folder, are flushed and fsynced, and the temp file
is renamed over the destination (:func:`os.replace`, atomic on POSIX). A reader sees the old
file or the complete new one; an exception removes the temp file; a kill (SIGKILL, power loss)
can leave the temp file, which :func:`remove_stale_temp_files` deletes at the next start.

New files get the mode a plain ``open(..., "w")`` would give (``0o666`` less the umask), not
``mkstemp``'s ``0o600``.

Disk errors (ENOSPC, EROFS, EACCES, EDQUOT) are re-raised as :class:`AtomicWriteError` whose
one-line message names the destination.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

TEMP_SUFFIX = ".tmp"

_DISK_ERRORS = {
    errno.ENOSPC: "no space left on the device",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EDQUOT: "disk quota exceeded",
}


class AtomicWriteError(OSError):
    """Writing ``path`` failed for a reason the user must fix (disk full, read-only, access).

    ``str(exc)`` is one line naming the path and the reason; ``errno`` is the original one.
    """


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_name(path: Path) -> Path:
    """The temp file used while writing ``path``: ``.NAME.<8 hex>.tmp`` beside it."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def _disk_error(path: Path, exc: OSError) -> OSError:
    reason = _DISK_ERRORS.get(exc.errno or -1)
    if reason is None:
        return exc
    err = AtomicWriteError(exc.errno, f"cannot write {path}: {reason}")
    return err


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success rename it over ``path``.

    For writers that want a file name (``h5py.File(tmp, "w")``, ``torch.save(obj, tmp)``,
    ``PIL.Image.save(tmp)``). Parent folders are created.

    Raises:
        AtomicWriteError: no space, read-only file system or no permission (names ``path``).
        OSError: any other failure; ``path`` is left as it was and the temp file removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _disk_error(path, exc) from exc
    tmp = temp_name(path)
    try:
        yield tmp
        if fsync and tmp.exists():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        err = _disk_error(path, exc)
        if err is exc:
            raise
        raise err from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", *,
                encoding: str | None = "utf-8", newline: str | None = None) -> Iterator[IO[Any]]:
    """``open(tmp, mode)`` on a temp file beside ``path``, renamed over ``path`` on success.

    ``mode`` is ``"w"`` (text, ``encoding``) or ``"wb"``. Errors as :func:`atomic_path`.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": newline}
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | Callable[[IO[bytes]], Any]) -> None:
    """Write ``data`` (bytes, or a function called with the open binary file) atomically."""
    with atomic_open(path, "wb") as f:
        if callable(data):
            data(f)
        else:
            f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` as UTF-8 atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2) -> None:
    """Write ``data`` as JSON (a trailing newline) atomically."""
    atomic_write_text(path, json.dumps(data, indent=indent) + "\n")


def is_temp_file(path: Path) -> bool:
    """True for a name this module gives its temp files (``.NAME.<8 hex>.tmp``)."""
    name = path.name
    if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
        return False
    stem = name[1:-len(TEMP_SUFFIX)]
    base, _, token = stem.rpartition(".")
    return bool(base) and len(token) == 8 and all(c in "0123456789abcdef" for c in token)


def remove_stale_temp_files(folder: str | os.PathLike[str], *, recursive: bool = True) -> list[Path]:
    """Delete temp files left in ``folder`` by writes that were killed; return what was removed.

    Only names of this module's pattern are touched; a missing folder removes nothing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    files = folder.rglob(".*" + TEMP_SUFFIX) if recursive else folder.glob(".*" + TEMP_SUFFIX)
    removed = []
    for p in files:
        if p.is_file() and is_temp_file(p):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
