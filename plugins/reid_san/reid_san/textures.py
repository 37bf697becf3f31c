"""Texture targets for SAN: texture folders, the PIT-style paired dataset, the synthetic
dataset's true textures, and pseudo textures warped from body keypoints.

SAN (Jin et al., "Semantics-Aligned Representation Learning for Person
Re-identification", AAAI 2020) supervises its decoder SA-Dec with a *texture image* per
training image (Sec. 3.2): the full body surface in a fixed, densely aligned layout
(:mod:`reid_san.texture_layout`). The paper renders such pairs for its PIT dataset
(Sec. 3.3) and, for re-ID datasets, predicts pseudo ground truth with a network trained
on PIT (SAN-PG). Sources here, all in the same layout:

* a **texture folder** beside a dataset, the authors' layout: ``texture_<dataset>/`` with
  one texture per image under the image's file name (their loader replaces the image
  folder ``images_labeled`` by ``texture_cuhk03_labeled``), e.g.
  ``market1501/texture_market1501/0002_c1s1_000451_03.png``; we accept the image's exact
  file name or its stem with ``.png``, ``.jpg`` or ``.jpeg`` (:func:`attach_textures`);
* a **PIT-style** paired dataset (:func:`read_pit`, registered as ``pit``);
* the **synthetic** dataset with its true textures (:func:`read_synthetic_textures`,
  registered as ``synthetic-textures``);
* **keypoint warps** (:func:`texture_from_keypoints`, :func:`write_keypoint_textures`):
  body parts cut out of the image along 14 keypoints and warped into the layout, a
  geometric stand-in for SAN-PG's pseudo ground truth when no PIT-trained generator is
  available (our substitute, not the paper's method).

Keypoint convention (that of :mod:`reid_datasets.keypoints_csv`, as reid-pse's):
``(14, 3)`` float ``x, y, visibility`` in 0-based pixels of the image with pixel centres
at integer coordinates (the top-left pixel is ``(0, 0)``; Market-1501's 1-based CSV
values minus 1), Market-1501 body-point order:
0 head (top of the head in the Market annotation), 1 neck, 2-4 right shoulder, elbow,
wrist, 5-7 left shoulder, elbow, wrist, 8-10 right hip, knee, ankle, 11-13 left hip,
knee, ankle. A joint is present when its visibility is > 0.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from reid_datasets.joints import FLIP_PAIRS, NUM_JOINTS
from reid_datasets.keypoints_csv import read_keypoints_csv as read_keypoints_csv  # public here

from reid_san.texture_layout import DEFAULT_SIZE, LIMB_JOINTS, check_size, part_boxes
from reidcore.atomic import atomic_open
from reidcore.data import Sample, Split
from reidcore.errors import DatasetError

log = logging.getLogger("reidcore")

#: File extensions a texture may have (compared case-insensitively; PNG preferred).
TEXTURE_EXTENSIONS = (".png", ".jpg", ".jpeg")
#: Limb strip width as a fraction of the torso length (mid-shoulders to mid-hips).
LIMB_WIDTH = {"upper_arm": 0.22, "lower_arm": 0.18, "upper_leg": 0.30, "lower_leg": 0.24}
#: Minimum torso width at the shoulders and at the hips, fraction of the torso length
#: (side views bring the two shoulders together; the torso keeps this width).
MIN_SHOULDER_WIDTH, MIN_HIP_WIDTH = 0.45, 0.30
#: Head box width as a fraction of its height (top of the head to the neck).
HEAD_ASPECT = 0.8
HEAD_POINTS = ("top", "centre")


# ----------------------------------------------------------------------- texture folders


def texture_folder(root: str | os.PathLike, dataset: str) -> Path:
    """The authors' texture folder of a dataset: ``root/texture_<dataset>``.

    ``root`` is the dataset's ``--data`` folder (the one holding ``bounding_box_train/``
    for Market-1501), so the textures lie beside the image folders, as in the authors'
    ``cuhk03/texture_cuhk03_labeled/``.
    """
    return Path(root).expanduser() / f"texture_{dataset}"


def _texture_index(folder: Path) -> tuple[set[str], dict[str, str]]:
    names = set(os.listdir(folder))
    by_stem: dict[str, str] = {}
    for ext in reversed(TEXTURE_EXTENSIONS):  # .png wins over .jpg for the same stem
        for name in names:
            stem, dot, e = name.rpartition(".")
            if dot and "." + e.lower() == ext:
                by_stem[stem] = name
    return names, by_stem


def attach_textures(samples: Sequence[Sample], folder: str | os.PathLike) -> list[Sample]:
    """Set ``extras["texture"]`` of every sample to its texture file in ``folder``.

    The texture of ``.../IMAGE.jpg`` is ``folder/IMAGE.jpg`` (the authors' naming) or
    ``folder/IMAGE.png`` / ``.jpg`` / ``.jpeg`` (same stem); the folder is flat, so
    image file names must be unique (they are in Market-1501, DukeMTMC, CUHK03, MSMT17).

    Args:
        samples: the images (usually ``split.train``: only training uses textures).
        folder: the texture folder, e.g. :func:`texture_folder`.

    Returns:
        New samples (same order, other extras kept) with ``extras["texture"]``: the
        texture's path as a string.

    Raises:
        DatasetError: ``folder`` is not a folder, or an image has no texture; the
            message names the first such image, the expected file and the count.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DatasetError(
            f"Texture folder {folder} does not exist: SAN needs one texture image per "
            "training image, named like the image (e.g. texture_market1501/<image stem>.png "
            "beside bounding_box_train/); write keypoint textures with "
            "reid_san.textures.write_keypoint_textures or point to another folder"
        )
    names, by_stem = _texture_index(folder)
    out, missing = [], []
    for s in samples:
        fname = os.path.basename(s.path)
        name = fname if fname in names else by_stem.get(os.path.splitext(fname)[0])
        if name is None:
            missing.append(s)
            continue
        out.append(Sample(s.path, s.pid, s.camid, {**s.extras, "texture": str(folder / name)}))
    if missing:
        first = missing[0]
        stem = os.path.splitext(os.path.basename(first.path))[0]
        raise DatasetError(
            f"{len(missing)} of {len(samples)} images have no texture in {folder}; the first "
            f"is {first.path} (expected {folder / (stem + '.png')} or the image's own file name)"
        )
    return out


def split_with_textures(split: Split, folder: str | os.PathLike) -> Split:
    """``split`` with :func:`attach_textures` applied to its training part (query and
    gallery are unchanged: textures only supervise training)."""
    return Split(split.name, attach_textures(split.train, folder), split.query, split.gallery)


# ----------------------------------------------------------------------- PIT-style pairs

PIT_LAYOUT = (
    "either DIR/pairs.csv with a header 'image,texture[,pid]' and one pair per line "
    "(paths relative to DIR; pid optional, else images sharing a texture file share an "
    "identity), or DIR/images/ and DIR/textures/ holding images and textures with "
    "matching file stems (.png/.jpg/.jpeg)."
)


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(TEXTURE_EXTENSIONS)


def read_pit(root: Path | None, pairs: str | os.PathLike | None = None) -> Split:
    """A PIT-style paired (person image, texture image) dataset (Jin et al. AAAI 2020,
    Sec. 3.3, "PIT dataset": 9,290 synthetic 256x128 persons with 256x256 textures).

    Layout (:data:`PIT_LAYOUT`): ``DIR/pairs.csv`` (or the CSV given as ``pairs``; used
    when present) with columns ``image,texture[,pid]``, paths relative to ``DIR``; without
    ``pid``, images sharing a texture path share an identity, numbered ``1..n`` in sorted
    order of the texture path (PIT renders each texture map on 10 meshes). Otherwise
    ``DIR/images/<stem>.<ext>`` pairs with ``DIR/textures/<stem>.<ext>``, and every pair
    is its own identity ``1..n`` in sorted order of the image name. Textures must be in
    the layout of :mod:`reid_san.texture_layout` (the authors' PIT textures are SMPL UV
    maps, another layout: convert them before use).

    Returns:
        A :class:`~reidcore.data.Split` named ``"pit"`` whose ``train`` holds every pair
        (``camid`` 0, ``extras["texture"]``: the texture path); ``query`` and ``gallery``
        are empty: PIT trains SAN-PG's reconstruction, it is not a re-ID benchmark.

    Raises:
        DatasetError: no ``root``, neither layout present, a listed or paired file missing
            (named), a malformed CSV line (file and line named), or no pair at all.
    """
    if root is None:
        raise DatasetError(
            f"Dataset 'pit' needs a data folder: pass --data DIR. Expected layout: {PIT_LAYOUT}"
        )
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"PIT data folder {root} does not exist. Expected layout: {PIT_LAYOUT}")
    csv_path = Path(pairs).expanduser() if pairs is not None else root / "pairs.csv"
    if pairs is not None and not csv_path.is_absolute():
        csv_path = root / csv_path
    if csv_path.is_file():
        samples = _pit_from_csv(root, csv_path)
    elif pairs is not None:
        raise DatasetError(
            f"PIT pair list {csv_path} does not exist. Expected layout: {PIT_LAYOUT}"
        )
    else:
        samples = _pit_from_folders(root)
    if not samples:
        raise DatasetError(f"PIT data folder {root} holds no pair. Expected layout: {PIT_LAYOUT}")
    split = Split("pit", samples, (), ())
    log.info("%s (%d image/texture pairs in %s)", split.summary(), len(samples), root)
    return split


