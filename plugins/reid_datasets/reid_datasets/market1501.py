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

from reid_datasets._common import cached_split, note_skipped, parse_market_name, require_root
from reidcore.data import Sample, Split
from reidcore.errors import DatasetError

PARTS = (("train", "bounding_box_train"), ("query", "query"), ("gallery", "bounding_box_test"))
RELEASE_FOLDER = "Market-1501-v15.09.15"
LAYOUT = (
    "DIR/bounding_box_train/, DIR/query/ and DIR/bounding_box_test/ holding Market-1501 "
    "images named like 0002_c1s1_000451_03.jpg (pid, camera c1..cN), or DIR/"
    f"{RELEASE_FOLDER}/ holding those three folders."
)


def find_release_root(
    root: Path, folders: tuple[str, ...], release: tuple[str, ...], dataset: str, layout: str
) -> Path:
    """The folder holding the part folders: ``root``, a release folder in it, or its single sub-folder.

    Args:
        root: the ``--data`` folder.
        folders: the part folder names (any one of them present is enough).
        release: names of the official release folders that may sit in ``root``.
        dataset: the dataset's display name, for the message.
        layout: the expected layout, appended to the message.

    Raises:
        DatasetError: none of ``folders`` is in ``root``, a release folder or a single
            sub-folder of it.
    """
    if any((root / n).is_dir() for n in folders):
        return root
    for name in release:
        if (root / name).is_dir():
            return root / name
    subdirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    candidates = [p for p in subdirs if any((p / n).is_dir() for n in folders)]
    if len(candidates) == 1:
        return candidates[0]
    listed = ", ".join(f"{n}/" for n in folders)
    raise DatasetError(
        f"{root} is not a {dataset} folder: it has none of {listed}. Expected layout: {layout}"
    )


def find_market_root(root: Path) -> Path:
    """The folder holding ``bounding_box_train/`` etc.: ``root`` or its single release folder.

    Raises:
        DatasetError: none of the three folders is in ``root`` or a single sub-folder of it.
    """
    return find_release_root(
        root, tuple(f for _, f in PARTS), (RELEASE_FOLDER,), "Market-1501", LAYOUT
    )


def read_market_folder(
    folder: Path,
    drop_junk: bool,
    *,
    parse=parse_market_name,
    example: str = "0002_c1s1_000451_03.jpg",
    layout: str = LAYOUT,
) -> list[Sample]:
    """Index one Market-1501-style folder (also DukeMTMC-reID's).

    Args:
        folder: e.g. ``DIR/bounding_box_train``.
        drop_junk: drop pids -1 (junk) and 0 (distractors), for the training part.
        parse: file name -> ``(pid, camid)`` or ``None`` for a file to ignore.
        example: an example file name, for the message.
        layout: the expected layout, for the message.

    Returns:
        Samples sorted by file name; ``path`` is absolute (as ``folder`` is), ``extras`` empty.

    Raises:
        DatasetError: the folder is missing or holds no image with a matching name.
    """
    if not folder.is_dir():
        raise DatasetError(f"Missing folder {folder}. Expected layout: {layout}")
    samples, skipped = [], []
    for name in sorted(os.listdir(folder)):
        parsed = parse(name)
        if parsed is None:
            skipped.append(folder / name)
            continue
        pid, camid = parsed
        if drop_junk and pid <= 0:
            continue
        samples.append(Sample(str(folder / name), pid, camid))
    note_skipped(skipped)  # counted in the load summary
    if not samples:
        raise DatasetError(
            f"Folder {folder} holds no image named like {example}"
            f"{' (other than junk/distractors)' if drop_junk else ''}. Expected layout: {layout}"
        )
    return samples


def read_market1501(
    root: str | os.PathLike | None, *, name: str = "market1501", cache: bool = True
) -> Split:
    """Read Market-1501 from its official folder layout.

    Args:
        root: the folder holding ``bounding_box_train/``, ``query/`` and
            ``bounding_box_test/`` (or a parent with ``Market-1501-v15.09.15/``).
        name: the :attr:`Split.name`.
        cache: use and write the parsed-index cache (``$REIDCORE_CACHE/index/``).

    Returns:
        A :class:`~reidcore.data.Split`; each part sorted by file name; training
        samples exclude pids -1 and 0; ``camid`` is 0-based.

    Raises:
        DatasetError: ``root`` is ``None`` or missing, a folder is missing, or a
            folder holds no matching image; the message names it.
    """
    base = find_market_root(require_root(root, "market1501", LAYOUT))
    return read_three_folders(base, name, "market1501", cache=cache)


def read_three_folders(
    base: Path,
    name: str,
    dataset: str,
    *,
    parse=parse_market_name,
    example: str = "0002_c1s1_000451_03.jpg",
    layout: str = LAYOUT,
    cache: bool = True,
) -> Split:
    """Read ``base/bounding_box_train``, ``base/query`` and ``base/bounding_box_test``.

    The Market-1501 code path shared with DukeMTMC-reID: every folder is indexed by
    :func:`read_market_folder` with ``parse``; the parsed index is cached
    (:func:`~reid_datasets._common.cached_split`, keyed by the three folders).
    """

    def build() -> Split:
        parts = {
            part: read_market_folder(
                base / folder, part == "train", parse=parse, example=example, layout=layout
            )
            for part, folder in PARTS
        }
        return Split(name, parts["train"], parts["query"], parts["gallery"])

    return cached_split(
        dataset,
        base,
        lambda: [base / folder for _, folder in PARTS],
        build,
        options={"name": name},
        cache=cache,
    )
