"""True body-surface textures of synthetic identities (SAN's ground truth) and their folder.

Part of :mod:`reid_datasets.synthetic` (see its docstring for the generative model).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from reid_datasets import body_texture
from reid_datasets._common import publish_folder
from reid_datasets.synthetic_cache import PARTS
from reid_datasets.synthetic_identities import RGB, Identity, sample_identities
from reid_datasets.synthetic_render import _pattern_bits
from reidcore.data import Sample, Split
from reidcore.errors import DatasetError

# Body geometry of a front/back view (body units, see :func:`skeleton`): shoulder and hip
# heights, half-widths at build 1, and the head box from the top of the head to the neck.
_TEX_Y_SH, _TEX_Y_HIP, _TEX_SH_HALF, _TEX_HIP_HALF = 0.18, 0.5, 0.112, 0.062
_TEX_HEAD_TOP, _TEX_NECK = -0.002, 0.138  # head centre 0.068 minus (neck - head)
_TEX_HEAD_HALF = 0.4 * (_TEX_NECK - _TEX_HEAD_TOP)  # head box width = 0.8 x its height
_EYES: RGB = (30, 25, 25)
_TEX_SS = 4  # supersampling factor of the painted texture


def _uv(box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(u, v)`` in ``[0, 1]`` at the pixel centres of a part box, each ``(h, w)`` float64."""
    x0, y0, x1, y1 = box
    u = (np.arange(x1 - x0) + 0.5) / (x1 - x0)
    v = (np.arange(y1 - y0) + 0.5) / (y1 - y0)
    return np.meshgrid(u, v)


def _in_ellipse(x, y, cx, cy, rx, ry) -> np.ndarray:
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0


def _head_texture(ident: Identity, u: np.ndarray, v: np.ndarray, back: bool) -> np.ndarray:
    """The head box painted like :func:`_head` / :func:`_long_hair` (black outside the head)."""
    x = _TEX_HEAD_HALF * (2 * u - 1) * (-1 if back else 1)
    y = _TEX_HEAD_TOP + (_TEX_NECK - _TEX_HEAD_TOP) * v
    out = np.zeros(u.shape + (3,), np.uint8)
    long_hair = ident.long_hair & (y >= 0.06) & (y <= 0.21)
    long_hair &= np.abs(x) <= 0.05 + 0.01 * (y - 0.06) / 0.15
    neck = np.hypot(x, y - np.clip(y, 0.1, 0.15)) <= 0.022  # the neck capsule
    if not back:  # front view order: long hair behind, neck, hair, face, eyes
        out[long_hair] = ident.hair
        out[neck] = ident.skin
        out[_in_ellipse(x, y, 0.0, 0.064, 0.0525, 0.065)] = ident.hair
        out[_in_ellipse(x, y, 0.0, 0.08, 0.043, 0.0533)] = ident.skin
        for ex in (-0.018, 0.018):
            out[_in_ellipse(x, y, ex, 0.076, 0.007, 0.006)] = _EYES
        return out
    out[neck] = ident.skin  # back view: neck, hair, long hair in front
    out[_in_ellipse(x, y, 0.0, 0.068, 0.05, 0.065)] = ident.hair
    out[long_hair] = ident.hair
    return out


def identity_texture(ident: Identity, size: int = body_texture.DEFAULT_SIZE) -> np.ndarray:
    """The true body-surface texture of an identity in the layout of
    :mod:`reid_datasets.body_texture` (the PIT-style ground truth of SAN, Jin et al.
    AAAI 2020, Sec. 3.2: one full-surface texture per person, whatever the view).

    Painted from the identity's attributes with the renderer's own geometry (front/back
    skeleton of :func:`skeleton` at walking phase 0):

    * torso front/back: the shirt colour and its pattern (stripes, checks, dots), the
      pattern sampled at the body coordinates the renderer uses, so the back shows the
      pattern as drawn in a back view (u from the person's right to left);
    * upper arms: shirt, or shirt down to 55 % and skin below (short sleeves); lower
      arms: shirt (long sleeves) or skin;
    * upper legs: trousers, or trousers down to 75 % and skin below (shorts); lower
      legs: trousers or skin (shoes are below the ankle, outside the layout);
    * head front: neck, hair, face and eyes; head back: neck and hair; long hair in
      both; black outside the head shape.

    Bags and the camera's photometrics are not part of the surface. Painted at 4x the
    size and box-downsampled (part borders stay exact: the grid scales by 4).

    Returns:
        uint8 ``(size, size, 3)`` RGB.

    Raises:
        ValueError: ``size`` is not a positive multiple of 16.
    """
    size = body_texture.check_size(size)
    big = Image.fromarray(_paint_texture(ident, size * _TEX_SS))
    return np.asarray(big.reduce(_TEX_SS))


