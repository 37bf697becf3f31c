"""The fixed body-surface texture layout SA-Dec regresses (Jin et al., AAAI 2020, Sec. 3).

The layout is defined once, in :mod:`reid_datasets.body_texture`, so that the synthetic
dataset can paint its true textures without depending on reid-san; this module
re-exports it for SAN code. See that module for the picture of the layout and the
conventions: a ``T x T`` texture (``T`` a multiple of 16; the paper uses 256, our writers
default to 64), one rectangle per part (torso front/back, upper/lower arms and legs
left/right, head front/back), ``u`` from the person's right to left, ``v`` from the
proximal to the distal end, black where unknown.
"""

from reid_datasets.body_texture import (
    DEFAULT_SIZE,
    FLIP_PARTNER,
    GRID,
    LIMB_JOINTS,
    PAPER_SIZE,
    PART_NAMES,
    PARTS,
    check_size,
    flip_index,
    flip_texture,
    layout_legend,
    part_boxes,
    part_label_map,
)

__all__ = [
    "DEFAULT_SIZE",
    "FLIP_PARTNER",
    "GRID",
    "LIMB_JOINTS",
    "PAPER_SIZE",
    "PARTS",
    "PART_NAMES",
    "check_size",
    "flip_index",
    "flip_texture",
    "layout_legend",
    "part_boxes",
    "part_label_map",
]
