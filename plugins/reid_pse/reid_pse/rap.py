"""RAP reader (Richly Annotated Pedestrian dataset, v1 and v2): view labels for PSE.

PSE (Sarfraz et al., CVPR 2018, Sec. 3.1 and 4.1) trains its view predictor on RAP,
whose images carry one of four viewpoints, and transfers it to the re-ID datasets; the
seed treats RAP as a *view-training* dataset only (no person labels). Left and right
both map to the paper's *side* class (:data:`reid_pse.views.VIEWS`).

Layout (as distributed, and as the official ``dangweili/RAP`` code expects)::

    DIR/RAP_annotation/RAP_annotation.mat    (or DIR/RAP_annotation.mat)
    DIR/RAP_dataset/CAM01_2014-02-15_20140215161032-20140215162620_tarid0_frame218_line1.png ...

``RAP_annotation.mat`` holds one struct ``RAP_annotation``, MATLAB v5 (read with
``scipy.io``) or v7.3 (HDF5, read with ``h5py``):

* **RAP v1** (Li et al., "A Richly Annotated Dataset for Pedestrian Attribute
  Recognition", 2016; 41,585 images): ``imagesname`` (N cell of file names), ``label``
  (N x 92, 0/1), ``attribute_eng`` (92 names; ``faceFront``, ``faceBack``, ``faceLeft``,
  ``faceRight`` are the viewpoints), ``attribute_chinese``, ``attribute_exp``,
  ``position``, and ``partion`` (sic; 5 random splits, each a struct with 1-based
  ``trainindex`` and ``testindex``).
* **RAP v2** (Li et al., "A Richly Annotated Pedestrian Dataset for Person Retrieval in
  Real Surveillance Scenarios", TIP 2018; 84,928 images): ``name`` (N cell), ``data``
  (N x 152), ``attribute`` (152 names), ``selected_attribute``, ``partition_attribute``
  (5 splits, structs with 1-based ``train_index``, ``val_index``, ``test_index``),
  ``person_identity`` (N; -1 where unannotated) and ``partition_reid``. The viewpoint is
  one categorical column, ``data(:, 112)`` in the official scripts, with values 1..4 in
  RAP v1's order (front, back, left, right).

View columns are found by name: the four binary ``face*`` attributes (any spelling that
reduces to ``facefront`` etc., e.g. ``Face-Front``), else a categorical attribute named
like ``viewpoint``/``view``/``face``/``orientation``, else (a v2 ``data`` matrix) column
:data:`RAP2_VIEWPOINT_COLUMN`, whose values must then lie in 0..4.

Returned :class:`~reidcore.data.Split`:

* ``train``: the images of training split ``split_id`` (v2: ``train_index`` plus
  ``val_index``), or every image with ``all_images=True``;
* ``gallery``: the split's test images (for measuring view accuracy; empty with
  ``all_images=True``); ``query``: always empty -- RAP is not evaluated as re-ID here.

Images without exactly one viewpoint (v1: not exactly one ``face*`` flag; v2: a value
outside 1..4) are left out. Every sample's ``extras`` holds ``"view"``
(``"front"``/``"back"``/``"side"``) and ``"rap_view"`` (``"faceFront"``/``"faceBack"``/
``"faceLeft"``/``"faceRight"``); ``pid`` is ``person_identity`` (v2) or -1 (v1);
``camid`` is the ``CAMnn`` of the file name minus 1 (0 when absent).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reidcore.data import Sample, Split
from reidcore.errors import DatasetError

ANNOTATION_DIR = "RAP_annotation"
ANNOTATION_FILE = "RAP_annotation.mat"
IMAGE_DIR = "RAP_dataset"
STRUCT = "RAP_annotation"
#: RAP's viewpoints in annotation order (v1 attribute names; v2 values 1..4).
RAP_VIEWS = ("faceFront", "faceBack", "faceLeft", "faceRight")
#: RAP viewpoint index -> PSE view class (front 0, back 1, side 2; left and right are side).
PSE_VIEW_OF_RAP = (0, 1, 2, 2)
#: 0-based column of the v2 ``data`` matrix holding the viewpoint (1..4), used when no
#: attribute name identifies it (the official RAP 2.0 scripts read ``data(:, 112)``).
RAP2_VIEWPOINT_COLUMN = 111
#: Normalised names of a categorical viewpoint attribute.
VIEWPOINT_NAMES = ("viewpoint", "view", "face", "faceorientation", "orientation", "direction")
LAYOUT = (
    f"DIR/{ANNOTATION_DIR}/{ANNOTATION_FILE} (or DIR/{ANNOTATION_FILE}; RAP v1 or v2, MATLAB "
    f"v5 or v7.3, holding the struct {STRUCT}) and DIR/{IMAGE_DIR}/ with the images it lists "
    "(e.g. CAM01_2014-02-15_..._frame218_line1.png)."
)
_CAMERA = re.compile(r"^CAM(\d+)", re.IGNORECASE)

log = logging.getLogger("reidcore")


# ---------------------------------------------------------------- .mat loading


def _h5_value(f, obj) -> Any:
    """A MATLAB v7.3 object as scipy's ``simplify_cells`` would give it."""
    import h5py

    if isinstance(obj, h5py.Group):
        return {k: _h5_value(f, obj[k]) for k in obj if not k.startswith("#")}
    cls = obj.attrs.get("MATLAB_class", b"")
    cls = cls.decode() if isinstance(cls, bytes) else str(cls)
    if obj.attrs.get("MATLAB_empty", 0):
        return np.zeros(0)
    data = obj[()]
    if isinstance(data, np.ndarray) and data.dtype == h5py.ref_dtype:
        items = [_h5_value(f, f[ref]) for ref in data.ravel()]  # C order = MATLAB linear order
        return items[0] if len(items) == 1 else items
    if cls == "char":
        return "".join(chr(int(c)) for c in np.asarray(data).ravel())
    arr = np.asarray(data).T
    return arr.item() if arr.size == 1 else np.squeeze(arr)


