"""Pose maps of a whole dataset written to a folder (what ``pse pose-maps`` produces).

Layout of ``OUTPUT``::

    OUTPUT/<image stem>.npy    (J, H, W) float16 pose maps at the network input size
    OUTPUT/keypoints.csv       the keypoints used, format of market1501-holdout/keypoints.csv
                               (image,x0..x13,y0..y13, 1-based pixels of the original image)
    OUTPUT/pose_maps.json      dataset, size, sigma, joint names, counts

When two images share a file stem (e.g. a ``folder`` dataset with equal names in several
identity folders), the maps are written as ``OUTPUT/<relative path without suffix>.npy``
and the CSV names images by their relative path. ``OUTPUT`` is itself a keypoint source
(through its ``keypoints.csv``): pass it as ``keypoints=OUTPUT`` to a ``*-pose-maps``
reader. The authors stored DeeperCut score maps per image the same way
(``pose-map-files/<part>/<file>.npy``; seed README); these are Gaussian maps
(:func:`reid_pse.pose_maps.render_pose_maps`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np

from reid_pse.keypoints import (
    CSV_NAME,
    JOINTS,
    PART_NAMES,
    sample_keypoints,
    write_keypoints_csv,
)
from reidcore.atomic import atomic_open, atomic_write_json
from reidcore.data import Sample, Split
from reidcore.errors import ImageReadError

META_NAME = "pose_maps.json"


def image_size(path: str) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header.

    Raises:
        ImageReadError: the file is missing or not an image (named in the message).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
    except FileNotFoundError as exc:
        raise ImageReadError(f"image file not found: {path}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"cannot read image {path}: {exc}") from exc
    return int(h), int(w)


def output_keys(samples: Sequence[Sample]) -> list[str]:
    """File key per sample: the stem, or the path relative to the common folder (POSIX, no
    suffix) when stems collide."""
    stems = [Path(s.path).stem for s in samples]
    if len(set(stems)) == len(stems):
        return stems
    base = os.path.commonpath([os.path.abspath(os.path.dirname(s.path)) for s in samples])
    return [Path(os.path.relpath(os.path.abspath(s.path), base)).with_suffix("").as_posix()
            for s in samples]


@attrs.frozen
class PoseMapsSummary:
    """What :func:`write_pose_maps` wrote."""

    output: Path
    counts: dict  # part -> images
    images: int
    sources: dict  # keypoint source -> images
    height: int
    width: int
    sigma: float
    bytes_written: int
    maps: bool


def _save_npy(path: Path, array: np.ndarray) -> int:
    with atomic_open(path, "wb") as f:
        np.save(f, array)
    return path.stat().st_size


def write_pose_maps(split: Split, output: str | os.PathLike, height: int, width: int,
                    sigma: float, *, maps: bool = True, batch_size: int = 256,
                    dataset: str | None = None) -> PoseMapsSummary:
    """Render and store the pose maps of every image of ``split`` (train, query, gallery).

    Args:
        split: samples with ``extras["keypoints"]`` (see
            :func:`reid_pse.keypoints.attach_keypoints`); an image in several parts is
            written once.
        output: the folder (created).
        height, width: map size in pixels (the network input size).
        sigma: Gaussian standard deviation in map pixels.
        maps: ``False`` writes only ``keypoints.csv`` and ``pose_maps.json``.
        batch_size: images rendered at once.
        dataset: the dataset name recorded in ``pose_maps.json``.

    Every file is written atomically (temp file + rename); ``keypoints.csv`` and
    ``pose_maps.json`` last.

    Raises:
        KeypointsError: a sample has no keypoints (names the image).
        ImageReadError: an image's size cannot be read (names the file).
    """
    out = Path(output).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    samples: list[Sample] = []
    for part in PART_NAMES:
        for s in getattr(split, part):
            if s.path not in seen:
                seen.add(s.path)
                samples.append(s)
    keys = output_keys(samples) if samples else []
    kps = np.stack([sample_keypoints(s) for s in samples]) if samples else np.zeros((0, 14, 3))
    total = 0
    if maps:
        import torch

        from reid_pse.pose_maps import render_pose_maps, scale_keypoints

        for start in range(0, len(samples), batch_size):
            chunk = range(start, min(start + batch_size, len(samples)))
            scaled = torch.stack([
                scale_keypoints(kps[i], image_size(samples[i].path), height, width)
                for i in chunk
            ])
            rendered = render_pose_maps(scaled, height, width, sigma).numpy().astype(np.float16)
            for j, i in enumerate(chunk):
                total += _save_npy(out / f"{keys[i]}.npy", rendered[j])
    names = [Path(s.path).name if "/" not in k else k + Path(s.path).suffix
             for s, k in zip(samples, keys, strict=True)]
    write_keypoints_csv(out / CSV_NAME, zip(names, kps, strict=True))
    sources: dict[str, int] = {}
    for s in samples:
        src = str(s.extras.get("keypoint_source", "extras"))
        sources[src] = sources.get(src, 0) + 1
    counts = {part: len(getattr(split, part)) for part in PART_NAMES}
    meta = {
        "dataset": dataset or split.name, "height": height, "width": width, "sigma": sigma,
        "dtype": "float16", "shape": [len(JOINTS), height, width], "joints": list(JOINTS),
        "maps": maps, "images": len(samples), "parts": counts, "keypoint_sources": sources,
        "keypoints": f"{CSV_NAME}: 1-based pixels of the original images",
    }
    atomic_write_json(out / META_NAME, meta)
    total += (out / CSV_NAME).stat().st_size
    return PoseMapsSummary(out, counts, len(samples), sources, height, width, sigma, total, maps)
