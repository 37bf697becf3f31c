"""Builders of tiny fixtures reproducing each dataset's official layout (file names, list
files, .mat structures). Images are real, decodable 8x4..16x8 PNG/JPEG files so that the
registry-wide test can open them. Each ``build_<name>(root)`` returns the ``--data`` value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (8, 16)) -> Path:
    """A small random RGB image (``size`` = width, height) in the format of the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


# ---------------------------------------------------------------- market1501 / duke

MARKET = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000551_01.jpg",
        "0007_c3s1_000101_02.jpg",
        "0007_c1s1_000201_01.jpg",
        "0000_c1s1_000001_00.jpg",
        "-1_c1s1_000002_00.jpg",
    ],
    "query": ["0001_c1s1_001051_00.jpg", "0003_c4s1_000001_00.jpg"],
    "bounding_box_test": [
        "0001_c2s1_000151_01.jpg",
        "0003_c6s1_000002_00.jpg",
        "0000_c1s1_000003_00.jpg",
        "-1_c5s1_000004_00.jpg",
    ],
}

DUKE = {
    "bounding_box_train": [
        "0001_c2_f0046182.jpg",
        "0001_c6_f0061238.jpg",
        "0003_c1_f0044158.jpg",
        "0003_c8_f0083251.jpg",
    ],
    "query": ["0005_c2_f0046985.jpg", "0008_c7_f0075218.jpg"],
    "bounding_box_test": [
        "0005_c5_f0051781.jpg",
        "0008_c1_f0044520.jpg",
        "0009_c3_f0023311.jpg",  # a distractor identity: an ordinary id in DukeMTMC-reID
    ],
}


def build_market1501(root: Path) -> Path:
    for folder, names in MARKET.items():
        for i, name in enumerate(names):
            write_image(root / folder / name, i)
    return root


def build_duke(root: Path) -> Path:
    for folder, names in DUKE.items():
        for i, name in enumerate(names):
            write_image(root / folder / name, i)
    return root
