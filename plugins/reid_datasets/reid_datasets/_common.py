"""Helpers shared by the readers: root checks, Market-1501 file names, identity mapping."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

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
