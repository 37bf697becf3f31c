"""Up-front checks of a dataset before training: every image readable, the protocol has queries.

:func:`verify_split` runs before the trainer starts, so that a corrupt image or a dataset the
evaluation protocol cannot score fails at once, with the culprits named, instead of as a
DataLoader worker traceback whenever the image happens to be sampled, or after training.

Checking an image (:func:`check_image`) reads its header (format, size) with Pillow and, for
JPEG, decodes it at 1/8 scale (``Image.draft``: all of the entropy-coded data is read, so a
truncated or corrupt file fails, at a fraction of a full decode's cost); other formats are
checked with ``Image.verify`` (PNG: every chunk and its CRC, without decompressing).

Files that passed are cached by ``(size, mtime_ns)`` in ``$REIDCORE_CACHE/verified/`` (default
``~/.cache/reidcore``; the folder of the parsed-index cache), so a second run checks only
new or changed files. Bad files are never cached: they are checked again on every run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reidcore.data.records import Split
from reidcore.errors import DatasetError

__all__ = ["MAX_LISTED", "cache_root", "check_image", "find_bad_images", "verify_split"]

log = logging.getLogger("reidcore")

#: Environment variable naming the cache folder (shared with the dataset readers).
CACHE_ENV = "REIDCORE_CACHE"
#: How many bad files an error lists (their total is always given).
MAX_LISTED = 10
#: Bump when :func:`check_image` changes what it accepts.
VERIFY_VERSION = 1
#: A file modified less than this long before it was checked is not cached (its mtime may
#: not change on a second write within the file system's timestamp granularity).
RACY_NS = 2_000_000_000
_PARTS = ("train", "query", "gallery")


def cache_root() -> Path:
    """``$REIDCORE_CACHE`` if set, else ``~/.cache/reidcore``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "reidcore"


