"""Identities (and cameras) of embedding rows from triplet-reid dataset CSVs.

triplet-reid (Hermans, Beyer & Leibe, 2017) describes a dataset by a CSV file with one
``identity,relative_path/to/image.jpg`` line per image, in the order of the rows of the
embeddings file ``embed.py`` writes (which holds only ``embs``). Its ``evaluate.py``
reads the pids from these files and its ``market1501`` excluder parses the camera from
the file name. :func:`read_dataset_csv` does the same.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from reidcore.errors import DatasetError

__all__ = ["camera_from_path", "pids_to_int", "read_dataset_csv"]

#: Market-1501 ``0001_c1s1_001051_00.jpg``, DukeMTMC-reID ``0001_c2_f0046182.jpg``
_CAMERA = re.compile(r"_c(\d+)")


def camera_from_path(path: str) -> int | None:
    """The camera number in a Market-1501/DukeMTMC-style file name, or ``None``."""
    m = _CAMERA.search(Path(path).name)
    return int(m.group(1)) if m else None


def read_dataset_csv(path: str | Path) -> tuple[list[str], list[str]]:
    """The ``(identities, relative_paths)`` of a triplet-reid dataset CSV, as strings.

    Raises:
        DatasetError: the file is missing or a line does not have two fields (the
            message names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset CSV {str(path)!r} does not exist")
    ids, paths = [], []
    with path.open(newline="") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise DatasetError(
                    f"{path}:{lineno}: expected 'identity,relative_path', got {row!r}"
                )
            ids.append(row[0].strip())
            paths.append(row[1].strip())
    return ids, paths


def pids_to_int(*id_lists: list[str]) -> list[np.ndarray]:
    """Integer pids for lists of string identities, consistent across the lists.

    Identities that are integers keep their value (``-1`` junk, ``0000`` distractor);
    any other string gets a distinct integer above every integer identity, in sorted
    order of the strings.

    Returns:
        One ``(len(ids),)`` int64 array per list.
    """
    def as_int(s: str) -> int | None:
        try:
            return int(s)
        except ValueError:
            return None

    all_ids = [s for ids in id_lists for s in ids]
    ints = [v for v in map(as_int, all_ids) if v is not None]
    base = max(ints, default=0) + 1
    names = sorted({s for s in all_ids if as_int(s) is None})
    code = {s: base + k for k, s in enumerate(names)}
    return [np.array([as_int(s) if as_int(s) is not None else code[s] for s in ids],
                     dtype=np.int64) for ids in id_lists]
