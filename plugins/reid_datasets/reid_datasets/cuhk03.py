"""CUHK03 reader: the new protocol (767/700, labeled or detected) and the classic 20 splits.

Layout (torchreid's ``cuhk03`` folder, as in the SAN seed's README)::

    DIR/cuhk03_release/cuhk-03.mat               the official release (MATLAB v7.3 / HDF5)
    DIR/cuhk03_new_protocol_config_labeled.mat   new-protocol split files (MATLAB v5),
    DIR/cuhk03_new_protocol_config_detected.mat  from zhunzhong07/person-re-ranking
    DIR/images_labeled/1_001_1_01.png ...        written once from cuhk-03.mat (cache)
    DIR/images_detected/1_001_1_01.png ...

``cuhk-03.mat`` may also sit directly in ``DIR``; when ``DIR/images_<variant>/`` already
holds the extracted images (e.g. written by torchreid) the release file is not needed
for the new protocol.

**Release file** (Li et al., "DeepReID", CVPR 2014). Read with h5py, MATLAB's
column-major arrays appear transposed: ``labeled`` and ``detected`` are ``(1, 5)``
arrays of object references, one per camera pair; each references a ``(10, n_ids)``
array of references (10 images per identity: 1-5 from the pair's first camera, 6-10
from its second), each image a ``(3, W, H)`` uint8 array (RGB; transposed to
``(H, W, 3)``); a missing image is an empty array (``ndim < 3``) and is skipped.
``testsets`` is a ``(1, 20)`` array of references to ``(2, 100)`` arrays: per classic
split, 100 test identities as ``(camera pair, identity)``, 1-based. Camera pairs hold
843, 440, 77, 58 and 49 identities (1,467).

**Extracted names** ``P_III_C_JJ.png``: camera pair ``P`` (1-5), identity ``III`` within
the pair, camera ``C`` (1 or 2, the pair's view), image ``JJ`` (01-10), as torchreid
writes them. Extraction writes into a temporary folder next to the target and renames
it, so an interrupted extraction leaves no partial ``images_<variant>/``.

**pid and camid.** ``pid`` is the dataset-wide identity 1..1467: identities numbered
through the camera pairs in order (pair 1's identity 1 is 1, pair 2's identity 1 is 844),
which is exactly the new protocol's ``labels``. ``camid`` is the view, 0 or 1 (the
protocol's ``camId - 1``), as in torchreid; evaluate with the Market-1501 protocol.

**New protocol** (Zhong et al., "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017): ``cuhk03_new_protocol_config_<variant>.mat`` holds ``filelist``
(image names), ``labels`` (pids), ``camId`` (1/2) and ``train_idx``, ``query_idx``,
``gallery_idx`` (1-based rows). Labeled: 7,368 train images of 767 identities, 1,400
queries and 5,328 gallery images of 700 identities; detected: 7,365 / 1,400 / 5,332.

**Classic protocol** (``protocol="classic"``, ``split_id`` 0..19): split ``split_id`` of
``testsets`` names 100 test identities; every image of the other 1,367 identities is
training data; the test identities' first-camera images (view 1) are the queries and
their second-camera images (view 2) the gallery: cross-view matching. The original
protocol's single-shot CMC (one gallery image per identity drawn at random, repeated) is
the evaluator's ``cuhk03`` excluder (``--excluder cuhk03``); ``market1501`` gives the
multi-shot figures. (torchreid instead uses all test images as both query and gallery.)
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from reid_datasets._common import cached_split, publish_folder, require_root
from reidcore.data import Sample, Split
from reidcore.errors import DatasetError

VARIANTS = ("labeled", "detected")
PROTOCOLS = ("new", "classic")
RELEASE_MAT = "cuhk-03.mat"
RELEASE_FOLDER = "cuhk03_release"
PROTOCOL_MAT = "cuhk03_new_protocol_config_{variant}.mat"
PROTOCOL_KEYS = ("filelist", "labels", "camId", "train_idx", "query_idx", "gallery_idx")
NUM_CLASSIC_SPLITS = 20
#: An extracted image name ``P_III_C_JJ.png``.
IMAGE_NAME = re.compile(r"^([1-9])_(\d{3})_([12])_(\d{2})\.png$")
LAYOUT = (
    f"DIR/{RELEASE_FOLDER}/{RELEASE_MAT} (the official MATLAB v7.3 release; or DIR/"
    f"{RELEASE_MAT}), DIR/cuhk03_new_protocol_config_labeled.mat and DIR/"
    "cuhk03_new_protocol_config_detected.mat (new protocol); the images are extracted once "
    "into DIR/images_labeled/ and DIR/images_detected/ (named like 1_001_1_01.png)."
)


def _check_variant(variant: str, protocol: str, split_id: int) -> int:
    if variant not in VARIANTS:
        raise DatasetError(f"cuhk03: variant must be one of {VARIANTS}, got {variant!r}")
    if protocol not in PROTOCOLS:
        raise DatasetError(f"cuhk03: protocol must be one of {PROTOCOLS}, got {protocol!r}")
    try:
        split_id = int(split_id)
    except (TypeError, ValueError):
        split_id = -1
    if not 0 <= split_id < NUM_CLASSIC_SPLITS:
        raise DatasetError(f"cuhk03: split_id must be 0..{NUM_CLASSIC_SPLITS - 1}")
    return split_id


def find_file(base: Path, name: str) -> Path | None:
    """``base/name`` or ``base/cuhk03_release/name``, whichever exists first, else ``None``."""
    for path in (base / name, base / RELEASE_FOLDER / name):
        if path.is_file():
            return path
    return None


# ---------------------------------------------------------------- new protocol


def parse_new_protocol(mat_path: Path) -> dict[str, list[tuple[str, int, int]]]:
    """Parse a ``cuhk03_new_protocol_config_<variant>.mat`` file (scipy.io).

    Returns:
        ``{"train"|"query"|"gallery": [(image name, pid, camid), ...]}`` in the file's
        index order; ``pid`` is the file's ``labels`` entry (1..1467), ``camid`` is
        ``camId - 1`` (0 or 1).

    Raises:
        DatasetError: the file is missing or unreadable, lacks a key, or an index is out
            of range; the message names the file.
    """
    from scipy.io import loadmat

    if not mat_path.is_file():
        raise DatasetError(f"Missing new-protocol split file {mat_path}. Expected layout: {LAYOUT}")
    try:
        mat = loadmat(str(mat_path))
    except Exception as exc:  # noqa: BLE001 -- scipy raises many kinds
        raise DatasetError(f"Cannot read {mat_path} as a MATLAB v5 file: {exc}") from exc
    missing = [k for k in PROTOCOL_KEYS if k not in mat]
    if missing:
        raise DatasetError(
            f"{mat_path} lacks {', '.join(missing)}; a new-protocol split file holds "
            f"{', '.join(PROTOCOL_KEYS)}"
        )
    names = [str(np.asarray(x).ravel()[0]) for x in mat["filelist"].ravel()]
    labels = mat["labels"].ravel().astype(np.int64)
    cams = mat["camId"].ravel().astype(np.int64)
    if not len(names) == len(labels) == len(cams):
        raise DatasetError(f"{mat_path}: filelist, labels and camId differ in length")
    parts = {}
    for part in ("train", "query", "gallery"):
        idx = mat[f"{part}_idx"].ravel().astype(np.int64) - 1
        if idx.size and (idx.min() < 0 or idx.max() >= len(names)):
            raise DatasetError(f"{mat_path}: {part}_idx has an index outside 1..{len(names)}")
        parts[part] = [(names[i], int(labels[i]), int(cams[i]) - 1) for i in idx]
    return parts


# ---------------------------------------------------------------- release file


def _deref(mat, ref) -> np.ndarray:
    return np.asarray(mat[ref])


def _cell(mat, key: str, where: Path) -> np.ndarray:
    if key not in mat:
        raise DatasetError(
            f"{where} has no {key!r}; the official cuhk-03.mat holds 'labeled', 'detected' "
            "and 'testsets'"
        )
    return np.asarray(mat[key]).ravel()


def _open_release(mat_path: Path):
    import h5py

    try:
        return h5py.File(mat_path, "r")
    except OSError as exc:
        raise DatasetError(
            f"Cannot read {mat_path} as a MATLAB v7.3 (HDF5) file: {exc}. Expected the official "
            "CUHK03 release cuhk-03.mat"
        ) from exc


def extract_images(mat_path: Path, variant: str, out_dir: Path) -> int:
    """Write the ``variant`` images of ``cuhk-03.mat`` into ``out_dir`` as ``P_III_C_JJ.png``.

    Atomic: the images are written into a temporary folder beside ``out_dir`` that is
    then renamed; if another process finished first, its folder is kept.

    Returns:
        The number of images written.

    Raises:
        DatasetError: the release file is unreadable or not structured as the official one,
            or the folder cannot be written.
    """
    from PIL import Image

    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as exc:
        raise DatasetError(
            f"Cannot create the CUHK03 image folder next to {out_dir}: {exc}; pass "
            "images_dir= a writable folder"
        ) from exc
    count = 0
    try:
        with _open_release(mat_path) as mat:
            for pair, pair_ref in enumerate(_cell(mat, variant, mat_path), start=1):
                images = _deref(mat, pair_ref)  # (10, n_ids) references
                if images.ndim != 2 or images.shape[0] != 10:
                    raise DatasetError(
                        f"{mat_path}: {variant} camera pair {pair} is a {images.shape} array, "
                        "expected (10, number of identities) image references"
                    )
                for ident in range(images.shape[1]):
                    for j in range(10):
                        img = _deref(mat, images[j, ident])
                        if img.ndim < 3 or img.size == 0:
                            continue  # an empty cell: the identity lacks this image
                        view = 1 if j < 5 else 2
                        name = f"{pair}_{ident + 1:03d}_{view}_{j + 1:02d}.png"
                        rgb = np.ascontiguousarray(img.T).astype(np.uint8)  # (H, W, 3)
                        Image.fromarray(rgb).save(tmp / name)
                        count += 1
        if count == 0:
            raise DatasetError(f"{mat_path} holds no {variant} image")
        publish_folder(tmp, out_dir)  # or a concurrent extraction won the race
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return count


def read_testsets(mat_path: Path) -> list[list[tuple[int, int]]]:
    """The 20 classic test sets of ``cuhk-03.mat``: per split, ``(pair, identity)`` 1-based."""
    with _open_release(mat_path) as mat:
        out = []
        for ref in _cell(mat, "testsets", mat_path):
            arr = _deref(mat, ref)  # (2, 100) in h5py: rows pair, identity
            arr = arr.T if arr.shape[0] == 2 else arr
            out.append([(int(p), int(i)) for p, i in arr])
    return out


def image_folder(base: Path, variant: str, images_dir: str | os.PathLike | None) -> Path:
    """The folder of extracted ``variant`` images, extracting them on first use.

    Raises:
        DatasetError: the folder is absent and the release file is missing or unreadable.
    """
    folder = Path(images_dir).expanduser() if images_dir else base / f"images_{variant}"
    if folder.is_dir():
        return folder
    mat_path = find_file(base, RELEASE_MAT)
    if mat_path is None:
        raise DatasetError(
            f"Missing {base / RELEASE_FOLDER / RELEASE_MAT} (needed once to extract {folder}). "
            f"Expected layout: {LAYOUT}"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    extract_images(mat_path, variant, folder)
    return folder


# ---------------------------------------------------------------- reader


def _new_protocol(base: Path, folder: Path, mat_path: Path, variant: str, name: str) -> Split:
    lists = parse_new_protocol(mat_path)
    present = set(os.listdir(folder))
    parts = {}
    for part, rows in lists.items():
        for image, _, _ in rows:
            if image not in present:
                raise DatasetError(
                    f"{mat_path.name} lists {image}, which is not in {folder}; delete {folder} "
                    f"to extract it again from {RELEASE_MAT}"
                )
        parts[part] = [Sample(str(folder / image), pid, camid) for image, pid, camid in rows]
    return Split(name, parts["train"], parts["query"], parts["gallery"])


def _classic(base: Path, folder: Path, split_id: int, name: str) -> Split:
    mat_path = find_file(base, RELEASE_MAT)
    if mat_path is None:
        raise DatasetError(
            f"Missing {base / RELEASE_FOLDER / RELEASE_MAT}: the classic protocol reads its "
            f"'testsets'. Expected layout: {LAYOUT}"
        )
    testsets = read_testsets(mat_path)
    if split_id >= len(testsets):
        raise DatasetError(f"{mat_path} holds {len(testsets)} test sets; split_id {split_id}")
    test = set(testsets[split_id])
    images = []
    for image in sorted(os.listdir(folder)):
        match = IMAGE_NAME.match(image)
        if match:
            images.append((image, *(int(g) for g in match.groups())))
    if not images:
        raise DatasetError(f"{folder} holds no image named like 1_001_1_01.png")
    ids_per_pair: dict[int, int] = {}
    for _, pair, ident, _, _ in images:
        ids_per_pair[pair] = max(ids_per_pair.get(pair, 0), ident)
    offset, offsets = 0, {}
    for pair in sorted(ids_per_pair):
        offsets[pair] = offset
        offset += ids_per_pair[pair]
    parts: dict[str, list[Sample]] = {"train": [], "query": [], "gallery": []}
    for image, pair, ident, view, _ in images:
        sample = Sample(str(folder / image), offsets[pair] + ident, view - 1)
        part = "train" if (pair, ident) not in test else ("query" if view == 1 else "gallery")
        parts[part].append(sample)
    return Split(name, parts["train"], parts["query"], parts["gallery"])


def read_cuhk03(
    root: str | os.PathLike | None,
    *,
    variant: str = "detected",
    protocol: str = "new",
    split_id: int = 0,
    images_dir: str | os.PathLike | None = None,
    name: str | None = None,
    cache: bool = True,
) -> Split:
    """Read CUHK03 (see the module docstring for the layout and both protocols).

    Args:
        root: the ``cuhk03`` folder.
        variant: ``"detected"`` (default, as torchreid and the SAN seed) or ``"labeled"``
            (hand-drawn boxes).
        protocol: ``"new"`` (767/700 split files) or ``"classic"`` (20 splits of 100 test
            identities from ``cuhk-03.mat``).
        split_id: the classic split, 0..19.
        images_dir: the folder of extracted images (default ``DIR/images_<variant>``).
        name: the :attr:`Split.name` (default ``cuhk03-<variant>`` or
            ``cuhk03-classic-<variant>``).
        cache: use and write the parsed-index cache.

    Returns:
        A :class:`~reidcore.data.Split` with absolute paths to the extracted PNGs; the new
        protocol in the split file's order, the classic one sorted by name.

    Raises:
        DatasetError: a bad option; ``root``, the split file or the release file (when
            the images still need extracting) is missing or malformed; a listed image is
            missing. The message names the file and the expected layout.
    """
    split_id = _check_variant(variant, protocol, split_id)
    base = require_root(root, "cuhk03", LAYOUT)
    if name is None:
        name = f"cuhk03-{variant}" if protocol == "new" else f"cuhk03-classic-{variant}"
    mat_path = base / PROTOCOL_MAT.format(variant=variant)
    if protocol == "new":
        mat_path = find_file(base, mat_path.name) or mat_path
        if not mat_path.is_file():
            raise DatasetError(
                f"Missing new-protocol split file {mat_path}. Expected layout: {LAYOUT}"
            )
    folder = image_folder(base, variant, images_dir)
    options = {
        "variant": variant,
        "protocol": protocol,
        "split_id": split_id,
        "name": name,
        "images_dir": str(folder),
    }
    if protocol == "new":
        return cached_split(
            "cuhk03",
            base,
            lambda: [mat_path, folder],
            lambda: _new_protocol(base, folder, mat_path, variant, name),
            options=options,
            cache=cache,
        )
    release = find_file(base, RELEASE_MAT)
    return cached_split(
        "cuhk03",
        base,
        lambda: [folder, release or base / RELEASE_FOLDER / RELEASE_MAT],
        lambda: _classic(base, folder, split_id, name),
        options=options,
        cache=cache,
    )


def read_cuhk03_labeled(root, **kwargs) -> Split:
    """``cuhk03`` new protocol, labeled boxes (:func:`read_cuhk03` with ``variant="labeled"``)."""
    return read_cuhk03(root, **{"variant": "labeled", **kwargs})


def read_cuhk03_detected(root, **kwargs) -> Split:
    """``cuhk03`` new protocol, detected boxes (:func:`read_cuhk03` with ``variant="detected"``)."""
    return read_cuhk03(root, **{"variant": "detected", **kwargs})


def read_cuhk03_classic_labeled(root, **kwargs) -> Split:
    """Classic protocol split ``split_id`` (default 0), labeled boxes."""
    return read_cuhk03(root, **{"variant": "labeled", "protocol": "classic", **kwargs})


def read_cuhk03_classic_detected(root, **kwargs) -> Split:
    """Classic protocol split ``split_id`` (default 0), detected boxes."""
    return read_cuhk03(root, **{"variant": "detected", "protocol": "classic", **kwargs})


# --dataset-option names of the wrappers (they forward **kwargs to read_cuhk03), and the
# classic protocol's own evaluation (single-gallery-shot CMC): the run's default --excluder
_OPTIONS = {"split_id": 0, "images_dir": None}
for _reader in (read_cuhk03_labeled, read_cuhk03_detected, read_cuhk03_classic_labeled,
                read_cuhk03_classic_detected):
    _reader.reid_options = dict(_OPTIONS)
for _reader in (read_cuhk03_classic_labeled, read_cuhk03_classic_detected):
    _reader.reid_protocol = "cuhk03"
