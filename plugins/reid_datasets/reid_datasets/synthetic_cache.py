"""Where a synthetic dataset is cached, and its checked parameters.

Part of :mod:`reid_datasets.synthetic`: a dataset lives in
``<cache>/synthetic-<hash of the parameters and GENERATOR_VERSION>/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from reid_datasets import body_texture
from reidcore.errors import DatasetError

#: Bump when the generator's output changes: it is part of the cache folder's hash.
GENERATOR_VERSION = 1
CACHE_ENV = "REIDCORE_CACHE"
PARTS = (("train", "bounding_box_train"), ("query", "query"), ("gallery", "bounding_box_test"))


def _params(seed, num_train_ids, num_test_ids, num_cameras, images_per_camera, height, width):
    params = {
        "seed": seed,
        "num_train_ids": num_train_ids,
        "num_test_ids": num_test_ids,
        "num_cameras": num_cameras,
        "images_per_camera": images_per_camera,
        "height": height,
        "width": width,
    }
    for key, value in params.items():  # ints, or strings of ints (from a command line)
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            params[key] = value = int(value)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise DatasetError(f"synthetic: {key} must be an int, got {value!r}")
    limits = {
        "num_train_ids": 1,
        "num_test_ids": 1,
        "num_cameras": 2,
        "images_per_camera": 2,
        "height": 32,
        "width": 16,
        "seed": 0,
    }
    for key, low in limits.items():
        if params[key] < low:
            raise DatasetError(f"synthetic: {key} must be >= {low}, got {params[key]}")
    if params["num_cameras"] > 9:
        raise DatasetError(
            f"synthetic: num_cameras must be <= 9 (Market names c1..c9), got {num_cameras}"
        )
    if params["num_train_ids"] + params["num_test_ids"] > 9999:
        raise DatasetError("synthetic: num_train_ids + num_test_ids must be <= 9999 (4-digit pids)")
    return {k: int(v) for k, v in params.items()}


def dataset_dirname(params: dict) -> str:
    """``synthetic-<12 hex>``: a hash of the parameters and :data:`GENERATOR_VERSION`."""
    blob = json.dumps({**params, "generator_version": GENERATOR_VERSION}, sort_keys=True)
    return f"synthetic-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def cache_root() -> Path:
    """``$REIDCORE_CACHE`` if set, else ``~/.cache/reidcore``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "reidcore"


def _texture_size(textures: int | str) -> int:
    """0 (no textures) or a valid texture size, from an int or a command-line string."""
    if isinstance(textures, str) and textures.strip().isdigit():
        textures = int(textures)
    if isinstance(textures, bool) or not isinstance(textures, (int, np.integer)):
        raise DatasetError(
            f"synthetic: textures must be an int (0 or a multiple of 16), got {textures!r}"
        )
    if textures == 0:
        return 0
    try:
        return body_texture.check_size(textures)
    except ValueError as exc:
        raise DatasetError(f"synthetic: textures: {exc}") from exc
