"""MSMT17 reader (official list files).

Layout (Wei et al., "Person Transfer GAN to Bridge Domain Gap for Person
Re-Identification", CVPR 2018; the ``MSMT17_V1`` release, torchreid's ``msmt17/``)::

    DIR/train/0000/0000_000_01_0303morning_0015_0.jpg ...   training images
    DIR/test/0000/0000_000_01_0303morning_0035_0.jpg ...    test images
    DIR/list_train.txt     30,248 lines "0000/0000_000_01_0303morning_0015_0.jpg 0"
    DIR/list_val.txt       2,373 lines (more images of the training identities)
    DIR/list_query.txt     11,659 lines, paths relative to test/
    DIR/list_gallery.txt   82,161 lines

A list line is ``relative/path.jpg pid``; train and val paths are relative to ``train/``,
query and gallery paths to ``test/``. ``pid`` is kept as listed: training identities are
0..1040 and test identities 0..3059, two separate ranges (pid 0 is an ordinary person
here, not a distractor). The camera is the third ``_`` field of the file name
(``0000_000_01_...`` -> camera 01, ``camid = 0``; 15 cameras). ``MSMT17_V2``'s
``mask_train_v2/`` and ``mask_test_v2/`` are used when ``train/``/``test/`` are absent.
``DIR`` may also be a parent holding ``MSMT17_V1/`` or ``MSMT17_V2/``.

``train_val=True`` (registered as ``msmt17-trainval``) trains on ``list_train.txt`` plus
``list_val.txt``, the official training set of 32,621 images; the default trains on
``list_train.txt`` only. Evaluate with the Market-1501 protocol.
"""

from __future__ import annotations

import os
from pathlib import Path

from reid_datasets._common import cached_split, require_root
from reidcore.data import Sample, Split
from reidcore.errors import DatasetError

RELEASES = ("MSMT17_V1", "MSMT17_V2", "MSMT17")
FOLDERS = {"V1": ("train", "test"), "V2": ("mask_train_v2", "mask_test_v2")}
LISTS = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")
LAYOUT = (
    "DIR/train/<pid>/*.jpg and DIR/test/<pid>/*.jpg (MSMT17_V2: mask_train_v2/, mask_test_v2/) "
    "with DIR/list_train.txt, DIR/list_val.txt, DIR/list_query.txt and DIR/list_gallery.txt of "
    "lines 'relative/path.jpg pid' (e.g. '0000/0000_000_01_0303morning_0015_0.jpg 0'), or DIR/"
    "MSMT17_V1/ holding them."
)


def find_msmt_root(root: Path) -> Path:
    """``root`` if it holds a list file, else its ``MSMT17_V1``/``MSMT17_V2`` folder."""
    if any((root / f).is_file() for f in LISTS):
        return root
    for name in RELEASES:
        if any((root / name / f).is_file() for f in LISTS):
            return root / name
    return root


def _image_folders(base: Path) -> tuple[Path, Path]:
    for train, test in FOLDERS.values():
        if (base / train).is_dir() or (base / test).is_dir():
            return base / train, base / test
    return base / "train", base / "test"


def parse_list(path: Path, images: Path, listing: dict[str, set[str]]) -> list[Sample]:
    """Parse one ``list_*.txt``; checks that every listed image exists in ``images``.

    Raises:
        DatasetError: the file is missing or empty, a line is malformed, or an image is
            missing; the message names the file and line.
    """
    if not path.is_file():
        raise DatasetError(f"Missing list file {path}. Expected layout: {LAYOUT}")
    samples = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        where = f"{path}:{lineno}"
        parts = fields[0].split("_") if fields else []
        if len(fields) != 2 or len(parts) < 3 or not parts[2].isdigit():
            raise DatasetError(
                f"{where}: malformed line {line!r}; expected 'relative/path.jpg pid' with a "
                "file name like 0000_000_01_0303morning_0015_0.jpg"
            )
        try:
            pid = int(fields[1])
        except ValueError:
            raise DatasetError(f"{where}: pid {fields[1]!r} is not an int") from None
        rel = Path(fields[0])
        folder = images / rel.parent
        key = str(rel.parent)
        if key not in listing:
            listing[key] = set(os.listdir(folder)) if folder.is_dir() else set()
        if rel.name not in listing[key]:
            raise DatasetError(f"{where}: listed image {images / rel} does not exist")
        samples.append(Sample(str(images / rel), pid, int(parts[2]) - 1))
    if not samples:
        raise DatasetError(f"List file {path} lists no image. Expected layout: {LAYOUT}")
    return samples


def read_msmt17(
    root: str | os.PathLike | None,
    *,
    train_val: bool = False,
    name: str | None = None,
    cache: bool = True,
) -> Split:
    """Read MSMT17 from its list files (see the module docstring).

    Args:
        root: the MSMT17 folder (or a parent holding ``MSMT17_V1/``).
        train_val: train on ``list_train.txt`` + ``list_val.txt``.
        name: the :attr:`Split.name` (default ``msmt17`` or ``msmt17-trainval``).
        cache: use and write the parsed-index cache (keyed by the list files and folders).

    Returns:
        A :class:`~reidcore.data.Split` in list-file order; ``camid`` 0-based.

    Raises:
        DatasetError: ``root`` is ``None`` or missing, a list file is missing, empty or
            malformed, or a listed image does not exist.
    """
    base = find_msmt_root(require_root(root, "msmt17", LAYOUT))
    train_dir, test_dir = _image_folders(base)
    name = name or ("msmt17-trainval" if train_val else "msmt17")

    def build() -> Split:
        for folder in (train_dir, test_dir):
            if not folder.is_dir():
                raise DatasetError(f"Missing folder {folder}. Expected layout: {LAYOUT}")
        train_ls: dict[str, set[str]] = {}
        test_ls: dict[str, set[str]] = {}
        train = parse_list(base / "list_train.txt", train_dir, train_ls)
        if train_val:
            train += parse_list(base / "list_val.txt", train_dir, train_ls)
        query = parse_list(base / "list_query.txt", test_dir, test_ls)
        gallery = parse_list(base / "list_gallery.txt", test_dir, test_ls)
        return Split(name, train, query, gallery)

    def key_paths() -> list[Path]:
        paths = [base / f for f in LISTS]
        for folder in (train_dir, test_dir):
            paths.append(folder)
            if folder.is_dir():
                paths += [folder / d for d in sorted(os.listdir(folder))]
        return paths

    return cached_split(
        "msmt17",
        base,
        key_paths,
        build,
        options={"name": name, "train_val": bool(train_val)},
        cache=cache,
    )


def read_msmt17_trainval(root, **kwargs) -> Split:
    """MSMT17 trained on train + val (:func:`read_msmt17` with ``train_val=True``)."""
    return read_msmt17(root, **{"train_val": True, **kwargs})