def _pit_from_csv(root: Path, csv_path: Path) -> list[Sample]:
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["image", "texture"]:
        raise DatasetError(f"{csv_path}:1: expected the header 'image,texture[,pid]'")
    has_pid = len(rows[0]) > 2 and rows[0][2].strip().lower() == "pid"
    entries = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != (3 if has_pid else 2):
            raise DatasetError(f"{csv_path}:{lineno}: expected {3 if has_pid else 2} columns")
        image, texture = (root / row[0].strip()), (root / row[1].strip())
        for kind, path in (("image", image), ("texture", texture)):
            if not path.is_file():
                raise DatasetError(f"{csv_path}:{lineno}: {kind} {path} does not exist")
        pid = None
        if has_pid:
            try:
                pid = int(row[2])
            except ValueError:
                raise DatasetError(f"{csv_path}:{lineno}: pid {row[2]!r} is not an int") from None
        entries.append((str(image), str(texture), pid))
    if not has_pid:
        ids = {t: i for i, t in enumerate(sorted({t for _, t, _ in entries}), start=1)}
        entries = [(i, t, ids[t]) for i, t, _ in entries]
    return [Sample(i, pid, 0, {"texture": t}) for i, t, pid in entries]


def _pit_from_folders(root: Path) -> list[Sample]:
    images, textures = root / "images", root / "textures"
    for folder in (images, textures):
        if not folder.is_dir():
            raise DatasetError(
                f"PIT data folder {root} has no {folder.name}/. Expected layout: {PIT_LAYOUT}"
            )
    _, tex_by_stem = _texture_index(textures)
    samples = []
    for pid, name in enumerate(sorted(n for n in os.listdir(images) if _is_image_name(n)), start=1):
        stem = os.path.splitext(name)[0]
        if stem not in tex_by_stem:
            raise DatasetError(
                f"PIT image {images / name} has no texture {textures / (stem + '.png')}"
            )
        texture = str(textures / tex_by_stem[stem])
        samples.append(Sample(str(images / name), pid, 0, {"texture": texture}))
    return samples


