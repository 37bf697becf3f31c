"""The market1501_body_point keypoint files (``.mat`` with a ``pp`` matrix) and their folders.

The public Market-1501 14-point annotation (market1501_body_point, MIT licence) ships three
files that users drop into the Market-1501 folder with their published names:

============================== ========= =======================
file                           ``pp``    images it annotates
============================== ========= =======================
market1501_14point_train.mat   12,936    ``bounding_box_train/``
market1501_14point_query.mat   3,368     ``query/``
market1501_14point_gallery.mat 19,732    ``bounding_box_test/`` (junk and distractors included)
============================== ========= =======================

Layout, checked against the real files and ``market1501-holdout/keypoints.csv`` (which was
made from the train file: all 12,936 rows agree exactly): MATLAB v7.3 (HDF5), one variable
``pp`` that h5py reads as ``(N, 28)`` float64 — ``x0..x13`` then ``y0..y13``, 1-based pixels
(``1..64``, ``1..128``; ``<= 0``/NaN would mark a missing joint), joints in the Market-1501
body-point order — row ``i`` belonging to the ``i``-th image file of the folder sorted by
name (MATLAB ``dir`` order, equal to Python's :func:`sorted` on these names).

Which folder a ``.mat`` file annotates (:func:`match_mat_folder`), in this order:

1. its published name: ``market1501_14point_{train,query,gallery}.mat`` ->
   ``bounding_box_train/``, ``query/``, ``bounding_box_test/``;
2. a file named after a folder: ``bounding_box_test.mat`` -> ``bounding_box_test/``;
3. otherwise its row count: the one folder of the split holding exactly that many image
   files, else (row count equal to all image files of the split's folders together) all of
   them, sorted by file name across the folders.

A named file whose row count differs from its folder's image count is an error naming the
file, its row count, the folder and the folder's count; so is a file that no rule matches.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from reid_datasets.keypoints_csv import NUM_JOINTS, KeypointsError, from_one_based

#: Key of the keypoint matrix in a market1501_body_point ``.mat`` file.
MAT_KEY = "pp"
#: Image file suffixes counted in a folder (lower case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
#: Published market1501_body_point names (stem, lower case) -> the folder they annotate.
PUBLISHED_NAMES = {
    "market1501_14point_train": "bounding_box_train",
    "market1501_14point_query": "query",
    "market1501_14point_gallery": "bounding_box_test",
}
_PUBLISHED = re.compile(r"^market1501_14point_(train|query|gallery)$", re.IGNORECASE)


def mat_has_keypoints(path: str | os.PathLike) -> bool:
    """Whether a ``.mat`` file (v7.3 / HDF5 or v4-v7) holds a ``pp`` variable."""
    import h5py

    path = Path(path)
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                return MAT_KEY in f
        from scipy.io import whosmat

        return any(name == MAT_KEY for name, _, _ in whosmat(str(path)))
    except (OSError, ValueError, TypeError, NotImplementedError):
        return False


def read_keypoints_mat(path: str | os.PathLike) -> np.ndarray:
    """Read the ``pp`` matrix of a market1501_body_point ``.mat`` file (layout above).

    MATLAB v7.3 files are read with h5py, v4-v7 files with scipy. The published files show
    ``(N, 28)`` in h5py; a ``(28, N)`` matrix (``N != 28``) is taken as transposed. A
    ``(28, 28)`` matrix is read as the published files are (rows are images).

    Returns:
        ``(N, J, 3)`` float32 0-based keypoints (``J = 14``), in the file's row order.

    Raises:
        KeypointsError: the file cannot be read, has no ``pp``, or ``pp`` has no axis of 28.
    """
    import h5py

    path = Path(path)
    width = 2 * NUM_JOINTS
    try:
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as f:
                if MAT_KEY not in f:
                    raise KeypointsError(f"{path} has no {MAT_KEY!r} variable")
                pp = np.asarray(f[MAT_KEY], np.float64)
        else:
            from scipy.io import loadmat

            data = loadmat(str(path), variable_names=[MAT_KEY])
            if MAT_KEY not in data:
                raise KeypointsError(f"{path} has no {MAT_KEY!r} variable")
            pp = np.asarray(data[MAT_KEY], np.float64)
    except KeypointsError:
        raise
    except (OSError, ValueError, TypeError, NotImplementedError) as exc:
        raise KeypointsError(f"cannot read keypoint file {path}: {exc}") from exc
    if pp.ndim == 2 and pp.shape[1] != width and pp.shape[0] == width:
        pp = pp.T
    if pp.ndim != 2 or pp.shape[1] != width:
        raise KeypointsError(
            f"{path}: {MAT_KEY!r} must be a (N, {width}) matrix of x0..x13, y0..y13 per image "
            f"(or its transpose), got shape {pp.shape}"
        )
    return from_one_based(pp[:, :NUM_JOINTS], pp[:, NUM_JOINTS:])


def image_listing(folder: Path) -> list[str]:
    """The image file names of ``folder`` (suffixes :data:`IMAGE_EXTENSIONS`), sorted; ``[]``
    for a folder that cannot be listed."""
    try:
        return sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    except OSError:
        return []


def named_folder(path: Path) -> str | None:
    """The folder name a ``.mat`` file's name ties it to, or ``None`` (rules 1-2 above)."""
    stem = path.stem
    if _PUBLISHED.match(stem):
        return PUBLISHED_NAMES[stem.lower()]
    return stem if stem in ("bounding_box_train", "query", "bounding_box_test") else None


