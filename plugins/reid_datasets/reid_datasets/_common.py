"""Helpers shared by the readers: root checks, Market-1501 file names, identity mapping,
and the parsed-index cache (:func:`cached_split`)."""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from reidcore.atomic import atomic_write_json
from reidcore.data import Sample, Split, verify
from reidcore.errors import DatasetError

#: Image file extensions the readers index (compared case-insensitively).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

#: A Market-1501 file name: ``PPPP_cCsS_FFFFFF_BB.jpg``; pid ``-1`` is junk, ``0000`` a distractor.
MARKET_NAME = re.compile(r"^(-1|\d+)_c(\d+)s\d+_\d+_\d+\.(?:jpe?g|png)$", re.IGNORECASE)

#: The camera part of a Market/Duke-style file name (``0002_c3s1_...`` or ``0002_c3_f...``).
CAMERA_IN_NAME = re.compile(r"^-?\d+_c(\d+)")

_INT = re.compile(r"^[+-]?\d+$")


def require_root(root: str | os.PathLike | None, dataset: str, layout: str) -> Path:
    """Check that ``root`` is an existing folder.

    Args:
        root: the ``--data`` folder, or ``None`` when the user gave none.
        dataset: the dataset name, for the message.
        layout: one sentence describing the expected layout, appended to messages.

    Returns:
        ``root`` as a :class:`~pathlib.Path` (``~`` expanded).

    Raises:
        DatasetError: ``root`` is ``None``, missing, or not a folder.
    """
    if root is None:
        raise DatasetError(
            f"Dataset {dataset!r} needs a data folder: pass --data DIR (Python: "
            f"load_dataset({dataset!r}, root=DIR)). Expected layout: {layout}"
        )
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetError(f"Data folder {path} does not exist. Expected layout: {layout}")
    if not path.is_dir():
        raise DatasetError(f"Data path {path} is not a folder. Expected layout: {layout}")
    return path


