"""Reading ``.pt``/``.pth`` files a user hands us without running code from them.

``torch.load(weights_only=False)`` unpickles arbitrary Python objects: a file holding an
object whose ``__reduce__`` returns ``(os.system, ("...",))`` runs that command while it is
read. Every file reidcore reads with torch (checkpoints, ``--init-checkpoint``,
``--pretrained PATH``, SAN models) goes through :func:`safe_torch_load`, which uses
PyTorch's restricted unpickler (``weights_only=True``): tensors, ``torch.Size``, dtypes,
``dict``/``OrderedDict``/``list``/``tuple``/``set``, ``str``, ``bytes``, numbers, ``None``,
plus NumPy arrays and scalars of numeric and boolean dtypes (RNG states; with torch >= 2.5),
nothing else.

A file holding anything else raises :class:`UnsafeFileError` naming the file and the
refused Python global; nothing from it is executed. A file that is not a readable torch
file (truncated, corrupt, empty) raises :class:`UnreadableFileError` naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from pathlib import Path
from typing import Any

from reidcore.errors import ReidError

__all__ = ["UnreadableFileError", "UnsafeFileError", "safe_torch_load"]

_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_ACCESS_ERRORS = (errno.EACCES, errno.EPERM, errno.EIO, errno.ENOENT)


class UnsafeFileError(ReidError):
    """A torch file holds pickled objects other than tensors and plain data.

    Loading it with ``weights_only=False`` could run arbitrary code, so it is refused.
    """


class UnreadableFileError(ReidError):
    """A torch file is truncated, corrupt or not a torch file at all."""


def _numpy_globals() -> list:
    """The NumPy callables and classes a pickled ndarray or NumPy scalar needs."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    names = ("Bool", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
             "Float16", "Float32", "Float64", "LongDouble", "Complex64", "Complex128")
    classes = getattr(np, "dtypes", None)  # NumPy >= 1.25 pickles dtypes by their class
    dtypes = [getattr(classes, f"{n}DType") for n in names if hasattr(classes, f"{n}DType")]
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype, *dtypes]


def safe_torch_load(path: str | os.PathLike, *, what: str = "file",
                    map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``, also accepting NumPy arrays and scalars.

    Args:
        path: the file to read.
        what: what the file is, for messages (``"checkpoint"``, ``"--init-checkpoint"``).
        map_location: as :func:`torch.load` (default: tensors on the CPU).

    Returns:
        The unpickled object (tensors keep their dtypes and shapes).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeFileError: the file holds another Python object (the message names the file
            and the refused global, e.g. ``posix.system``); nothing of it was executed.
        UnreadableFileError: truncated, corrupt or not a torch file (the file is named).
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    try:
        with allow(_numpy_globals()) if allow else contextlib.nullcontext():
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = _GLOBAL.search(str(exc))
        if found:
            raise UnsafeFileError(
                f"refusing to load {what} {path}: it holds the Python object "
                f"{found.group(1)}, not only tensors and plain data, and unpickling it could "
                "run arbitrary code. Re-save it (from a trusted copy) with only tensors, "
                "numbers, strings, lists and dicts"
            ) from None
        raise UnreadableFileError(
            f"cannot read {what} {path}: not a PyTorch file that holds only tensors and plain "
            f"data ({_first_line(exc)})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError,
            AttributeError, TypeError, ImportError) as exc:
        if isinstance(exc, OSError) and exc.errno in _ACCESS_ERRORS:
            raise  # the file may be intact: not ours to call corrupt
        raise UnreadableFileError(
            f"cannot read {what} {path}: truncated or corrupt ({type(exc).__name__}: "
            f"{_first_line(exc) or 'unexpected end of file'})"
        ) from exc


def _first_line(exc: BaseException) -> str:
    """The most specific line of a torch error (its ``WeightsUnpickler error`` detail)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if "WeightsUnpickler error" in ln:
            return " ".join(lines[i:i + 2])
    return lines[0] if lines else ""