def read_synthetic_textures(
    root: Path | None = None, texture_size: int | str = DEFAULT_SIZE, **kwargs
) -> Split:
    """The embedded ``synthetic`` dataset with each sample's true texture in
    ``extras["texture"]`` (:func:`reid_datasets.synthetic.identity_texture`: the
    identity's clothes painted into the layout, the same for all its images).

    Args:
        root: the cache folder, as for ``synthetic``.
        texture_size: side of the written textures (a multiple of 16; default 64).
        kwargs: the other parameters of :func:`reid_datasets.synthetic.read_synthetic`.

    Raises:
        DatasetError: as ``synthetic``, or a bad ``texture_size``.
    """
    from reid_datasets.synthetic import read_synthetic

    kwargs.setdefault("name", "synthetic-textures")
    return read_synthetic(root, textures=texture_size, **kwargs)


# ----------------------------------------------------------------------- keypoint warps


def flip_keypoints(keypoints, width: int) -> np.ndarray:
    """Keypoints of the horizontally mirrored image: ``x -> width - 1 - x`` and the left
    and right joints swap names (the mirrored person's right arm is the original's left).

    Args:
        keypoints: ``(14, 3)`` ``[x, y, visibility]`` in this module's convention.
        width: the image width in pixels.

    Returns:
        float32 ``(14, 3)``.
    """
    kp = np.array(keypoints, np.float32, copy=True).reshape(NUM_JOINTS, 3)
    kp[:, 0] = width - 1 - kp[:, 0]
    for a, b in FLIP_PAIRS:
        kp[[a, b]] = kp[[b, a]]
    return kp