def is_image(name: str) -> bool:
    """Whether a file name has one of :data:`IMAGE_EXTENSIONS`."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def parse_market_name(name: str) -> tuple[int, int] | None:
    """``(pid, camid)`` of a Market-1501 file name, or ``None`` if it does not match.

    ``camid`` is 0-based (``c1`` -> 0). Names with camera ``c0`` do not match.
    """
    match = MARKET_NAME.match(name)
    if match is None or int(match.group(2)) < 1:
        return None
    return int(match.group(1)), int(match.group(2)) - 1


def camid_from_name(name: str) -> int:
    """0-based camera of a Market/Duke-style file name (``_cN`` -> N-1), else 0."""
    match = CAMERA_IN_NAME.match(name)
    if match is None or int(match.group(1)) < 1:
        return 0
    return int(match.group(1)) - 1


def identity_map(identities: Iterable[str]) -> dict[str, int]:
    """Map identity strings to ints deterministically.

    A string that parses as an int keeps its value (``"-1"`` stays junk, ``"0"`` a
    distractor). The other strings, sorted, get ``m+1 .. m+n`` where ``m`` is the
    largest int identity (0 when there is none), so all-string identities become
    ``1..n``.

    Returns:
        ``{identity string: pid}`` for every distinct input string.
    """
    unique = set(identities)
    ints = {s: int(s) for s in unique if _INT.match(s)}
    names = sorted(s for s in unique if s not in ints)
    offset = max([0, *ints.values()])
    mapping = dict(ints)
    mapping.update({s: offset + i for i, s in enumerate(names, start=1)})
    return mapping


# ------------------------------------------------------------------ parsed-index cache

#: Environment variable naming the cache folder (shared with the synthetic dataset and the
#: core's image checks, :mod:`reidcore.data.verify`).
CACHE_ENV = verify.CACHE_ENV
#: Bump when the stored index format or a reader's parsing changes. (An index without the
#: ``skipped`` record, written before skipped files were counted, is rebuilt: a KeyError.)
INDEX_VERSION = 2
#: A key path modified less than this long before the index was written may have changed
#: within the file system's timestamp granularity: such an index is not trusted (as git does).
RACY_NS = 2_000_000_000

log = logging.getLogger("reidcore")


_SKIPPED: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("skipped", default=None)
#: How many skipped file names the load summary shows.
SKIPPED_SHOWN = 3


def note_skipped(paths: Iterable[str | os.PathLike]) -> None:
    """Record files a reader ignored (names not of the dataset's pattern, e.g. ``Thumbs.db``).

    Within :func:`cached_split`'s ``build`` the files are counted in the load summary (and
    stored with the cached index); elsewhere this does nothing.
    """
    found = _SKIPPED.get()
    if found is not None:
        found.extend(str(p) for p in paths)


def _with_skipped(summary: str, skipped: dict) -> str:
    n = skipped.get("count", 0)
    if not n:
        return summary
    names = ", ".join(Path(p).name for p in skipped.get("examples", []))
    return f"{summary} | skipped {n} file{'s' if n > 1 else ''} not named like the dataset's images (e.g. {names})"


def _build_counting_skipped(build: Callable[[], Split]) -> tuple[Split, dict]:
    token = _SKIPPED.set([])
    try:
        split = build()
        found = _SKIPPED.get() or []
    finally:
        _SKIPPED.reset(token)
    return split, {"count": len(found), "examples": found[:SKIPPED_SHOWN]}


def cache_root() -> Path:
    """``$REIDCORE_CACHE`` if set, else ``~/.cache/reidcore`` (the core's cache folder)."""
    return verify.cache_root()


def stat_key(paths: Iterable[Path]) -> list[list]:
    """``[path, mtime_ns, size, inode]`` per path (``[path, None, None, None]`` if missing).

    A folder's mtime changes when an entry is added, removed or renamed in it, so the
    key of a reader is the folders it lists and the files it parses.
    """
    key = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            key.append([str(path), None, None, None])
            continue
        size = None if stat.S_ISDIR(st.st_mode) else st.st_size
        key.append([str(path), st.st_mtime_ns, size, st.st_ino])
    return key


def _index_file(dataset: str, root: Path, options: dict) -> Path:
    blob = json.dumps({"root": str(root.resolve()), "options": options}, sort_keys=True)
    digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return cache_root() / "index" / f"{dataset}-{digest}.json"


def _encode(samples: Iterable[Sample], prefix: str) -> list[list]:
    """Rows ``[path, pid, camid, extras]``; a path under ``prefix`` is stored as NUL + the rest
    (NUL cannot occur in a real path), which halves the index of a large dataset."""
    n = len(prefix)
    return [
        [
            "\0" + s.path[n:] if s.path.startswith(prefix) else s.path,
            s.pid,
            s.camid,
            dict(s.extras),
        ]
        for s in samples
    ]


def _decode(rows: list[list], prefix: str) -> list[Sample]:
    return [
        Sample(prefix + path[1:] if path[:1] == "\0" else path, int(pid), int(camid), extras)
        for path, pid, camid, extras in rows
    ]


def cached_split(
    dataset: str,
    root: Path,
    key_paths: Callable[[], Iterable[Path]],
    build: Callable[[], Split],
    *,
    options: dict | None = None,
    cache: bool = True,
) -> Split:
    """Read a split through a JSON index cached in ``cache_root()/index/``.

    The index file is named after ``dataset`` and a hash of the resolved ``root`` and
    ``options`` (the reader's keyword arguments that change the result). It is used
    when its :func:`stat_key` of ``key_paths()`` equals the current one and every key
    path was last modified at least :data:`RACY_NS` before the index was written;
    otherwise ``build()`` runs and its result is written atomically (temp file +
    rename). An unreadable, corrupt or unwritable cache is ignored (never an error).
    Sample ``extras`` must be JSON-serialisable (ints, strings). Logs the split's
    one-line summary, with the number of files the reader skipped (:func:`note_skipped`).

    Args:
        dataset: the reader's name (also the index file prefix).
        root: the data folder.
        key_paths: returns the folders and files whose change invalidates the index;
            called before ``build`` (a missing path is part of the key).
        build: parses the data; raises :class:`DatasetError` with the layout on failure.
        options: JSON-serialisable reader options.
        cache: ``False`` to always call ``build`` and write nothing.
    """
    options = options or {}
    if not cache:
        split, skipped = _build_counting_skipped(build)
        log.info("%s", _with_skipped(split.summary(), skipped))
        return split
    file = _index_file(dataset, root, options)
    prefix = str(root) + os.sep
    key = stat_key(key_paths())
    try:
        stored = json.loads(file.read_text())
        newest = max((k[1] for k in key if k[1] is not None), default=0)
        if (
            stored["version"] == INDEX_VERSION
            and stored["key"] == key
            and newest < stored["written_ns"] - RACY_NS
        ):
            parts = (_decode(stored[p], prefix) for p in PART_NAMES)
            split = Split(stored["name"], *parts)
            log.info("%s (index cached in %s)", _with_skipped(split.summary(), stored["skipped"]),
                     file)
            return split
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        pass
    split, skipped = _build_counting_skipped(build)
    record = {
        "version": INDEX_VERSION,
        "dataset": dataset,
        "root": str(root),
        "options": options,
        "key": key,
        "written_ns": time.time_ns(),
        "name": split.name,
        "skipped": skipped,
        **{p: _encode(getattr(split, p), prefix) for p in PART_NAMES},
    }
    try:
        atomic_write_json(file, record, indent=None)
    except (OSError, TypeError, ValueError) as exc:
        log.debug("not caching the %s index in %s: %s", dataset, file, exc)
    log.info("%s", _with_skipped(split.summary(), skipped))
    return split


PART_NAMES = ("train", "query", "gallery")


def publish_folder(tmp: Path, out: Path) -> None:
    """Move a fully written temp folder ``tmp`` to ``out`` in one rename.

    A concurrent writer that renamed its own copy first wins: ``out`` then already exists
    and ``tmp`` is left for the caller to delete.

    Raises:
        OSError: the rename failed and ``out`` is not a folder.
    """
    try:
        os.rename(tmp, out)
    except OSError:
        if not Path(out).is_dir():
            raise
