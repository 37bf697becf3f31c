"""Market-1501 reader (official folder layout).

Layout::

    DIR/bounding_box_train/0002_c1s1_000451_03.jpg ...   training images
    DIR/query/0001_c1s1_001051_00.jpg ...                query images
    DIR/bounding_box_test/0001_c1s1_000151_01.jpg ...    gallery images

A file name ``PPPP_cCsS_FFFFFF_BB.jpg`` holds the person id ``PPPP``, the camera
``C`` (1-based; ``camid = C - 1``), the sequence ``S``, the frame and the box
index. ``-1_c...`` files are junk (pid -1) and ``0000_c...`` files distractors
(pid 0): both are dropped from the training part, as torchreid does, and kept
in query/gallery for the evaluator. Files whose name does not match (e.g.
``Thumbs.db``) are ignored. ``.jpg``, ``.jpeg`` and ``.png`` are accepted.

``DIR`` may also be a parent folder that holds a single ``Market-1501-v15.09.15/``
(torchreid's layout) or a single sub-folder with the three folders above.
"""

from __future__ import annotations

import os
from pathlib import Path

from reid_datasets._common import parse_market_name, require_root
from reidcore.data import Sample, Split
from reidcore.errors import DatasetError

PARTS = (("train", "bounding_box_train"), ("query", "query"), ("gallery", "bounding_box_test"))
RELEASE_FOLDER = "Market-1501-v15.09.15"
LAYOUT = (
    "DIR/bounding_box_train/, DIR/query/ and DIR/bounding_box_test/ holding Market-1501 "
    "images named like 0002_c1s1_000451_03.jpg (pid, camera c1..cN), or DIR/"
    f"{RELEASE_FOLDER}/ holding those three folders."
)


def find_market_root(root: Path) -> Path:
    """The folder holding ``bounding_box_train/`` etc.: ``root`` or its single release folder.

    Raises:
        DatasetError: none of the three folders is in ``root`` or a single sub-folder of it.
    """
    names = [folder for _, folder in PARTS]
    if any((root / n).is_dir() for n in names):
        return root
    release = root / RELEASE_FOLDER
    if release.is_dir():
        return release
    subdirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    candidates = [p for p in subdirs if any((p / n).is_dir() for n in names)]
    if len(candidates) == 1:
        return candidates[0]
    raise DatasetError(
        f"{root} is not a Market-1501 folder: it has no bounding_box_train/, query/ or "
        f"bounding_box_test/. Expected layout: {LAYOUT}"
    )


def read_market_folder(folder: Path, drop_junk: bool) -> list[Sample]:
    """Index one Market-1501 folder.

    Args:
        folder: e.g. ``DIR/bounding_box_train``.
        drop_junk: drop pids -1 (junk) and 0 (distractors), for the training part.

    Returns:
        Samples sorted by file name; ``path`` is absolute (as ``folder`` is), ``extras`` empty.

    Raises:
        DatasetError: the folder is missing or holds no image with a Market-1501 name.
    """
    if not folder.is_dir():
        raise DatasetError(f"Missing folder {folder}. Expected layout: {LAYOUT}")
    samples = []
    for name in sorted(os.listdir(folder)):
        parsed = parse_market_name(name)
        if parsed is None:
            continue
        pid, camid = parsed
        if drop_junk and pid <= 0:
            continue
        samples.append(Sample(str(folder / name), pid, camid))
    if not samples:
        raise DatasetError(
            f"Folder {folder} holds no image named like 0002_c1s1_000451_03.jpg"
            f"{' (other than junk/distractors)' if drop_junk else ''}. Expected layout: {LAYOUT}"
        )
    return samples


def read_market1501(root: str | os.PathLike | None, *, name: str = "market1501") -> Split:
    """Read Market-1501 from its official folder layout.

    Args:
        root: the folder holding ``bounding_box_train/``, ``query/`` and
            ``bounding_box_test/`` (or a parent with ``Market-1501-v15.09.15/``).
        name: the :attr:`Split.name`.

    Returns:
        A :class:`~reidcore.data.Split`; each part sorted by file name; training
        samples exclude pids -1 and 0; ``camid`` is 0-based.

    Raises:
        DatasetError: ``root`` is ``None`` or missing, a folder is missing, or a
            folder holds no matching image; the message names it.
    """
    base = find_market_root(require_root(root, "market1501", LAYOUT))
    parts = {
        part: read_market_folder(base / folder, drop_junk=(part == "train"))
        for part, folder in PARTS
    }
    return Split(name, parts["train"], parts["query"], parts["gallery"])