def _unit(v: np.ndarray) -> np.ndarray | None:
    n = float(np.hypot(v[0], v[1]))
    return v / n if n > 1e-6 else None


def _strip(p: np.ndarray, q: np.ndarray, width: float, left: np.ndarray) -> np.ndarray | None:
    """Corners (TL, TR, BR, BL) of a ``width`` wide band from ``p`` (top) to ``q``,
    its ``u`` axis pointing to the person's left."""
    d = _unit(q - p)
    if d is None:
        return None
    n = np.array([-d[1], d[0]])
    if float(n @ left) < 0:
        n = -n
    h = n * (width / 2)
    return np.stack([p - h, p + h, q + h, q - h])


def _orientation(pts: np.ndarray, vis: np.ndarray) -> tuple[bool, np.ndarray, float | None]:
    """``(front, left, torso_length)``: whether the person faces the camera, the unit image
    vector towards the person's left (perpendicular to the spine) and the torso length."""
    sh = [j for j in (2, 5) if vis[j]]
    hp = [j for j in (8, 11) if vis[j]]
    spine = np.array([0.0, 1.0])
    length = None
    if sh and hp:
        s = _unit(pts[hp].mean(0) - pts[sh].mean(0))
        length = float(np.hypot(*(pts[hp].mean(0) - pts[sh].mean(0))))
        if s is not None:
            spine = s
    right_perp = np.array([spine[1], -spine[0]])  # image +x for an upright person
    lateral = np.zeros(2)
    for r, lft in ((2, 5), (8, 11)):
        if vis[r] and vis[lft]:
            lateral += pts[lft] - pts[r]
    front = float(lateral @ right_perp) >= 0  # person's left on the image's right
    return front, right_perp if front else -right_perp, length


def _body_scale(pts: np.ndarray, vis: np.ndarray, torso: float | None) -> float | None:
    if torso is not None and torso > 1e-6:
        return torso
    if vis.sum() < 2:
        return None
    extent = float(np.ptp(pts[vis, 1]))  # about 0.9 of a standing person's height
    return 0.36 * extent if extent > 1e-6 else None


def _widen(r: np.ndarray, lft: np.ndarray, left: np.ndarray, min_width: float):
    """The right and left ends of a torso edge at least ``min_width`` wide towards ``left``."""
    c, h = (r + lft) / 2, (lft - r) / 2
    if float(h @ left) < min_width / 2:
        h = left * (min_width / 2)
    return c - h, c + h


