"""An embedded synthetic re-ID dataset: drawn people, no download (numpy + Pillow only).

Generative model
----------------
Everything is drawn from ``numpy.random.default_rng`` streams keyed by the seed,
so one seed always gives the same PNG bytes and keypoints (for one Pillow/zlib).

* **Identity** (:class:`Identity`, one per person id): shirt colour, shirt pattern
  (plain / horizontal stripes / checks / dots, with a pattern colour and scale),
  sleeve length, trousers colour and length (trousers / shorts), shoe colour,
  skin tone, hair colour and length, a bag (none / backpack / shoulder bag, with
  its colour) and a body build (slim / average / broad). All attributes come from
  small palettes, so many identities share a shirt colour; about a third of the
  identities are *siblings* of an earlier one that differ in a single attribute
  (e.g. same clothes, other pattern or trousers): colour alone does not
  separate them. No two identities have the same attributes.
* **Camera** (:class:`Camera`, one per camera index): a background scene (wall and
  floor colours, horizon, wall texture: panels / bricks / foliage / posters,
  low-frequency blotches), the person's scale in the box, view probabilities,
  and strong photometrics: gain, per-channel colour cast, additive tint, gamma,
  haze, a linear illumination gradient, blur, low resolution and noise.
* **Image** (:class:`Pose` + placement, one per image): the view (front / back /
  side facing left or right), a walking phase and stride (leg and arm swing,
  knee and elbow bend), position and scale jitter, a random crop of the camera's
  scene, sometimes a passer-by at the border (in a clothing colour) or an
  occluder in front of the feet, and small brightness/colour jitter.

The person is drawn at twice the output resolution with ``PIL.ImageDraw``
(capsules for limbs, polygons for torso and pelvis, ellipses for head, hair,
shoes) and box-downsampled. In a front view the person's right side is on the
image's left; a side view has narrow shoulders and the far limbs drawn darker
and behind the body; a back view shows no face.

Ground truth per image: 14 keypoints in Market-1501 joint order (:data:`JOINTS`)
in pixels of the saved image (``x`` in ``[0, W)``, ``y`` in ``[0, H)``) with a
visibility flag (0 for joints hidden by the body in a side view, by an occluder,
or outside the image), and the view.

Layout of a generated folder (Market-1501 names, readable by the market1501 reader)::

    synthetic-<hash>/bounding_box_train/0001_c1s1_000001_00.png ...
    synthetic-<hash>/query/0101_c1s1_000001_00.png ...   (first image of each test id+camera)
    synthetic-<hash>/bounding_box_test/0101_c1s1_000002_00.png ...
    synthetic-<hash>/annotations.csv   image,pid,camid,view,x0..x13,y0..y13,v0..v13
    synthetic-<hash>/params.json
    synthetic-<hash>/texture_synthetic_<T>/0001_c1s1_000001_00.png ...   (only with textures=T)

With ``textures=T`` the reader also writes each image's *true texture* (the identity's
body surface in the layout of :mod:`reid_datasets.body_texture`, for SAN;
:func:`identity_texture`) and sets ``extras["texture"]``; the images, keypoints and
the folder's hash are the same with or without it.

Train ids are ``1..num_train_ids``, test ids follow; every id is seen by every
camera ``images_per_camera`` times.

Modules (one concept each; every public name is importable from here)
-----------------------------------------------------------------------
* :mod:`~reid_datasets.synthetic_identities` -- palettes, :class:`Identity`, :func:`sample_identities`
* :mod:`~reid_datasets.synthetic_scene` -- :class:`Camera`, its scene, background crop and occluder
* :mod:`~reid_datasets.synthetic_photometrics` -- a camera's lighting, blur and noise
* :mod:`~reid_datasets.synthetic_pose` -- :data:`VIEWS`, :class:`Pose`, :func:`skeleton`
* :mod:`~reid_datasets.synthetic_render` -- :func:`render_person` (drawing, keypoints, visibility)
* :mod:`~reid_datasets.synthetic_textures` -- :func:`identity_texture`, :func:`write_textures`
* :mod:`~reid_datasets.synthetic_cache` -- parameters, cache folder and its hash
* this module -- :func:`generate`, :func:`index` and the reader :func:`read_synthetic`
* joint names: :mod:`reid_datasets.joints`
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from reid_datasets._common import publish_folder
from reid_datasets.joints import JOINTS
from reid_datasets.synthetic_cache import (
    CACHE_ENV,
    GENERATOR_VERSION,
    PARTS,
    _params,
    _texture_size,
    cache_root,
    dataset_dirname,
)
from reid_datasets.synthetic_identities import (
    BAGS,
    BUILDS,
    HAIRS,
    PATTERN_COLOURS,
    PATTERNS,
    SHIRTS,
    SHOES,
    SKINS,
    TROUSERS,
    Identity,
    sample_identities,
)
from reid_datasets.synthetic_pose import VIEWS, Pose, skeleton
from reid_datasets.synthetic_render import render_figure, render_person, visibility
from reid_datasets.synthetic_scene import Camera
from reid_datasets.synthetic_textures import (
    _with_textures,
    identity_texture,
    texture_dirname,
    write_textures,
)
from reidcore.data import Sample, Split
from reidcore.errors import DatasetError

__all__ = [
    "BAGS", "BUILDS", "CACHE_ENV", "GENERATOR_VERSION", "HAIRS", "JOINTS", "PARTS",
    "PATTERNS", "PATTERN_COLOURS", "SHIRTS", "SHOES", "SKINS", "TROUSERS", "VIEWS",
    "Camera", "Identity", "Pose", "cache_root", "dataset_dirname", "generate",
    "identity_texture", "index", "read_synthetic", "render_figure", "render_person",
    "sample_identities", "skeleton", "texture_dirname", "visibility", "write_textures",
]


def _header() -> list[str]:
    n = len(JOINTS)
    return ["image", "pid", "camid", "view", *[f"{a}{i}" for a in "xyv" for i in range(n)]]


def generate(folder: Path, params: dict) -> None:
    """Write the dataset described by ``params`` into ``folder`` (which must not exist)."""
    seed, h, w = params["seed"], params["height"], params["width"]
    n_train, n_test = params["num_train_ids"], params["num_test_ids"]
    idents = sample_identities(np.random.default_rng([seed, 1]), n_train + n_test)
    cams = [
        Camera.sample(np.random.default_rng([seed, 2, c]), h, w)
        for c in range(params["num_cameras"])
    ]
    for _, sub in PARTS:
        (folder / sub).mkdir(parents=True)
    rows = []
    for pid, ident in enumerate(idents, start=1):
        for camid, cam in enumerate(cams):
            for k in range(params["images_per_camera"]):
                rng = np.random.default_rng([seed, 3, pid, camid, k])
                pose = Pose.sample(rng, cam.view_p)
                img, kp = render_person(ident, pose, cam, rng, h, w)
                sub = (
                    "bounding_box_train"
                    if pid <= n_train
                    else ("query" if k == 0 else "bounding_box_test")
                )
                rel = f"{sub}/{pid:04d}_c{camid + 1}s1_{k + 1:06d}_00.png"
                img.save(folder / rel, format="PNG", optimize=False)
                rows.append(
                    [
                        rel,
                        pid,
                        camid,
                        pose.view,
                        *[f"{v:.2f}" for v in kp[:, 0]],
                        *[f"{v:.2f}" for v in kp[:, 1]],
                        *[str(int(v)) for v in kp[:, 2]],
                    ]
                )
    rows.sort(key=lambda r: r[0])
    with open(folder / "annotations.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(_header())
        writer.writerows(rows)
    meta = {**params, "generator_version": GENERATOR_VERSION, "joints": list(JOINTS)}
    (folder / "params.json").write_text(json.dumps(meta, indent=2) + "\n")


def index(folder: Path, name: str = "synthetic") -> Split:
    """Read a generated folder into a :class:`~reidcore.data.Split` (no image is opened).

    Raises:
        DatasetError: ``annotations.csv`` is missing or malformed, or a listed image is missing.
    """
    ann = folder / "annotations.csv"
    if not ann.is_file():
        raise DatasetError(
            f"Synthetic cache folder {folder} has no annotations.csv; delete the "
            "folder so that it is generated again"
        )
    present = {
        sub: set(os.listdir(folder / sub)) if (folder / sub).is_dir() else set() for _, sub in PARTS
    }
    part_of = {sub: part for part, sub in PARTS}
    parts: dict[str, list[Sample]] = {part: [] for part, _ in PARTS}
    n = len(JOINTS)
    with open(ann, newline="") as f:
        reader = csv.reader(f)
        if next(reader, None) != _header():
            raise DatasetError(f"{ann} has an unexpected header; delete {folder} to regenerate it")
        for lineno, row in enumerate(reader, start=2):
            sub, _, fname = row[0].partition("/")
            if sub not in part_of or fname not in present[sub] or len(row) != 4 + 3 * n:
                raise DatasetError(
                    f"{ann}:{lineno}: image {folder / row[0]} is missing or the "
                    f"line is malformed; delete {folder} to regenerate it"
                )
            vals = np.asarray(row[4:], np.float32).reshape(3, n).T  # (14, 3): x, y, visible
            parts[part_of[sub]].append(
                Sample(
                    str(folder / row[0]),
                    int(row[1]),
                    int(row[2]),
                    {"keypoints": vals, "view": row[3]},
                )
            )
    for part, sub in PARTS:
        if not parts[part]:
            raise DatasetError(f"{ann} lists no image in {sub}/; delete {folder} to regenerate it")
        parts[part].sort(key=lambda s: s.path)
    return Split(name, parts["train"], parts["query"], parts["gallery"])


def read_synthetic(
    root: str | os.PathLike | None = None,
    seed: int = 0,
    num_train_ids: int = 100,
    num_test_ids: int = 50,
    num_cameras: int = 4,
    images_per_camera: int = 3,
    height: int = 128,
    width: int = 64,
    *,
    textures: int | str = 0,
    name: str = "synthetic",
) -> Split:
    """The synthetic dataset, generated on first use and cached.

    Args:
        root: the cache folder (``--data``); ``None`` -> ``$REIDCORE_CACHE`` or
            ``~/.cache/reidcore``. The dataset lives in ``root/synthetic-<hash>/``.
        seed: the random seed; the same parameters give the same bytes.
        num_train_ids, num_test_ids: identities in the training and test parts.
        num_cameras: cameras (2..9); every identity appears in every camera.
        images_per_camera: images per identity and camera (>= 2); for test ids the
            first is a query, the rest gallery.
        height, width: image size in pixels.
        textures: ``0`` (default): no textures. A multiple of 16 such as 64: also
            write (once, into ``synthetic-<hash>/texture_synthetic_<textures>/``) the
            true body-surface texture of every image, ``textures`` pixels square
            (:func:`identity_texture`, layout :mod:`reid_datasets.body_texture`), and
            set each sample's ``extras["texture"]`` to its path. Opt-in: the images,
            keypoints and the folder's hash do not depend on it.
        name: the :attr:`Split.name`.

    Returns:
        A :class:`~reidcore.data.Split` with ``num_train_ids * num_cameras *
        images_per_camera`` training samples, ``num_test_ids * num_cameras`` queries
        and the rest of the test images as gallery. Each sample's ``extras`` holds
        ``"keypoints"``: ``(14, 3)`` float32 ``[x, y, visible]`` in pixels (joint order
        :data:`JOINTS`) and ``"view"``: ``"front" | "back" | "side"``.

    Raises:
        DatasetError: a parameter is out of range, the cache folder cannot be
            created, or a cached folder is incomplete.
    """
    params = _params(
        seed, num_train_ids, num_test_ids, num_cameras, images_per_camera, height, width
    )
    texture_size = _texture_size(textures)
    parent = Path(root).expanduser() if root is not None else cache_root()
    folder = parent / dataset_dirname(params)
    if not folder.is_dir():
        try:
            parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=parent))
        except OSError as exc:
            raise DatasetError(
                f"Cannot create the synthetic cache folder in {parent}: {exc}; "
                f"pass --data DIR or set {CACHE_ENV}"
            ) from exc
        try:
            generate(tmp / "data", params)
            publish_folder(tmp / "data", folder)  # or a concurrent generator won the race
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    split = index(folder, name)
    if texture_size:
        try:
            texdir = write_textures(folder, params, texture_size)
        except OSError as exc:
            raise DatasetError(f"Cannot write the synthetic textures in {folder}: {exc}") from exc
        split = _with_textures(split, texdir)
    logging.getLogger("reidcore").info("%s (generated in %s)", split.summary(), folder)
    return split
