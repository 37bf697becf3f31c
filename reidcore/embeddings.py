"""Embedding files: HDF5 with triplet-reid's layout, read and written with h5py.

A file holds the datasets

* ``embs``: ``(N, D)`` float32, one embedding per image (the aggregated one when
  test-time augmentation was used);
* ``pids``, ``camids``: ``(N,)`` int64 person ids and cameras;
* ``paths``: ``(N,)`` variable-length UTF-8 strings, the image paths;
* ``embs_augmented`` (optional): ``(N, A, D)`` float32, one embedding per augmentation;
* ``tracklets`` (optional): ``(N,)`` int64 tracklet ids of video frames (pooled before ranking);

and free-form metadata in the file's HDF5 attributes. triplet-reid's ``embed.py``
files hold only ``embs`` (and maybe ``embs_augmented``); they read with the other
fields set to ``None``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import h5py
import numpy as np

from reidcore.atomic import atomic_path, atomic_write_text
from reidcore.errors import ReidError

__all__ = [
    "Embeddings",
    "EmbeddingsError",
    "EmbeddingsNotFoundError",
    "read_embeddings",
    "write_embeddings",
]


class EmbeddingsError(ReidError):
    """An embeddings file is unreadable, not HDF5, or lacks the ``embs`` dataset."""


class EmbeddingsNotFoundError(EmbeddingsError, FileNotFoundError):
    """An embeddings file does not exist."""


def _array_eq(a: Any, b: Any) -> bool:
    return np.array_equal(a, b) if a is not None and b is not None else a is b


@attrs.frozen
class Embeddings:
    """The content of an embeddings file.

    Attributes:
        embs: ``(N, D)`` float32.
        pids, camids: ``(N,)`` int64, or ``None`` when the file has no such dataset.
        paths: ``N`` image paths, or ``None`` when the file has no ``paths``.
        augmented: ``(N, A, D)`` float32 per-augmentation embeddings, or ``None``.
        attrs: the file's HDF5 attributes (strings as ``str``, scalars as Python
            numbers, arrays as numpy arrays); not compared by ``==``. Files written by
            ``run``/``embed`` record the model they came from: ``checkpoint_path``,
            ``checkpoint_iteration`` and ``model_sha256`` (see :func:`checkpoint_of`).
        tracklets: ``(N,)`` int64 tracklet ids (video datasets), or ``None``.
    """

    embs: np.ndarray = attrs.field(eq=attrs.cmp_using(eq=_array_eq))
    pids: np.ndarray | None = attrs.field(default=None, eq=attrs.cmp_using(eq=_array_eq))
    camids: np.ndarray | None = attrs.field(default=None, eq=attrs.cmp_using(eq=_array_eq))
    paths: list[str] | None = None
    augmented: np.ndarray | None = attrs.field(default=None, eq=attrs.cmp_using(eq=_array_eq))
    tracklets: np.ndarray | None = attrs.field(default=None, eq=attrs.cmp_using(eq=_array_eq))
    attrs: dict[str, Any] = attrs.field(factory=dict, eq=False)

    def __len__(self) -> int:
        return len(self.embs)


def _check_length(name: str, x: Any, n: int) -> None:
    if len(x) != n:
        raise ValueError(f"{name} has {len(x)} entries but embs has {n} rows")


def write_embeddings(
    path: str | os.PathLike[str],
    embs: np.ndarray,
    pids: np.ndarray,
    camids: np.ndarray,
    paths: Sequence[str],
    augmented: np.ndarray | None = None,
    attrs: Mapping[str, Any] | None = None,
    tracklets: np.ndarray | None = None,
) -> None:
    """Write an embeddings file atomically.

    The data go to a temporary ``<name>.tmp-<random hex>`` in the same folder, which
    is flushed to disk and then renamed over ``path`` (:func:`os.replace`): a reader
    sees the old file or the complete new one, and a failure leaves an existing file
    untouched and removes the temporary.

    Args:
        path: destination ``.h5`` file; its folder must exist.
        embs: ``(N, D)`` embeddings, stored as float32.
        pids, camids: ``(N,)`` integers, stored as int64.
        paths: ``N`` image paths, stored as variable-length UTF-8 strings.
        augmented: optional ``(N, A, D)`` per-augmentation embeddings (``embs_augmented``).
        attrs: metadata stored as HDF5 file attributes; values must be strings, numbers,
            booleans or numeric arrays (or lists of strings).
        tracklets: optional ``(N,)`` integer tracklet ids (video frames).

    Raises:
        ValueError: shapes that disagree with ``embs`` (the message names the array).
        TypeError: an ``attrs`` value HDF5 cannot store (the message names the key).
        EmbeddingsError: the destination folder does not exist.
        OSError: writing failed (disk full, permissions, ...).
    """
    path = Path(path)
    embs = np.asarray(embs, dtype=np.float32)
    if embs.ndim != 2:
        raise ValueError(f"embs must be a 2-D (N, D) array, got shape {embs.shape}")
    n = len(embs)
    pids = np.asarray(pids, dtype=np.int64)
    camids = np.asarray(camids, dtype=np.int64)
    for name, arr in (("pids", pids), ("camids", camids)):
        if arr.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
        _check_length(name, arr, n)
    paths = [os.fspath(p) for p in paths]
    _check_length("paths", paths, n)
    if augmented is not None:
        augmented = np.asarray(augmented, dtype=np.float32)
        if augmented.ndim != 3 or augmented.shape[0] != n or augmented.shape[2] != embs.shape[1]:
            raise ValueError(
                f"augmented must have shape (N, A, D) = ({n}, A, {embs.shape[1]}) to match "
                f"embs {embs.shape}, got {augmented.shape}"
            )
    if tracklets is not None:
        tracklets = np.asarray(tracklets, dtype=np.int64)
        _check_length("tracklets", tracklets, n)
    if not path.parent.is_dir():
        raise EmbeddingsError(
            f"Cannot write embeddings file {str(path)!r}: folder {str(path.parent)!r} "
            f"does not exist"
        )

    with atomic_path(path) as tmp, h5py.File(tmp, "x") as f:
        f.create_dataset("embs", data=embs)
        f.create_dataset("pids", data=pids)
        f.create_dataset("camids", data=camids)
        f.create_dataset("paths", data=paths, dtype=h5py.string_dtype("utf-8"),
                         shape=(n,))
        if augmented is not None:
            f.create_dataset("embs_augmented", data=augmented)
        if tracklets is not None:
            f.create_dataset("tracklets", data=tracklets)
        for key, value in (attrs or {}).items():
            try:
                f.attrs[key] = value
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"attrs[{key!r}] = {value!r} cannot be stored as an HDF5 attribute "
                    f"of {str(path)!r}: {exc}"
                ) from exc


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
        return [v.decode("utf-8") if isinstance(v, bytes) else v for v in value.tolist()]
    return value


def read_embeddings(path: str | os.PathLike[str]) -> Embeddings:
    """Read an embeddings file written by :func:`write_embeddings` or triplet-reid.

    Args:
        path: the ``.h5`` file.

    Returns:
        :class:`Embeddings`; ``pids``, ``camids``, ``paths`` and ``augmented`` are
        ``None`` when the file lacks those datasets.

    Raises:
        EmbeddingsNotFoundError: ``path`` does not exist (also a ``FileNotFoundError``).
        EmbeddingsError: not an HDF5 file, no ``embs`` dataset (the message lists the
            datasets the file has), or datasets whose lengths disagree with ``embs``.
    """
    path = Path(path)
    if not path.exists():
        raise EmbeddingsNotFoundError(f"Embeddings file {str(path)!r} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise EmbeddingsError(
            f"Cannot read embeddings file {str(path)!r} as HDF5: {exc}"
        ) from exc
    with f:
        if "embs" not in f:
            have = ", ".join(sorted(f.keys())) or "(none)"
            raise EmbeddingsError(
                f"Embeddings file {str(path)!r} has no 'embs' dataset; its datasets: {have}"
            )
        embs = np.asarray(f["embs"][()], dtype=np.float32)
        if embs.ndim != 2:
            raise EmbeddingsError(
                f"'embs' in {str(path)!r} must be 2-D (N, D), got shape {embs.shape}"
            )
        n = len(embs)

        def optional(name: str, dtype: Any) -> np.ndarray | None:
            if name not in f:
                return None
            a = np.asarray(f[name][()], dtype=dtype)
            if a.shape[:1] != (n,):
                raise EmbeddingsError(
                    f"{name!r} in {str(path)!r} has shape {a.shape} but 'embs' has {n} rows"
                )
            return a

        pids = optional("pids", np.int64)
        camids = optional("camids", np.int64)
        augmented = optional("embs_augmented", np.float32)
        tracklets = optional("tracklets", np.int64)
        paths = None
        if "paths" in f:
            paths = [str(p) for p in f["paths"].asstr()[()].tolist()]
            if len(paths) != n:
                raise EmbeddingsError(
                    f"'paths' in {str(path)!r} has {len(paths)} entries but 'embs' has "
                    f"{n} rows"
                )
        file_attrs = {key: _plain(value) for key, value in f.attrs.items()}
    return Embeddings(embs=embs, pids=pids, camids=camids, paths=paths, augmented=augmented,
                      attrs=file_attrs, tracklets=tracklets)


#: HDF5 attributes naming the model an embeddings file came from
CHECKPOINT_ATTRS = ("checkpoint_path", "checkpoint_iteration", "model_sha256")


def checkpoint_of(e: Embeddings) -> dict[str, Any] | None:
    """``{"checkpoint_path", "checkpoint_iteration", "model_sha256"}`` recorded in ``e``'s
    attributes, or None for files that do not record it (triplet-reid's, older ones)."""
    if "model_sha256" not in e.attrs:
        return None
    return {k: e.attrs.get(k) for k in CHECKPOINT_ATTRS}


def check_same_checkpoint(query: Embeddings, gallery: Embeddings, q_name: str, g_name: str) -> None:
    """Refuse query and gallery embeddings computed by different models.

    Raises:
        EmbeddingsError: both files record their model and the records differ (the message
            names both checkpoints and tells how to re-embed).
    """
    q, g = checkpoint_of(query), checkpoint_of(gallery)
    if q is None or g is None or q["model_sha256"] == g["model_sha256"]:
        return
    raise EmbeddingsError(
        f"{q_name} and {g_name} come from different models: {q['checkpoint_path']} "
        f"(iteration {q['checkpoint_iteration']}) and {g['checkpoint_path']} (iteration "
        f"{g['checkpoint_iteration']}); embed both parts again with the same experiment "
        f"(python -m reidcore embed --experiment DIR --part query|gallery)")


def write_embeddings_csv(path: str | os.PathLike[str] | None, paths: Sequence[str],
                         embs: np.ndarray) -> None:
    """triplet-reid's ``trinet_embed.py`` output: one ``path,f1,f2,...`` line per image.

    ``path`` None writes to standard output; a file is written atomically (temp, rename).

    Raises:
        EmbeddingsError: ``paths`` and ``embs`` (N, D) differ in length.
    """
    import csv
    import io
    import sys

    embs = np.asarray(embs, dtype=np.float32)
    if embs.ndim != 2 or len(paths) != len(embs):
        raise EmbeddingsError(f"{len(paths)} paths but embeddings of shape {embs.shape}")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for p, row in zip(paths, embs, strict=True):
        writer.writerow([p, *(f"{v:.7g}" for v in row)])
    if path is None:
        sys.stdout.write(buf.getvalue())
        return
    atomic_write_text(path, buf.getvalue())