def load_annotation(mat_path: Path) -> dict[str, Any]:
    """The ``RAP_annotation`` struct of a RAP ``.mat`` file as a dict of fields.

    MATLAB v7.3 files (HDF5) are read with h5py, older ones with ``scipy.io.loadmat``
    (``simplify_cells=True``): structs become dicts, cell arrays lists or object arrays,
    strings ``str``, numeric arrays squeezed ndarrays (MATLAB's row/column orientation).

    Raises:
        DatasetError: the file is missing, unreadable, or holds no ``RAP_annotation``
            struct; the message names the file.
    """
    if not mat_path.is_file():
        raise DatasetError(f"Missing RAP annotation file {mat_path}. Expected layout: {LAYOUT}")
    import h5py

    try:
        if h5py.is_hdf5(str(mat_path)):
            with h5py.File(mat_path, "r") as f:
                if STRUCT not in f:
                    raise DatasetError(
                        f"{mat_path} holds no {STRUCT!r} struct (it has {', '.join(sorted(f))})"
                    )
                ann = _h5_value(f, f[STRUCT])
        else:
            from scipy.io import loadmat

            mat = loadmat(str(mat_path), simplify_cells=True)
            if STRUCT not in mat:
                keys = ", ".join(k for k in mat if not k.startswith("__")) or "nothing"
                raise DatasetError(f"{mat_path} holds no {STRUCT!r} struct (it has {keys})")
            ann = mat[STRUCT]
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 -- scipy and h5py raise many kinds
        raise DatasetError(f"Cannot read {mat_path} as a MATLAB file: {exc}") from exc
    if not isinstance(ann, dict):
        raise DatasetError(f"{mat_path}: {STRUCT} is not a struct (got {type(ann).__name__})")
    return ann


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True)
class RapAnnotation:
    """A parsed RAP annotation.

    Attributes:
        version: 1 or 2.
        names: image file names, length N.
        rap_views: ``(N,)`` int64 index into :data:`RAP_VIEWS`, -1 without exactly one view.
        pids: ``(N,)`` int64 ``person_identity`` (v2), -1 for v1.
        splits: per partition, ``(train, test)`` 0-based int64 row indices (v2's train
            includes ``val_index``).
    """

    version: int
    names: list[str]
    rap_views: np.ndarray
    pids: np.ndarray
    splits: list[tuple[np.ndarray, np.ndarray]]


