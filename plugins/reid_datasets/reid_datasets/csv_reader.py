"""CSV-list reader in the format of triplet-reid (Hermans et al.).

Layout::

    DIR/train.csv      lines "identity,relative/path.jpg[,camid]"
    DIR/query.csv
    DIR/gallery.csv
    DIR/<relative/path.jpg> ...  the images (or under ``image_root``)

Each line is ``identity,path`` with an optional third column ``camid`` (a 0-based
int; 0 when absent). ``identity`` is any string: one that parses as an int keeps
its value (``-1`` is junk, ``0`` a distractor); the other strings, sorted across
the three files, get the ids after the largest int id (``1..n`` when none is an
int). Blank lines, lines starting with ``#`` and a header line such as
``identity,path[,camid]`` are skipped. Junk lines (identity ``-1``) are dropped
from the training part. Every listed image must exist.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from reid_datasets._common import cached_split, identity_map, require_root
from reidcore.data import Sample, Split
from reidcore.errors import DatasetError

LAYOUT = (
    "DIR/train.csv, DIR/query.csv and DIR/gallery.csv (or the files given as train_csv=, "
    "query_csv=, gallery_csv=) with lines 'identity,relative/path.jpg[,camid]', the paths "
    "relative to DIR (or to image_root=)."
)
_HEADER_IDS = {"identity", "id", "pid", "person", "person_id", "label"}
_HEADER_PATHS = {"path", "image", "img", "file", "filename", "image_path"}

_Row = tuple[str, str, int, str]  # identity, path, camid, "file:line"


def _resolve(path: str | os.PathLike, base: Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else base / path


def _is_header(fields: list[str]) -> bool:
    return fields[0].lower() in _HEADER_IDS and fields[1].lower() in _HEADER_PATHS


def parse_csv(csv_path: Path) -> list[_Row]:
    """Parse one list file.

    Returns:
        ``(identity, path, camid, "file:line")`` per image line, in file order.

    Raises:
        DatasetError: the file is missing or lists no image, or a line is malformed
            (the message names the file and line).
    """
    if not csv_path.is_file():
        raise DatasetError(f"Missing list file {csv_path}. Expected layout: {LAYOUT}")
    rows: list[_Row] = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        for lineno, fields in enumerate(csv.reader(f), start=1):
            fields = [x.strip() for x in fields]
            if not fields or not any(fields) or fields[0].startswith("#"):
                continue
            where = f"{csv_path}:{lineno}"
            if not rows and len(fields) >= 2 and _is_header(fields):
                continue
            if len(fields) not in (2, 3) or not fields[0] or not fields[1]:
                raise DatasetError(
                    f"{where}: malformed line {','.join(fields)!r}; expected "
                    "'identity,relative/path.jpg' or 'identity,relative/path.jpg,camid'"
                )
            camid = 0
            if len(fields) == 3:
                try:
                    camid = int(fields[2])
                except ValueError:
                    camid = -1
                if camid < 0:
                    raise DatasetError(
                        f"{where}: camid {fields[2]!r} is not a non-negative int; expected "
                        "'identity,relative/path.jpg,camid' with a 0-based camera index"
                    )
            rows.append((fields[0], fields[1], camid, where))
    if not rows:
        raise DatasetError(f"List file {csv_path} lists no image. Expected layout: {LAYOUT}")
    return rows


def read_csv(
    root: str | os.PathLike | None,
    *,
    train_csv: str | os.PathLike = "train.csv",
    query_csv: str | os.PathLike = "query.csv",
    gallery_csv: str | os.PathLike = "gallery.csv",
    image_root: str | os.PathLike | None = None,
    name: str = "csv",
    cache: bool = True,
) -> Split:
    """Read a dataset described by three CSV lists.

    Args:
        root: the data folder; relative CSV paths and ``image_root`` are resolved against it.
        train_csv, query_csv, gallery_csv: the list files (default ``train.csv``,
            ``query.csv``, ``gallery.csv`` in ``root``).
        image_root: the folder that relative image paths are relative to (default ``root``).
        name: the :attr:`Split.name`.
        cache: use and write the parsed-index cache, keyed by the list files and the
            folders of the listed images (``$REIDCORE_CACHE/index/``).

    Returns:
        A :class:`~reidcore.data.Split` in file order; ``path`` is absolute when
        ``root`` is; identity strings mapped as described in the module docstring.

    Raises:
        DatasetError: ``root`` is ``None`` or missing, a list file is missing or
            empty, a line is malformed, or a listed image does not exist.
    """
    base = require_root(root, "csv", LAYOUT)
    images = _resolve(image_root, base) if image_root is not None else base
    files = [_resolve(f, base) for f in (train_csv, query_csv, gallery_csv)]

    def build() -> Split:
        if not images.is_dir():
            raise DatasetError(f"Image folder {images} does not exist. Expected layout: {LAYOUT}")
        lists = {
            part: parse_csv(f) for part, f in zip(("train", "query", "gallery"), files, strict=True)
        }
        pids = identity_map(row[0] for rows in lists.values() for row in rows)
        parts: dict[str, list[Sample]] = {}
        for part, rows in lists.items():
            samples = []
            for identity, rel, camid, where in rows:
                path = _resolve(rel, images)
                if not path.is_file():
                    raise DatasetError(f"{where}: listed image {path} does not exist")
                pid = pids[identity]
                if part == "train" and pid == -1:
                    continue
                samples.append(Sample(str(path), pid, camid))
            parts[part] = samples
        if not parts["train"]:
            raise DatasetError(f"{files[0]} lists only junk (identity -1) images")
        return Split(name, parts["train"], parts["query"], parts["gallery"])

    def key_paths() -> list:
        """The list files and every folder holding a listed image."""
        folders = set()
        for f in files:
            try:
                folders.update(str(_resolve(row[1], images).parent) for row in parse_csv(f))
            except DatasetError:
                pass  # build() reports it
        return [*files, images, *sorted(folders)]

    return cached_split(
        "csv",
        base,
        key_paths,
        build,
        options={"name": name, "files": [str(f) for f in files], "images": str(images)},
        cache=cache,
    )
