"""Body keypoints for the pose maps of PSE: joint order, loaders, and attaching them to a split.

PSE (Sarfraz et al., CVPR 2018, Sec. 3.2 "Pose maps") feeds the network the RGB image
stacked with one confidence map per body joint, at training *and* test time, so every
image of a split (train, query and gallery) needs keypoints. This module finds them.

Keypoint convention (what :func:`attach_keypoints` stores in ``Sample.extras["keypoints"]``):
a ``(J, 3)`` float32 array, ``J = 14`` joints in :data:`JOINTS` order (the Market-1501
body-point annotation's order), columns ``x, y`` in 0-based pixels of the **original**
image file (pixel centres at integer coordinates: the top-left pixel is ``(0, 0)``) and a
visibility / confidence in ``[0, 1]``; a missing joint has confidence 0 (and ``x = y = 0``
when its position is unknown).

Keypoint sources, tried per image in this order by :func:`attach_keypoints`:

1. ``extras["keypoints"]`` already set by the reader (the ``synthetic`` dataset does);
2. an explicit ``keypoints=`` path given by the caller (a CSV, a ``.mat``, a folder);
3. ``keypoints.csv`` in the data folder (:func:`read_keypoints_csv`; the format of
   ``market1501-holdout/keypoints.csv``: ``image,x0..x13,y0..y13`` in **1-based** pixels,
   a value ``<= 0`` or empty/NaN marks a missing joint; optional ``v0..v13`` columns);
4. a ``*.mat`` file holding a ``pp`` matrix (the market1501_body_point annotation, e.g.
   ``market1501_14point_train.mat`` for ``bounding_box_train/``, matched to its folder by
   name or row count; :mod:`reid_pse.keypoint_mat`);
5. a folder ``keypoints/`` of per-image arrays ``<image stem>.npy`` (``(J, 3)`` float32,
   0-based pixels; :func:`read_keypoint_array`), as written by an estimator;
6. a keypoint estimator registered through the ``reid_keypoint_estimators`` hook and named
   by the caller (``estimator(paths, **options) -> (N, J, 3)``; this plugin ships
   ``keypointrcnn``, :mod:`reid_pse.keypointrcnn`).

"The data folder" is the ``--data`` folder and the folder holding the split's part folders
(e.g. ``DIR/Market-1501-v15.09.15/``) when that differs. An image that none of the
sources covers raises :class:`KeypointsError`, naming the image and the places searched.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import attrs
import numpy as np
from reid_datasets.joints import FLIP_PAIRS, FLIP_PERMUTATION, JOINTS, NUM_JOINTS  # noqa: F401
from reid_datasets.keypoints_csv import (
    KeypointsError,
    csv_header,
    read_keypoints_csv,
    to_one_based,
)

from reid_pse.keypoint_mat import (
    MAT_KEY,
    mat_has_keypoints,
    mat_table,
)
from reidcore.atomic import atomic_open
from reidcore.data import Sample, Split

#: File name of the keypoint table looked up in the data folder.
CSV_NAME = "keypoints.csv"
#: Folder of per-image ``<stem>.npy`` keypoint arrays looked up in the data folder.
FOLDER_NAME = "keypoints"
PART_NAMES = ("train", "query", "gallery")


# ------------------------------------------------------------------ normalising


def missing_keypoints(num_joints: int = NUM_JOINTS) -> np.ndarray:
    """All joints missing: ``(J, 3)`` float32 zeros."""
    return np.zeros((num_joints, 3), np.float32)


def as_keypoints(value, where: str = "keypoints") -> np.ndarray:
    """Validate and normalise one image's keypoints to ``(J, 3)`` float32, 0-based pixels.

    Accepts ``(J, 3)`` ``[x, y, confidence]`` or ``(J, 2)`` ``[x, y]`` (confidence 1 for
    finite points). A joint with a non-finite coordinate or a confidence ``<= 0`` (or
    NaN) becomes missing: confidence 0 and, when a coordinate is not finite, ``x = y = 0``.
    Confidences are clipped to ``[0, 1]``.

    Raises:
        KeypointsError: the shape is not ``(14, 2)``/``(14, 3)``; the message names ``where``.
    """
    arr = np.array(value, dtype=np.float32, copy=True)
    if arr.ndim != 2 or arr.shape[0] != NUM_JOINTS or arr.shape[1] not in (2, 3):
        raise KeypointsError(
            f"{where}: keypoints must have shape ({NUM_JOINTS}, 3) [x, y, confidence] or "
            f"({NUM_JOINTS}, 2), got {arr.shape}"
        )
    if arr.shape[1] == 2:
        arr = np.concatenate([arr, np.ones((NUM_JOINTS, 1), np.float32)], axis=1)
    finite = np.isfinite(arr[:, 0]) & np.isfinite(arr[:, 1])
    conf = np.nan_to_num(arr[:, 2], nan=0.0, posinf=1.0, neginf=0.0)
    arr[:, 2] = np.where(finite, np.clip(conf, 0.0, 1.0), 0.0)
    arr[~finite, :2] = 0.0
    return arr


def sample_keypoints(sample: Sample) -> np.ndarray:
    """``sample.extras["keypoints"]`` as ``(J, 3)`` float32.

    Raises:
        KeypointsError: the sample has none (names the image and how to attach them).
    """
    kp = sample.extras.get("keypoints")
    if kp is None:
        raise KeypointsError(
            f"image {sample.path} has no keypoints; read the dataset as a '*-pose-maps' "
            "variant or call reid_pse.keypoints.attach_keypoints(split, root) first"
        )
    return as_keypoints(kp, sample.path)


# ------------------------------------------------------------------ loaders


def write_keypoints_csv(path: str | os.PathLike, rows: Iterable[tuple[str, np.ndarray]]) -> Path:
    """Write ``(image name, (J, 3) 0-based keypoints)`` rows atomically (temp + rename).

    The format is :func:`read_keypoints_csv`'s without ``v`` columns (that of
    ``market1501-holdout/keypoints.csv``): 1-based pixels, missing joints as 0, values
    with up to two decimals. Returns ``path``.
    """
    path = Path(path)
    with atomic_open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(csv_header())
        for name, kp in rows:
            xs, ys = to_one_based(as_keypoints(kp, name))
            writer.writerow([name, *(_fmt(v) for v in xs), *(_fmt(v) for v in ys)])
    return path


def _fmt(v: float) -> str:
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def read_keypoint_array(path: str | os.PathLike) -> np.ndarray:
    """One per-image ``.npy`` file: ``(J, 3)`` (or ``(J, 2)``) 0-based pixels -> ``(J, 3)`` float32.

    Raises:
        KeypointsError: unreadable file or wrong shape (e.g. a ``(J, H, W)`` pose map
            written by ``pse pose-maps``, which is not a keypoint array); names the file.
    """
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise KeypointsError(f"cannot read keypoint array {path}: {exc}") from exc
    return as_keypoints(arr, str(path))


def write_keypoint_array(path: str | os.PathLike, keypoints) -> Path:
    """Write one image's ``(J, 3)`` float32 keypoints to ``path`` (``.npy``) atomically."""
    path = Path(path)
    with atomic_open(path, "wb") as f:
        np.save(f, as_keypoints(keypoints, str(path)))
    return path