def match_mat_folder(path: Path, rows: int, folders: Sequence[Path]) -> tuple[list[Path], str]:
    """The folder(s) whose sorted image files the ``rows`` rows of ``path`` annotate.

    Args:
        path: the ``.mat`` file (its name is matched first).
        rows: its ``pp`` row count.
        folders: the folders holding the split's images (train, query and gallery).

    Returns:
        ``(folders, how)``: one folder (by name or by row count) or all ``folders`` (row
        count equal to their images together), and a phrase saying how it was matched.
        ``([], how)`` when the file is named for a folder that holds none of the split's
        images (it annotates nothing here).

    Raises:
        KeypointsError: a named file's row count differs from its folder's image count, two
            folders hold ``rows`` images, or no folder matches; names the file, its row
            count and the folders with their image counts.
    """
    counts = {f: len(image_listing(f)) for f in folders}
    listing = ", ".join(f"{f}/ {n}" for f, n in counts.items()) or "(none)"
    name = named_folder(path)
    if name is not None:
        hits = [f for f in folders if f.name == name]
        if not hits:
            return [], f"named for {name}/, which holds none of the split's images"
        for f in hits:
            if counts[f] != rows:
                raise KeypointsError(
                    f"{path}: {MAT_KEY!r} has {rows} rows but {f}/ (matched by the file's name) "
                    f"holds {counts[f]} image files; expected one row per image of that folder "
                    "in sorted file-name order"
                )
        return hits, f"rows of {', '.join(f'{f.name}/' for f in hits)} (by name)"
    same = [f for f, n in counts.items() if n == rows]
    if len(same) == 1:
        return same, f"rows of {same[0].name}/ (by row count)"
    if len(same) > 1:
        raise KeypointsError(
            f"{path}: {MAT_KEY!r} has {rows} rows and several folders hold that many images "
            f"({', '.join(str(f) for f in same)}); name it after its folder (e.g. "
            f"{same[0].name}.mat) or market1501_14point_train/query/gallery.mat"
        )
    if len(folders) > 1 and rows == sum(counts.values()):
        return list(folders), "rows of all the split's folders, sorted by file name"
    raise KeypointsError(
        f"{path}: {MAT_KEY!r} has {rows} rows but no folder of the split holds that many image "
        f"files ({listing}); expected one row per image of one folder in sorted file-name "
        "order, or the published names market1501_14point_train.mat (bounding_box_train/), "
        "_query.mat (query/), _gallery.mat (bounding_box_test/)"
    )


def mat_table(path: Path, folders: Sequence[Path]) -> tuple[dict[str, np.ndarray], str]:
    """Read ``path`` and pair its rows with the image files of its folder(s).

    Returns:
        ``({absolute image path: (J, 3) float32}, how)`` (``os.path.abspath`` of each image
        file the rows annotate; a sample matches by its own absolute path only, never by a
        bare file name, so a query file never takes a gallery row), ``how`` from
        :func:`match_mat_folder`.

    Raises:
        KeypointsError: see :func:`read_keypoints_mat` and :func:`match_mat_folder`.
    """
    pp = read_keypoints_mat(path)
    hits, how = match_mat_folder(path, len(pp), folders)
    if not hits:
        return {}, how
    names = sorted(((n, f) for f in hits for n in image_listing(f)), key=lambda t: t[0])
    table = {os.path.abspath(f / n): kp for (n, f), kp in zip(names, pp, strict=True)}
    return table, how