def _norm(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _field(ann: Mapping[str, Any], keys: tuple[str, ...], where: Path, what: str) -> Any:
    for key in keys:
        if key in ann:
            return ann[key]
    raise DatasetError(
        f"{where}: {STRUCT} lacks {what} (field {' or '.join(repr(k) for k in keys)}); it has "
        f"{', '.join(sorted(ann))}. Expected RAP v1 (imagesname, label, attribute_eng, partion) "
        "or RAP v2 (name, data, attribute, partition_attribute, person_identity)"
    )


def _as_list(value: Any) -> list:
    if isinstance(value, list):
        return value
    if isinstance(value, np.ndarray):
        return list(value.ravel()) if value.dtype == object else [value]
    return [value]


def _strings(value: Any) -> list[str]:
    if isinstance(value, np.ndarray) and value.dtype != object:
        return [str(v) for v in value.ravel()]
    return [
        str(np.asarray(v).ravel()[0]) if isinstance(v, np.ndarray) else str(v)
        for v in _as_list(value)
    ]


def _indices(value: Any, n: int, where: Path, what: str) -> np.ndarray:
    try:
        idx = np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: {what} is not numeric") from exc
    if idx.size and (np.any(idx != np.round(idx)) or idx.min() < 1 or idx.max() > n):
        raise DatasetError(f"{where}: {what} has an index outside 1..{n} (1-based)")
    return idx.astype(np.int64) - 1


def _views(labels: np.ndarray, attrs: list[str], version: int, where: Path) -> np.ndarray:
    """``(N,)`` RAP view index (0..3) per image, -1 without exactly one viewpoint."""
    keys = [_norm(a) for a in attrs]
    wanted = [_norm(v) for v in RAP_VIEWS]
    if all(w in keys for w in wanted):
        flags = labels[:, [keys.index(w) for w in wanted]] == 1
        return np.where(flags.sum(axis=1) == 1, flags.argmax(axis=1), -1).astype(np.int64)
    named = [i for i, k in enumerate(keys) if k in VIEWPOINT_NAMES]
    if named:
        column, source = named[0], f"attribute {attrs[named[0]]!r}"
    elif version == 2 and labels.shape[1] > RAP2_VIEWPOINT_COLUMN:
        column, source = RAP2_VIEWPOINT_COLUMN, f"data column {RAP2_VIEWPOINT_COLUMN + 1}"
    else:
        raise DatasetError(
            f"{where}: no view labels found: neither the attributes {', '.join(RAP_VIEWS)} nor "
            f"a viewpoint attribute ({', '.join(VIEWPOINT_NAMES)})"
        )
    values = labels[:, column]
    if np.any((values < 0) | (values > len(RAP_VIEWS)) | (values != np.round(values))):
        raise DatasetError(
            f"{where}: the viewpoint ({source}) must hold 1..{len(RAP_VIEWS)} "
            f"({', '.join(RAP_VIEWS)}) or 0, found {np.unique(values)[:10]}"
        )
    return np.where(values >= 1, values - 1, -1).astype(np.int64)


def parse_annotation(ann: Mapping[str, Any], where: Path) -> RapAnnotation:
    """Parse a ``RAP_annotation`` struct (from :func:`load_annotation`).

    Args:
        ann: the struct's fields.
        where: the file, for messages.

    Raises:
        DatasetError: a field is missing or inconsistent (lengths, index ranges, view
            values); the message names the file and the field.
    """
    version = 2 if ("data" in ann or "person_identity" in ann) else 1
    names = _strings(_field(ann, ("imagesname", "name"), where, "the image names"))
    n = len(names)
    labels = np.asarray(_field(ann, ("label", "data"), where, "the attribute labels"))
    try:
        labels = labels.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{where}: the attribute labels are not numeric") from exc
    if labels.ndim == 1:  # a single image, squeezed
        labels = labels[None, :]
    if labels.ndim != 2 or labels.shape[0] != n:
        raise DatasetError(f"{where}: {n} image names but attribute labels of shape {labels.shape}")
    attrs = _strings(_field(ann, ("attribute_eng", "attribute"), where, "the attribute names"))
    if len(attrs) != labels.shape[1]:
        raise DatasetError(
            f"{where}: {len(attrs)} attribute names but {labels.shape[1]} label columns"
        )
    views = _views(labels, attrs, version, where)
    if "person_identity" in ann:
        pids = np.atleast_1d(np.asarray(ann["person_identity"], dtype=np.float64)).ravel()
        if pids.size != n:
            raise DatasetError(f"{where}: person_identity has {pids.size} entries, {n} images")
        pids = pids.astype(np.int64)
    else:
        pids = np.full(n, -1, dtype=np.int64)
    parts = _field(
        ann, ("partion", "partition", "partition_attribute"), where, "the train/test partition"
    )
    splits = []
    for i, part in enumerate(_as_list(parts)):
        if not isinstance(part, Mapping):
            raise DatasetError(f"{where}: partition {i} is not a struct")
        if "trainindex" in part:
            train = _indices(part["trainindex"], n, where, f"partition {i} trainindex")
        else:
            train = _indices(
                _field(part, ("train_index",), where, f"partition {i}'s train index"),
                n,
                where,
                f"partition {i} train_index",
            )
            if "val_index" in part:
                val = _indices(part["val_index"], n, where, f"partition {i} val_index")
                train = np.concatenate([train, val])
        key = "testindex" if "testindex" in part else "test_index"
        test = _indices(
            _field(part, (key,), where, f"partition {i}'s test index"),
            n,
            where,
            f"partition {i} {key}",
        )
        splits.append((train, test))
    if not splits:
        raise DatasetError(f"{where}: the partition is empty")
    return RapAnnotation(version, names, views, pids, splits)


# ---------------------------------------------------------------- reader


def find_annotation(root: Path) -> Path:
    """``root/RAP_annotation/RAP_annotation.mat``, else ``root/RAP_annotation.mat``.

    Raises:
        DatasetError: neither exists.
    """
    for path in (root / ANNOTATION_DIR / ANNOTATION_FILE, root / ANNOTATION_FILE):
        if path.is_file():
            return path
    raise DatasetError(
        f"Missing RAP annotation file {root / ANNOTATION_DIR / ANNOTATION_FILE}. "
        f"Expected layout: {LAYOUT}"
    )


def _camid(name: str) -> int:
    match = _CAMERA.match(Path(name).name)
    return int(match.group(1)) - 1 if match and int(match.group(1)) >= 1 else 0


def build_split(
    parsed: RapAnnotation, image_dir: Path, name: str, split_id: int, all_images: bool
) -> Split:
    """The :class:`~reidcore.data.Split` of a parsed annotation (see the module docstring).

    Raises:
        DatasetError: ``split_id`` is out of range, ``image_dir`` is missing, or images
            the annotation lists are missing from it.
    """
    from reid_pse.views import VIEWS

    if not 0 <= split_id < len(parsed.splits):
        raise DatasetError(
            f"RAP: split_id must be in 0..{len(parsed.splits) - 1} (the annotation has "
            f"{len(parsed.splits)} partitions), got {split_id}"
        )
    if not image_dir.is_dir():
        raise DatasetError(f"Missing RAP image folder {image_dir}. Expected layout: {LAYOUT}")
    present = set(os.listdir(image_dir))
    missing = [
        n
        for n in parsed.names
        if (n not in present if "/" not in n else not (image_dir / n).is_file())
    ]
    if missing:
        raise DatasetError(
            f"{len(missing)} of the {len(parsed.names)} images listed in the RAP annotation are "
            f"missing from {image_dir} (first: {missing[0]}). Expected layout: {LAYOUT}"
        )

    def samples(rows: np.ndarray) -> list[Sample]:
        out = []
        for i in rows:
            v = int(parsed.rap_views[i])
            if v < 0:
                continue
            out.append(
                Sample(
                    str(image_dir / parsed.names[i]),
                    int(parsed.pids[i]),
                    _camid(parsed.names[i]),
                    {"view": VIEWS[PSE_VIEW_OF_RAP[v]], "rap_view": RAP_VIEWS[v]},
                )
            )
        return out

    if all_images:
        train, gallery = samples(np.arange(len(parsed.names))), []
    else:
        rows_train, rows_test = parsed.splits[split_id]
        train, gallery = samples(rows_train), samples(rows_test)
    dropped = int(np.sum(parsed.rap_views < 0))
    if dropped:
        log.info(
            "RAP: %d of %d images have no single viewpoint and are left out",
            dropped,
            len(parsed.names),
        )
    if not train:
        raise DatasetError(f"RAP: no training image with a viewpoint label in {image_dir.parent}")
    return Split(name, train, [], gallery)


def read_rap(
    root: str | os.PathLike | None,
    *,
    split_id: int = 0,
    all_images: bool = False,
    name: str = "rap",
    cache: bool = True,
) -> Split:
    """Read RAP (v1 or v2) as a view-labelled dataset for PSE's view predictor.

    Args:
        root: the folder holding ``RAP_annotation/RAP_annotation.mat`` and ``RAP_dataset/``.
        split_id: which of the annotation's random partitions (0-based; RAP has 5).
        all_images: put every view-labelled image in ``train`` (gallery empty).
        name: the :attr:`Split.name`.
        cache: use and write the parsed-index cache (``$REIDCORE_CACHE/index/``).

    Returns:
        A :class:`~reidcore.data.Split`: ``train`` = the partition's training images,
        ``gallery`` = its test images, ``query`` empty; ``extras["view"]`` is
        ``"front"``/``"back"``/``"side"`` and ``extras["rap_view"]`` RAP's viewpoint;
        ``pid`` = ``person_identity`` (v2) or -1; images without a viewpoint are left out.

    Raises:
        DatasetError: ``root`` is ``None`` or missing, the annotation file or image folder
            is missing, the annotation is malformed, ``split_id`` is out of range, or a
            listed image is missing; the message names the file, field or value.
    """
    from reid_datasets._common import cached_split, require_root

    base = require_root(root, "rap", LAYOUT)
    if isinstance(split_id, str) and split_id.strip().isdigit():  # from a command line
        split_id = int(split_id)
    if isinstance(all_images, str):
        all_images = all_images.strip().lower() in ("1", "true", "yes")
    if isinstance(split_id, bool) or not isinstance(split_id, (int, np.integer)):
        raise DatasetError(f"RAP: split_id must be an int, got {split_id!r}")
    mat_path = find_annotation(base)
    image_dir = base / IMAGE_DIR

    def build() -> Split:
        parsed = parse_annotation(load_annotation(mat_path), mat_path)
        return build_split(parsed, image_dir, name, int(split_id), bool(all_images))

    return cached_split(
        "rap",
        base,
        lambda: [mat_path, image_dir],
        build,
        options={"name": name, "split_id": int(split_id), "all_images": bool(all_images)},
        cache=cache,
    )