def check_image(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be used as an image, or ``None`` when it can.

    Reads the header (format, width × height, both ≥ 1 pixel) and, for JPEG, decodes the
    whole file at 1/8 scale; other formats are checked with ``PIL.Image.verify``.

    Returns:
        ``None``, or a one-line reason (``"file not found"``, ``"cannot decode image
        PATH: ..."``).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            width, height = im.size
            if width < 1 or height < 1:
                return f"cannot decode image {path}: it is {width}x{height} pixels"
            if im.format == "JPEG":
                im.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                im.load()
            else:
                im.verify()
    except FileNotFoundError:
        return f"image file not found: {path}"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError,
            Image.DecompressionBombError) as exc:
        return f"cannot decode image {path}: {exc}"
    return None


def _check_all(paths: Sequence[str]) -> list[str | None]:
    return [check_image(p) for p in paths]


def _stat_key(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _cache_file(paths: Sequence[str]) -> Path:
    folders = sorted({os.path.dirname(p) for p in paths})
    digest = hashlib.sha256(json.dumps(folders).encode()).hexdigest()[:16]
    return cache_root() / "verified" / f"images-{digest}.json"


def _read_cache(file: Path) -> dict[str, list[int]]:
    try:
        stored = json.loads(file.read_text())
        if stored.get("version") == VERIFY_VERSION and isinstance(stored.get("ok"), dict):
            return stored["ok"]
    except (OSError, ValueError, AttributeError):
        pass
    return {}


def find_bad_images(paths: Iterable[str], *, cache: bool = True,
                    workers: int | None = None) -> dict[str, str]:
    """Check every image of ``paths`` (:func:`check_image`), skipping cached good ones.

    Args:
        paths: image files (duplicates are checked once).
        cache: read and update the cache of files that passed (see the module docstring);
            an unreadable or unwritable cache is ignored.
        workers: threads checking files (default ``min(8, CPU count)``).

    Returns:
        ``{path: reason}`` of the bad files, in the order of ``paths``.
    """
    from reidcore.atomic import atomic_write_json

    unique = list(dict.fromkeys(str(p) for p in paths))
    if not unique:
        return {}
    file = _cache_file(unique) if cache else None
    known = _read_cache(file) if file else {}
    keys = {p: _stat_key(p) for p in unique}
    todo = [p for p in unique if keys[p] is None or known.get(p) != keys[p]]
    started = time.monotonic()
    workers = workers or min(8, os.cpu_count() or 1)
    if len(todo) > 64 and workers > 1:  # Pillow releases the GIL while it reads and decodes
        chunks = [todo[i:i + 256] for i in range(0, len(todo), 256)]
        with ThreadPoolExecutor(workers) as pool:
            reasons = [r for chunk in pool.map(_check_all, chunks) for r in chunk]
    else:
        reasons = _check_all(todo)
    bad = {p: r for p, r in zip(todo, reasons, strict=True) if r is not None}
    if todo:
        log.info("checked %d images in %.1f s (%d cached as readable)", len(todo),
                 time.monotonic() - started, len(unique) - len(todo))
    if file is not None and todo:
        limit = time.time_ns() - RACY_NS
        ok = {p: k for p, k in keys.items()
              if p not in bad and k is not None and k[1] < limit}
        if ok != known:
            try:
                atomic_write_json(file, {"version": VERIFY_VERSION, "ok": ok}, indent=None)
            except OSError as exc:
                log.debug("not caching image checks in %s: %s", file, exc)
    return {p: bad[p] for p in unique if p in bad}


def _bad_images_message(split: Split, bad: dict[str, str], total: int) -> str:
    per_part = []
    for part in _PARTS:
        n = sum(1 for s in getattr(split, part) if s.path in bad)
        if n:
            per_part.append(f"{part} {n}")
    listed = list(bad.values())[:MAX_LISTED]
    head = (f"{len(bad)} of {total} images of dataset {split.name!r} cannot be read "
            f"({', '.join(per_part)})")
    more = f"\n  ... and {len(bad) - len(listed)} more" if len(bad) > len(listed) else ""
    return (f"{head}; {'the first ' + str(len(listed)) if len(bad) > len(listed) else 'they are'}:"
            "\n  " + "\n  ".join(listed) + more
            + "\nReplace or remove these files.")


def verify_split(split: Split, excluder: str | None = None, *, images: bool = True,
                 parts: Sequence[str] = _PARTS, cache: bool = True) -> None:
    """Check ``split`` before training: readable images, and queries the protocol can score.

    Args:
        split: the dataset.
        excluder: the evaluation protocol (``--excluder`` name, e.g. ``"market1501"``), or
            ``None`` to skip the query check (e.g. ``train`` without evaluation).
        images: check every image of ``parts`` (:func:`find_bad_images`).
        parts: which parts' images to check.
        cache: use the cache of files that passed.

    Raises:
        DatasetError: some images cannot be read; the message gives their number per part
            and the first :data:`MAX_LISTED` files with the reason.
        EvaluationError: no query can be scored under ``excluder`` (empty query set or
            gallery, one camera only under ``market1501``, no shared identity ...); see
            :func:`reidcore.evaluation.protocols.check_queries`.
        UnknownNameError: unknown ``excluder``.
    """
    if excluder is not None:
        import numpy as np

        from reidcore.evaluation.protocols import check_queries

        video = bool(split.query) and all("tracklet" in s.extras for s in split.query)
        if not video:  # video protocols pool tracklets first; the evaluator checks those
            check_queries(np.array([s.pid for s in split.query], dtype=np.int64),
                          np.array([s.camid for s in split.query], dtype=np.int64),
                          np.array([s.pid for s in split.gallery], dtype=np.int64),
                          np.array([s.camid for s in split.gallery], dtype=np.int64),
                          excluder, where=f"dataset {split.name!r}")
    if images:
        paths = [s.path for part in parts for s in getattr(split, part)]
        bad = find_bad_images(paths, cache=cache)
        if bad:
            raise DatasetError(_bad_images_message(split, bad, len(set(paths))))