def part_quads(keypoints, *, head_point: str = "top") -> dict[str, np.ndarray]:
    """Where each texture part lies in the image, from body keypoints.

    * torso: the quad right shoulder, left shoulder, left hip, right hip (needs one
      shoulder and one hip; a hidden one takes its partner's place), each edge widened
      to :data:`MIN_SHOULDER_WIDTH` / :data:`MIN_HIP_WIDTH` of the torso length when
      narrower (side views); ``torso_front`` when the person's left is on the image's
      right (the shoulders' and hips' left-minus-right vectors point along the image's
      +x perpendicular to the spine; also when that cannot be told), else ``torso_back``;
    * limbs: a band along the segment between the limb's two joints, as wide as
      :data:`LIMB_WIDTH` times the torso length (or 0.36 x the keypoints' height when the
      torso is missing);
    * head: a band from the top of the head to the neck, :data:`HEAD_ASPECT` times as
      wide as long; the top is the head keypoint (``head_point="top"``, the Market-1501
      annotation) or the head keypoint mirrored about the neck's direction
      (``"centre"``: ``2 * head - neck``, the synthetic dataset's head-centre keypoint);
      ``head_front`` or ``head_back`` like the torso.

    Args:
        keypoints: ``(14, 3)`` ``[x, y, visibility]`` (this module's convention).
        head_point: ``"top"`` or ``"centre"``.

    Returns:
        ``{part: float64 (4, 2)}`` corners ``(x, y)`` in continuous image coordinates
        (pixel ``i`` spans ``[i, i + 1)``) in the order top-left, top-right,
        bottom-right, bottom-left of the part's rectangle (``u`` left to right = the
        person's right to left, ``v`` top to bottom). Parts with a missing joint are absent.

    Raises:
        ValueError: ``keypoints`` is not ``(14, 3)`` or ``head_point`` is unknown.
    """
    kp = np.asarray(keypoints, np.float64)
    if kp.shape != (NUM_JOINTS, 3):
        raise ValueError(f"keypoints must be ({NUM_JOINTS}, 3) [x, y, visibility], got {kp.shape}")
    if head_point not in HEAD_POINTS:
        raise ValueError(f"head_point must be one of {HEAD_POINTS}, got {head_point!r}")
    pts = kp[:, :2] + 0.5  # pixel centres -> continuous coordinates
    vis = (kp[:, 2] > 0) & np.isfinite(kp).all(axis=1)
    front, left, torso = _orientation(pts, vis)
    scale = _body_scale(pts, vis, torso)
    quads: dict[str, np.ndarray] = {}
    if scale is None:
        return quads
    if (vis[2] or vis[5]) and (vis[8] or vis[11]):
        # a hidden shoulder (hip) takes its partner's place: the edge is then widened
        r_sh, l_sh = (pts[2] if vis[2] else pts[5]), (pts[5] if vis[5] else pts[2])
        r_hp, l_hp = (pts[8] if vis[8] else pts[11]), (pts[11] if vis[11] else pts[8])
        rs, ls = _widen(r_sh, l_sh, left, MIN_SHOULDER_WIDTH * scale)
        rh, lh = _widen(r_hp, l_hp, left, MIN_HIP_WIDTH * scale)
        quads["torso_front" if front else "torso_back"] = np.stack([rs, ls, lh, rh])
    for part, (a, b) in LIMB_JOINTS.items():
        if vis[a] and vis[b]:
            quad = _strip(pts[a], pts[b], LIMB_WIDTH[part[2:]] * scale, left)
            if quad is not None:
                quads[part] = quad
    if vis[0] and vis[1]:
        top = pts[0] if head_point == "top" else 2 * pts[0] - pts[1]
        length = float(np.hypot(*(pts[1] - top)))
        quad = _strip(top, pts[1], HEAD_ASPECT * length, left)
        if quad is not None:
            quads["head_front" if front else "head_back"] = quad
    return quads


def texture_from_keypoints(
    image, keypoints, size: int = DEFAULT_SIZE, *, head_point: str = "top"
) -> np.ndarray:
    """Warp the body parts of a person image into the texture layout.

    Each part's quad (:func:`part_quads`) is resampled bilinearly onto its rectangle of
    the layout (``PIL.Image.transform`` with ``QUAD``); parts that need a missing joint,
    and the back (front) torso and head of a person seen from the front (back), stay
    black; areas outside the image are black. A pseudo texture for SA-Dec's target (our
    geometric substitute for SAN-PG, Jin et al. AAAI 2020 Sec. 3.3).

    Args:
        image: uint8 ``(H, W, 3)`` RGB array (or a ``PIL.Image``).
        keypoints: ``(14, 3)`` ``[x, y, visibility]``, 0-based pixels (module docstring).
        size: texture side, a multiple of 16.
        head_point: what the head keypoint marks, ``"top"`` (Market-1501) or ``"centre"``
            (the synthetic dataset).

    Returns:
        uint8 ``(size, size, 3)``.

    Raises:
        ValueError: bad ``size``, image shape, keypoint shape or ``head_point``.
    """
    boxes = part_boxes(size)
    src = image if isinstance(image, Image.Image) else None
    if src is None:
        arr = np.asarray(image)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"image must be uint8 (H, W, 3), got {arr.dtype} {arr.shape}")
        src = Image.fromarray(arr)
    src = src.convert("RGB")
    tex = np.zeros((size, size, 3), np.uint8)
    for part, quad in part_quads(keypoints, head_point=head_point).items():
        x0, y0, x1, y1 = boxes[part]
        tl, tr, br, bl = quad
        data = (*tl, *bl, *br, *tr)  # PIL's QUAD order: UL, LL, LR, UR source corners
        patch = src.transform(
            (x1 - x0, y1 - y0),
            Image.Transform.QUAD,
            data=tuple(float(v) for v in data),
            resample=Image.Resampling.BILINEAR,
            fillcolor=(0, 0, 0),
        )
        tex[y0:y1, x0:x1] = np.asarray(patch)
    return tex


