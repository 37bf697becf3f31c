"""Class-folder reader: the layout written by layumi's ``prepare.py`` (Person_reID_baseline).

Layout::

    DIR/train/<pid>/*.jpg      (or DIR/train_all/<pid>/*.jpg with train_dir="train_all")
    DIR/query/<pid>/*.jpg
    DIR/gallery/<pid>/*.jpg

A sub-folder name is the identity: one that parses as an int keeps its value
(``-1`` junk, ``0000`` distractor); other names, sorted across the three parts,
get the ids after the largest int id. The camera comes from a Market-style file
name (``0002_c3s1_000451_03.jpg`` -> camid 2), else 0. ``.jpg``, ``.jpeg`` and
``.png`` files are indexed, other files ignored. Junk (``-1``) folders are
dropped from the training part.
"""

from __future__ import annotations

import os
from pathlib import Path

from reid_datasets._common import (
    cached_split,
    camid_from_name,
    identity_map,
    is_image,
    require_root,
)
from reidcore.data import Sample, Split
from reidcore.errors import DatasetError

LAYOUT = (
    "DIR/train/<pid>/*.jpg (or DIR/train_all/ with train_dir='train_all'), DIR/query/<pid>/*.jpg "
    "and DIR/gallery/<pid>/*.jpg, one sub-folder per identity (as written by "
    "Person_reID_baseline's prepare.py)."
)


def _list_part(folder: Path, root: Path) -> list[tuple[str, Path]]:
    """``(identity folder name, image path)`` pairs of one part, sorted by folder then file."""
    if not folder.is_dir():
        hint = ""
        if folder.name == "train" and (root / "train_all").is_dir():
            hint = " (there is a train_all/: pass train_dir='train_all')"
        raise DatasetError(f"Missing folder {folder}{hint}. Expected layout: {LAYOUT}")
    items = []
    for identity in sorted(os.listdir(folder)):
        sub = folder / identity
        if identity.startswith(".") or not sub.is_dir():
            continue
        items.extend((identity, sub / f) for f in sorted(os.listdir(sub)) if is_image(f))
    if not items:
        raise DatasetError(
            f"Folder {folder} holds no image in an identity sub-folder. Expected layout: {LAYOUT}"
        )
    return items


def read_folder(
    root: str | os.PathLike | None,
    *,
    train_dir: str = "train",
    query_dir: str = "query",
    gallery_dir: str = "gallery",
    name: str = "folder",
    cache: bool = True,
) -> Split:
    """Read a dataset stored as one sub-folder per identity.

    Args:
        root: the folder holding the three parts.
        train_dir, query_dir, gallery_dir: the part folders' names inside ``root``
            (``train_dir="train_all"`` for prepare.py's train+val folder).
        name: the :attr:`Split.name`.
        cache: use and write the parsed-index cache, keyed by the part folders and their
            identity sub-folders (``$REIDCORE_CACHE/index/``).

    Returns:
        A :class:`~reidcore.data.Split` sorted by identity folder then file name;
        ``path`` absolute when ``root`` is.

    Raises:
        DatasetError: ``root`` is ``None`` or missing, a part folder is missing, or
            a part holds no image; the message names the folder.
    """
    base = require_root(root, "folder", LAYOUT)
    subs = (("train", train_dir), ("query", query_dir), ("gallery", gallery_dir))

    def build() -> Split:
        lists = {part: _list_part(base / sub, base) for part, sub in subs}
        pids = identity_map(identity for items in lists.values() for identity, _ in items)
        parts = {
            part: [
                Sample(str(path), pids[identity], camid_from_name(path.name))
                for identity, path in items
                if not (part == "train" and pids[identity] == -1)
            ]
            for part, items in lists.items()
        }
        if not parts["train"]:
            raise DatasetError(f"Folder {base / train_dir} holds only junk (-1) identities")
        return Split(name, parts["train"], parts["query"], parts["gallery"])

    def key_paths() -> list[Path]:
        """The part folders and their identity sub-folders."""
        paths = []
        for _, sub in subs:
            folder = base / sub
            paths.append(folder)
            if folder.is_dir():
                paths += [folder / d for d in sorted(os.listdir(folder))]
        return paths

    return cached_split(
        "folder",
        base,
        key_paths,
        build,
        options={"name": name, "parts": [train_dir, query_dir, gallery_dir]},
        cache=cache,
    )
