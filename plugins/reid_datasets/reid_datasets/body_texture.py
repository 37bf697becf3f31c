"""The fixed body-surface texture layout shared by texture sources and SAN.

SAN (Jin et al., "Semantics-Aligned Representation Learning for Person
Re-identification", AAAI 2020, Sec. 3 and Fig. 2) regresses a *texture image*: the
person's full body surface in a fixed, densely semantically aligned layout (the
SURREAL/SMPL UV atlas in the paper's PIT data). This module defines our simplified
atlas: a square texture of ``T x T`` pixels (``T`` a multiple of :data:`GRID`; the
paper uses 256, the authors' pseudo ground truth 64) divided into one axis-aligned
rectangle per body part. It is pure data plus numpy helpers, importable without
torch, and used by the synthetic dataset's true textures
(:func:`reid_datasets.synthetic.identity_texture`), reid-san's keypoint warp and its
training transform (re-exported as ``reid_san.texture_layout``).

Layout (grid units; 1 unit = ``T / 16`` pixels; ``x, y, w, h``)::

       0   2   4   6   8  10  12  14  16
     0 +-------+-------+---+---+---+---+
       | torso | torso |r  |r  |l  |l  |
       | front | back  |up |low|up |low|
       |       |       |arm|arm|arm|arm|
     6 +---+---+---+---+---+---+---+---+
       |r  |r  |l  |l  |  head   |
       |up |low|up |low|  front  |
       |leg|leg|leg|leg|         |
    11 |   |   |   |   +---------+
       |   |   |   |   |  head   |
       |   |   |   |   |  back   |
    16 +---+---+---+---+---------+
       0   3   6   9  12        16

Conventions inside every part rectangle (the same for all parts, which makes the
mirror operation a pure permutation, :func:`flip_texture`):

* ``v`` (down the rectangle) runs from the proximal end to the distal end: shoulders
  to hips for the torso, shoulder -> elbow -> wrist for the arms, hip -> knee ->
  ankle for the legs, top of the head -> neck for the head.
* ``u`` (across the rectangle) runs from the **person's right side to their left
  side**. A front part therefore looks like a frontal photo (the person's right on
  the left), a back part like a photo from behind mirrored left-right, and a limb
  strip shows the visible side of the limb with its right-hand edge on the left.
* Limbs have one strip each (the visible side); the torso and the head have separate
  front and back rectangles. Hands, feet and bags are not part of the surface.
* Pixels of a part that is unknown (a missing joint, or outside a drawn head) are
  black, ``(0, 0, 0)``; the grid has no unused cells.

Mirroring the person (a horizontal image flip) maps the texture by swapping each
left part with its right partner and reversing ``u`` inside every part; the torso
and head parts are their own partners.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

#: Layout grid: the texture side is divided into this many units.
GRID = 16
#: The paper's texture size (PIT, Sec. 4.1); our writers default to :data:`DEFAULT_SIZE`.
PAPER_SIZE = 256
#: Default size of the textures our writers produce (the size of the authors' pseudo
#: ground-truth textures, ``generate_texture.py``), suited to 128 x 64 person images.
DEFAULT_SIZE = 64

#: Part name -> ``(x, y, w, h)`` in grid units (see the module docstring).
PARTS: dict[str, tuple[int, int, int, int]] = {
    "torso_front": (0, 0, 4, 6),
    "torso_back": (4, 0, 4, 6),
    "r_upper_arm": (8, 0, 2, 6),
    "r_lower_arm": (10, 0, 2, 6),
    "l_upper_arm": (12, 0, 2, 6),
    "l_lower_arm": (14, 0, 2, 6),
    "r_upper_leg": (0, 6, 3, 10),
    "r_lower_leg": (3, 6, 3, 10),
    "l_upper_leg": (6, 6, 3, 10),
    "l_lower_leg": (9, 6, 3, 10),
    "head_front": (12, 6, 4, 5),
    "head_back": (12, 11, 4, 5),
}
PART_NAMES: tuple[str, ...] = tuple(PARTS)

#: Part -> the part it becomes when the person is mirrored.
FLIP_PARTNER: dict[str, str] = {
    name: ("l_" + name[2:] if name.startswith("r_") else "r_" + name[2:])
    if name[:2] in ("r_", "l_")
    else name
    for name in PARTS
}

#: Limb part -> ``(proximal joint, distal joint)`` in Market-1501 body-point order.
LIMB_JOINTS: dict[str, tuple[int, int]] = {
    "r_upper_arm": (2, 3),
    "r_lower_arm": (3, 4),
    "l_upper_arm": (5, 6),
    "l_lower_arm": (6, 7),
    "r_upper_leg": (8, 9),
    "r_lower_leg": (9, 10),
    "l_upper_leg": (11, 12),
    "l_lower_leg": (12, 13),
}


def check_size(size: Any) -> int:
    """Validate a texture side length.

    Returns:
        ``size`` as an int.

    Raises:
        ValueError: ``size`` is not a positive multiple of :data:`GRID` (16).
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise ValueError(f"texture size must be an int, got {size!r}")
    if size < GRID or size % GRID:
        raise ValueError(
            f"texture size must be a positive multiple of {GRID} (e.g. 64 or 256), got {size}"
        )
    return int(size)