def estimate_keypoints(name: str, paths: Sequence[str], **options) -> np.ndarray:
    """Run the keypoint estimator registered as ``name`` (``reid_keypoint_estimators``).

    ``options`` are passed to the estimator as keywords (e.g. ``weights=PATH`` for
    ``keypointrcnn``; :mod:`reid_pse.keypointrcnn`).

    Returns:
        ``(N, J, 3)`` float32, 0-based pixels of each image, confidence in ``[0, 1]``.

    Raises:
        UnknownNameError: no plugin registers ``name`` (lists the known estimators).
        KeypointsError: the estimator returns an array of the wrong shape.
    """
    from reidcore.registry import registry

    estimator = registry("keypoint_estimator").get(name)
    out = np.asarray(estimator(list(paths), **options), dtype=np.float32)
    if out.shape[:1] != (len(paths),) or out.ndim != 3:
        raise KeypointsError(
            f"keypoint estimator {name!r} returned shape {out.shape} for {len(paths)} images; "
            f"expected ({len(paths)}, {NUM_JOINTS}, 3)"
        )
    return np.stack([as_keypoints(k, f"estimator {name!r}, {p}") for k, p in zip(out, paths,
                                                                                 strict=True)])


# ------------------------------------------------------------------ sources


@attrs.frozen
class Source:
    """A place keypoints may come from.

    ``lookup(samples) -> {index into samples: (J, 3)}`` for the samples it covers;
    ``describe`` names the place for messages and summaries.
    """

    describe: str
    lookup: Callable[[Sequence[Sample]], dict[int, np.ndarray]]