def _paint_texture(ident: Identity, size: int) -> np.ndarray:
    boxes = body_texture.part_boxes(size)
    tex = np.zeros((size, size, 3), np.uint8)
    b = ident.build
    for name, direction in (("torso_front", 1.0), ("torso_back", -1.0)):
        x0, y0, x1, y1 = boxes[name]
        u, v = _uv(boxes[name])
        half = b * (_TEX_SH_HALF * (1 - v) + _TEX_HIP_HALF * v)
        x = direction * half * (2 * u - 1)  # body x as drawn in a front (back) view
        y = _TEX_Y_SH + (_TEX_Y_HIP - _TEX_Y_SH) * v
        patch = np.empty(u.shape + (3,), np.uint8)
        patch[:] = ident.shirt
        if ident.pattern != "plain":
            period = ident.pattern_period
            patch[_pattern_bits(ident.pattern, x % period, y % period, period)] = (
                ident.pattern_colour
            )
        tex[y0:y1, x0:x1] = patch
    for side in ("r", "l"):
        covered = {  # fraction of the strip (from the proximal end) that the clothes cover
            "upper_arm": 1.0 if ident.long_sleeves else 0.55,
            "lower_arm": 1.0 if ident.long_sleeves else 0.0,
            "upper_leg": 0.75 if ident.shorts else 1.0,
            "lower_leg": 0.0 if ident.shorts else 1.0,
        }
        for part, frac in covered.items():
            x0, y0, x1, y1 = boxes[f"{side}_{part}"]
            _, v = _uv(boxes[f"{side}_{part}"])
            cloth = ident.shirt if part.endswith("arm") else ident.trousers
            tex[y0:y1, x0:x1] = np.where((v < frac)[..., None], cloth, ident.skin)
    for name, back in (("head_front", False), ("head_back", True)):
        x0, y0, x1, y1 = boxes[name]
        u, v = _uv(boxes[name])
        tex[y0:y1, x0:x1] = _head_texture(ident, u, v, back)
    return tex


def texture_dirname(size: int) -> str:
    """Folder of the true textures of size ``size`` inside a dataset folder."""
    return f"texture_synthetic_{size}"


def write_textures(folder: Path, params: dict, size: int) -> Path:
    """Write the true texture of every image of a generated dataset (once).

    ``folder/texture_synthetic_<size>/<image stem>.png``, one per image of all three
    parts (flat: the stems are unique); the texture is the identity's
    (:func:`identity_texture`), so all images of a person have the same bytes. The
    folder is written to a temporary sibling and renamed, so it is complete or absent.
    The images, keypoints and the folder hash are untouched.

    Returns:
        The texture folder.
    """
    out = folder / texture_dirname(size)
    if out.is_dir():
        return out
    idents = sample_identities(
        np.random.default_rng([params["seed"], 1]),
        params["num_train_ids"] + params["num_test_ids"],
    )
    encoded: dict[int, bytes] = {}
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=folder))
    try:
        for _, sub in PARTS:
            for fname in sorted(os.listdir(folder / sub)):
                pid = int(fname[:4])
                if pid not in encoded:
                    buf = io.BytesIO()
                    img = Image.fromarray(identity_texture(idents[pid - 1], size))
                    img.save(buf, format="PNG", optimize=False)
                    encoded[pid] = buf.getvalue()
                (tmp / (Path(fname).stem + ".png")).write_bytes(encoded[pid])
        publish_folder(tmp, out)  # or a concurrent writer won the race
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _with_textures(split: Split, texdir: Path) -> Split:
    present = set(os.listdir(texdir))

    def attach(samples: Sequence[Sample]) -> list[Sample]:
        out = []
        for s in samples:
            name = Path(s.path).stem + ".png"
            if name not in present:
                raise DatasetError(
                    f"Synthetic texture {texdir / name} of image {s.path} is missing; "
                    f"delete {texdir} to regenerate it"
                )
            out.append(Sample(s.path, s.pid, s.camid, {**s.extras, "texture": str(texdir / name)}))
        return out

    return Split(split.name, attach(split.train), attach(split.query), attach(split.gallery))