def part_boxes(size: int) -> dict[str, tuple[int, int, int, int]]:
    """Pixel rectangles of the parts in a ``size x size`` texture.

    Returns:
        ``{part: (x0, y0, x1, y1)}``, half-open pixel bounds (``texture[y0:y1, x0:x1]``).

    Raises:
        ValueError: ``size`` is not a positive multiple of 16.
    """
    s = check_size(size) // GRID
    return {n: (x * s, y * s, (x + w) * s, (y + h) * s) for n, (x, y, w, h) in PARTS.items()}


@lru_cache(maxsize=16)
def _label_map(size: int) -> np.ndarray:
    out = np.full((size, size), -1, np.int64)
    for i, (x0, y0, x1, y1) in enumerate(part_boxes(size).values()):
        out[y0:y1, x0:x1] = i
    out.setflags(write=False)
    return out


def part_label_map(size: int) -> np.ndarray:
    """Which part each texture pixel belongs to.

    Returns:
        int64 ``(size, size)``: the index of the part in :data:`PART_NAMES`
        (read-only; every pixel belongs to a part in this layout).

    Raises:
        ValueError: ``size`` is not a positive multiple of 16.
    """
    return _label_map(check_size(size))


@lru_cache(maxsize=16)
def _flip_index(size: int) -> np.ndarray:
    index = np.arange(size * size, dtype=np.int64).reshape(size, size)
    out = index.copy()
    boxes = part_boxes(size)
    for name, (x0, y0, x1, y1) in boxes.items():
        px0, py0, px1, py1 = boxes[FLIP_PARTNER[name]]
        # the mirrored person's part `name` is the partner part with u reversed
        out[y0:y1, x0:x1] = index[py0:py1, px0:px1][:, ::-1]
    out = out.reshape(-1)
    out.setflags(write=False)
    return out


def flip_index(size: int) -> np.ndarray:
    """The pixel permutation of :func:`flip_texture`.

    Returns:
        int64 ``(size * size,)``: ``flipped.flat[i] = texture.flat[index[i]]`` for a
        row-major ``(size, size)`` pixel grid (read-only). It is an involution.

    Raises:
        ValueError: ``size`` is not a positive multiple of 16.
    """
    return _flip_index(check_size(size))


def flip_texture(texture):
    """The texture of the horizontally mirrored person.

    Left and right parts swap and each part is reversed along ``u`` (see the module
    docstring); applying it twice gives the input back. Use it when the person image
    is flipped horizontally, so that the texture target stays aligned (our addition:
    the authors' loader does not flip textures).

    Args:
        texture: a numpy array ``(T, T)`` or ``(T, T, C)`` (channels last), or a
            torch tensor ``(..., C, T, T)`` or ``(T, T)`` (channels first, any
            leading batch dims); any dtype.

    Returns:
        A new array/tensor of the same type, shape and dtype.

    Raises:
        ValueError: the spatial dims are not square or not a multiple of 16.
    """
    if type(texture).__module__.split(".")[0] == "torch":
        if texture.ndim < 2 or texture.shape[-1] != texture.shape[-2]:
            raise ValueError(f"texture tensor must be (..., T, T), got {tuple(texture.shape)}")
        size = texture.shape[-1]
        perm = flip_index(size)
        import torch

        idx = torch.from_numpy(perm.copy()).to(texture.device)
        return texture.flatten(-2)[..., idx].unflatten(-1, (size, size))
    arr = np.asarray(texture)
    if arr.ndim not in (2, 3) or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"texture array must be (T, T) or (T, T, C), got {arr.shape}")
    size = arr.shape[0]
    perm = flip_index(size)
    flat = arr.reshape(size * size, *arr.shape[2:])
    return flat[perm].reshape(arr.shape)


def layout_legend(size: int = 256) -> np.ndarray:
    """A picture of the layout: each part a distinct colour, its ``u`` direction shaded.

    Returns:
        uint8 ``(size, size, 3)``: part colours brighten from ``u = 0`` (the person's
        right) to ``u = 1``; for docs and visual checks.
    """
    rng = np.random.default_rng(3)
    out = np.zeros((size, size, 3), np.uint8)
    for x0, y0, x1, y1 in part_boxes(size).values():
        colour = rng.uniform(60, 200, 3)
        ramp = np.linspace(0.6, 1.25, x1 - x0)[None, :, None]
        out[y0:y1, x0:x1] = np.clip(colour * ramp, 0, 255).astype(np.uint8)
    return out