def write_png_atomic(path: Path, array: np.ndarray) -> None:
    """Write uint8 ``(H, W, 3)`` ``array`` as the PNG ``path`` via a temporary file in the
    same folder and ``os.replace`` (an interrupted write leaves no partial file)."""
    with atomic_open(path, "wb") as f:
        Image.fromarray(array).save(f, format="PNG")


def write_keypoint_textures(
    samples: Sequence[Sample],
    folder: str | os.PathLike,
    size: int = DEFAULT_SIZE,
    keypoints: Mapping[str, np.ndarray] | None = None,
    *,
    head_point: str = "top",
    overwrite: bool = False,
) -> int:
    """Write a keypoint-warped texture (:func:`texture_from_keypoints`) for every sample.

    The texture of ``.../IMAGE.jpg`` is ``folder/IMAGE.png`` (a flat folder that
    :func:`attach_textures` reads). Each file is written to a temporary file and renamed,
    so an interrupted run leaves only complete textures; existing ones are kept unless
    ``overwrite`` (so a run can be resumed).

    Args:
        samples: the images; their keypoints come from ``keypoints`` or else from
            ``extras["keypoints"]``.
        folder: the texture folder (created), e.g. :func:`texture_folder` when the data
            folder is writable.
        size: texture side, a multiple of 16.
        keypoints: ``{image file name: (14, 3)}`` (e.g. :func:`read_keypoints_csv`).
        head_point: see :func:`texture_from_keypoints` (``"centre"`` for ``synthetic``).
        overwrite: rewrite existing textures.

    Returns:
        The number of textures written.

    Raises:
        DatasetError: a sample has no keypoints, or two samples share a file stem (named).
        ImageReadError: an image cannot be decoded (named).
        ValueError: bad ``size`` or ``head_point``.
    """
    from reidcore.data.images import load_image

    check_size(size)
    if head_point not in HEAD_POINTS:
        raise ValueError(f"head_point must be one of {HEAD_POINTS}, got {head_point!r}")
    folder = Path(folder).expanduser()
    jobs: dict[str, tuple[Sample, np.ndarray]] = {}
    for s in samples:
        fname = os.path.basename(s.path)
        kp = keypoints.get(fname) if keypoints is not None else s.extras.get("keypoints")
        if kp is None:
            where = "the keypoint table" if keypoints is not None else "extras['keypoints']"
            raise DatasetError(f"Image {s.path} has no keypoints in {where}")
        stem = os.path.splitext(fname)[0]
        if stem in jobs and jobs[stem][0].path != s.path:
            raise DatasetError(
                f"Images {jobs[stem][0].path} and {s.path} share the stem {stem!r}; a texture "
                "folder is flat, so texture them into separate folders"
            )
        jobs[stem] = (s, np.asarray(kp))
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for stem, (s, kp) in jobs.items():
        out = folder / f"{stem}.png"
        if out.exists() and not overwrite:
            continue
        img = np.asarray(load_image(s.path))
        write_png_atomic(out, texture_from_keypoints(img, kp, size, head_point=head_point))
        written += 1
    log.info("keypoint textures: wrote %d of %d in %s", written, len(jobs), folder)
    return written