def table_lookup(table: Mapping[str, np.ndarray], base: Path | None):
    """Match samples to a ``{image: keypoints}`` table.

    A sample matches the entry named by its path relative to ``base`` (POSIX separators),
    else the entry named by the longest trailing part of its path (``query/x.jpg``, then
    ``x.jpg``), else its absolute path, else the only entry with its file stem.
    """
    by_stem: dict[str, str | None] = {}
    for key in table:
        stem = Path(key).stem
        by_stem[stem] = None if stem in by_stem else key  # ambiguous stems match nothing
    depth = max((key.count("/") + 1 for key in table), default=1)

    def lookup(samples: Sequence[Sample]) -> dict[int, np.ndarray]:
        out = {}
        for i, s in enumerate(samples):
            p = Path(s.path)
            keys = []
            if base is not None:
                try:
                    keys.append(p.relative_to(base).as_posix())
                except ValueError:
                    pass
            parts = p.parts
            keys += ["/".join(parts[-n:]) for n in range(min(depth, len(parts)), 0, -1)]
            keys.append(Path(os.path.abspath(p)).as_posix())  # tables of absolute paths
            key = next((k for k in keys if k in table), None) or by_stem.get(p.stem)
            if key is not None:
                out[i] = table[key]
        return out

    return lookup


def csv_source(path: Path) -> Source:
    """Keypoints of a CSV table (:func:`read_keypoints_csv`), loaded on first use."""
    cache: dict = {}

    def lookup(samples):
        if "f" not in cache:
            cache["f"] = table_lookup(read_keypoints_csv(path), path.parent)
        return cache["f"](samples)

    return Source(f"{path} (1-based CSV)", lookup)


def mat_source(path: Path, folders: Sequence[Path] | None = None) -> Source:
    """Keypoints of a market1501_body_point ``.mat`` ``pp`` matrix, read on first use.

    Its rows annotate the sorted image files of one folder, found by the file's published
    name, a folder's name, or its row count (:func:`reid_pse.keypoint_mat.match_mat_folder`;
    e.g. ``market1501_14point_train.mat`` -> ``bounding_box_train/``). ``folders`` are the
    folders holding the split's images (default: those of the samples looked up).

    Raises (on lookup):
        KeypointsError: the row count disagrees with the folder the name matched, or no
            folder matches; names the file, its row count and the folder(s).
    """
    cache: dict = {}

    def lookup(samples):
        if "t" not in cache:
            dirs = folders if folders is not None else sample_folders(samples)
            cache["t"] = mat_table(path, dirs)[0]
        table = cache["t"]
        out = {}
        for i, s in enumerate(samples):
            kp = table.get(os.path.abspath(s.path))
            if kp is not None:
                out[i] = kp
        return out

    return Source(f"{path} ({MAT_KEY!r} matrix)", lookup)


def sample_folders(samples: Iterable[Sample]) -> list[Path]:
    """The distinct folders holding ``samples``' images (absolute), sorted."""
    return [Path(d) for d in sorted({os.path.dirname(os.path.abspath(s.path)) for s in samples})]


def folder_source(folder: Path) -> Source:
    """Per-image arrays ``folder/<image stem>.npy`` (also ``folder/<relative dir>/<stem>.npy``)."""

    def lookup(samples):
        out = {}
        for i, s in enumerate(samples):
            p = Path(s.path)
            for cand in (folder / p.parent.name / f"{p.stem}.npy", folder / f"{p.stem}.npy"):
                if cand.is_file():
                    out[i] = read_keypoint_array(cand)
                    break
        return out

    return Source(f"{folder}/<image stem>.npy", lookup)


def estimator_source(name: str, options: Mapping[str, object] | None = None) -> Source:
    """Keypoints estimated by the registered estimator ``name`` for every remaining image."""

    def lookup(samples):
        kps = estimate_keypoints(name, [s.path for s in samples], **dict(options or {}))
        return dict(enumerate(kps))

    return Source(f"keypoint estimator {name!r}", lookup)


def path_source(path: str | os.PathLike, folders: Sequence[Path] | None = None) -> Source:
    """A source for an explicit path: a CSV file, a ``.mat`` file, or a folder.

    A folder is read through its ``keypoints.csv`` when it has one (e.g. the output of
    ``pse pose-maps``), else as a folder of per-image ``.npy`` arrays.

    Raises:
        KeypointsError: the path does not exist or has an unknown suffix.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        return csv_source(path / CSV_NAME) if (path / CSV_NAME).is_file() else folder_source(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        return csv_source(path)
    if path.is_file() and path.suffix.lower() == ".mat":
        return mat_source(path, folders)
    raise KeypointsError(
        f"keypoint source {path} is not an existing .csv file, .mat file or folder"
    )


def data_dirs(split: Split, root: str | os.PathLike | None) -> list[Path]:
    """The folders searched for keypoint files, deduplicated, in this order.

    ``root`` (the ``--data`` folder) and the common folder of the folders holding the
    split's images (the dataset folder: ``DIR`` for ``DIR/query/x.jpg`` and
    ``DIR/bounding_box_test/y.jpg``, e.g. ``DIR/Market-1501-v15.09.15/`` when ``--data``
    is its parent).
    """
    dirs: list[Path] = []
    if root is not None:
        dirs.append(Path(root).expanduser())
    parents = sorted({os.path.dirname(os.path.abspath(s.path))
                      for part in PART_NAMES for s in getattr(split, part)})
    if parents:
        dirs.append(Path(os.path.commonpath(parents)))
    seen, out = set(), []
    for d in dirs:
        key = os.path.abspath(d)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def default_sources(dirs: Sequence[Path], folders: Sequence[Path] | None = None) -> list[Source]:
    """The file sources found in ``dirs``, in search order: CSV, ``.mat``, per-image folder.

    ``folders``: the folders holding the split's images, which the ``.mat`` files are
    matched to (:func:`mat_source`).
    """
    sources: list[Source] = []
    for d in dirs:
        if (d / CSV_NAME).is_file():
            sources.append(csv_source(d / CSV_NAME))
    for d in dirs:
        try:
            mats = sorted(d.glob("*.mat"))
        except OSError:
            mats = []
        sources.extend(mat_source(m, folders) for m in mats if mat_has_keypoints(m))
    for d in dirs:
        if (d / FOLDER_NAME).is_dir():
            sources.append(folder_source(d / FOLDER_NAME))
    return sources


def searched_places(dirs: Sequence[Path]) -> list[str]:
    """Human-readable list of the default places, for error messages."""
    places = []
    for d in dirs:
        places += [str(d / CSV_NAME), f"{d}/*.mat with {MAT_KEY!r}",
                   f"{d / FOLDER_NAME}/<image stem>.npy"]
    return places


# ------------------------------------------------------------------ attaching


def attach_keypoints(
    split: Split,
    root: str | os.PathLike | None = None,
    *,
    keypoints: str | os.PathLike | None = None,
    estimator: str | None = None,
    estimator_options: Mapping[str, object] | None = None,
    sources: Sequence[Source] | None = None,
) -> Split:
    """Give every sample of ``split`` (train, query and gallery) ``extras["keypoints"]``.

    Per image, the first source that covers it wins, in the order: keypoints already in
    ``extras`` (normalised by :func:`as_keypoints`), ``keypoints`` (an explicit CSV, ``.mat``
    or folder, :func:`path_source`), the files found by :func:`default_sources` in
    :func:`data_dirs` (``root`` and the split's dataset folder: ``keypoints.csv``,
    ``*.mat`` with ``pp``, ``keypoints/<stem>.npy``), then the registered keypoint
    ``estimator`` (called once, on the images still without keypoints). ``sources``
    replaces the file sources (explicit path and default files) when given.

    Every sample also gets ``extras["keypoint_source"]``: a string naming its source.

    Args:
        split: the dataset as read by a ``reid_datasets`` reader.
        root: the ``--data`` folder (or ``None``).
        keypoints: an explicit keypoint file or folder, searched before the defaults.
        estimator: the name of a ``reid_keypoint_estimators`` estimator, the last resort.
        estimator_options: keyword options for the estimator (e.g. ``{"weights": PATH}``
            for ``keypointrcnn``).
        sources: custom sources instead of the file ones (the estimator still comes last).

    Returns:
        A new :class:`~reidcore.data.Split` (same name, samples, order) whose samples carry
        ``extras["keypoints"]``: ``(J, 3)`` float32, 0-based pixels of the original image.

    Raises:
        KeypointsError: an image has keypoints in none of the sources: the message names
            the first such image, how many images lack keypoints, and the places searched;
            or a keypoint file is malformed.
        UnknownNameError: ``estimator`` is not registered.
    """
    samples = [s for part in PART_NAMES for s in getattr(split, part)]
    found: dict[int, np.ndarray] = {}
    origin: dict[int, str] = {}
    for i, s in enumerate(samples):
        if s.extras.get("keypoints") is not None:
            found[i] = as_keypoints(s.extras["keypoints"], f"{s.path} (extras['keypoints'])")
            origin[i] = "extras"
    if sources is None:
        dirs = data_dirs(split, root)
        folders = sample_folders(samples)
        sources = ([path_source(keypoints, folders)] if keypoints is not None else [])
        sources += default_sources(dirs, folders)
        places = ([str(keypoints)] if keypoints is not None else []) + searched_places(dirs)
    else:
        places = [src.describe for src in sources]
    sources = list(sources)
    if estimator is not None:
        sources.append(estimator_source(estimator, estimator_options))
        places.append(f"keypoint estimator {estimator!r}")
    for src in sources:
        todo = [i for i in range(len(samples)) if i not in found]
        if not todo:
            break
        hits = src.lookup([samples[i] for i in todo])
        for j, kp in hits.items():
            i = todo[j]
            found[i] = as_keypoints(kp, f"{samples[i].path} ({src.describe})")
            origin[i] = src.describe
    lacking = [i for i in range(len(samples)) if i not in found]
    if lacking:
        first = samples[lacking[0]].path
        hint = ("" if estimator is not None else
                ", or estimate them: `python -m reidcore pse keypoints --dataset NAME --data "
                "DIR` writes DIR/keypoints.csv (estimator keypointrcnn), or let the dataset "
                "estimate what is missing with the reader option keypoint_estimator="
                "keypointrcnn (`run ... --dataset-option keypoint_estimator=keypointrcnn`)")
        raise KeypointsError(
            f"no keypoints for image {first} ({len(lacking)} of {len(samples)} images of "
            f"{split.name!r} lack them). Searched: extras['keypoints'] of the reader, "
            f"{'; '.join(places) if places else '(no keypoint file found)'}. Provide "
            f"{CSV_NAME} (image,x0..x13,y0..y13 in 1-based pixels) in the data folder{hint}"
        )
    out = iter(
        attrs.evolve(s, extras={**s.extras, "keypoints": found[i], "keypoint_source": origin[i]})
        for i, s in enumerate(samples)
    )
    parts = {part: [next(out) for _ in getattr(split, part)] for part in PART_NAMES}
    return Split(split.name, parts["train"], parts["query"], parts["gallery"])
