"""The keypoint table ``keypoints.csv`` (Market-1501 body points), shared by reid-pse and reid-san.

Format (that of ``market1501-holdout/keypoints.csv``): a header ``image,x0..x13,y0..y13``
(any column order; optional ``v0..v13`` confidences), one row per image; ``image`` is the
file name (or a path relative to the CSV's folder); ``x`` in ``1..W`` and ``y`` in ``1..H``
pixels, **1-based** as in the Market-1501 body-point annotation (market1501_body_point);
a value ``<= 0``, empty or NaN marks a missing joint. Joints in the Market-1501
body-point order: 0 head, 1 neck, 2-4 right shoulder, elbow, wrist, 5-7 left shoulder,
elbow, wrist, 8-10 right hip, knee, ankle, 11-13 left hip, knee, ankle.

In memory (what :func:`read_keypoints_csv` returns): ``(14, 3)`` float32
``x, y, confidence`` in 0-based pixels with pixel centres at integer coordinates (the
top-left pixel is ``(0, 0)``; the CSV value minus 1), confidence in ``[0, 1]`` and all
three 0 for a missing joint. Read by reid-pse for its pose maps (Sarfraz et al., CVPR
2018, Sec. 3.2) and by reid-san for its keypoint-warped textures (a stand-in for SAN-PG's
pseudo textures, Jin et al., AAAI 2020, Sec. 3.2).

This module imports only numpy and the core's errors.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from reid_datasets.joints import NUM_JOINTS
from reidcore.errors import DatasetError


class KeypointsError(DatasetError):
    """Keypoints are missing for an image, or a keypoint file is malformed (names it)."""


def from_one_based(xs: np.ndarray, ys: np.ndarray, vs: np.ndarray | None = None) -> np.ndarray:
    """Rows of 1-based pixel coordinates -> ``(N, J, 3)`` float32 0-based keypoints.

    ``xs``, ``ys``: ``(N, J)``; a value ``<= 0`` or NaN marks the joint missing (the
    market1501_body_point convention). ``vs``: optional ``(N, J)`` confidences (else 1),
    NaN read as 0 and clipped to ``[0, 1]``. A missing joint is ``(0, 0, 0)``.
    """
    xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
    present = np.isfinite(xs) & np.isfinite(ys) & (xs > 0) & (ys > 0)
    conf = np.ones_like(xs) if vs is None else np.nan_to_num(np.asarray(vs, np.float64), nan=0.0)
    conf = np.where(present, np.clip(conf, 0.0, 1.0), 0.0)
    out = np.stack([np.where(present, xs - 1.0, 0.0), np.where(present, ys - 1.0, 0.0), conf], -1)
    return out.astype(np.float32)


def to_one_based(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(J, 3)`` 0-based keypoints -> ``(x, y)`` 1-based rows ``(J,)``, missing joints as 0.

    Inverse of :func:`from_one_based` for the joints with confidence > 0 whose 1-based
    coordinates are positive (a joint left of / above the image by more than half a
    pixel cannot be stored in this format and is written as missing).
    """
    present = kp[:, 2] > 0
    return np.where(present, kp[:, 0] + 1.0, 0.0), np.where(present, kp[:, 1] + 1.0, 0.0)


def csv_header(num_joints: int = NUM_JOINTS, visibility: bool = False) -> list[str]:
    """The column names ``image, x0..x{J-1}, y0..y{J-1}`` (and ``v0..`` with ``visibility``)."""
    cols = ["image", *[f"x{i}" for i in range(num_joints)], *[f"y{i}" for i in range(num_joints)]]
    return cols + ([f"v{i}" for i in range(num_joints)] if visibility else [])


def read_keypoints_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a keypoint table such as ``market1501-holdout/keypoints.csv`` (format above).

    Blank lines are skipped; columns beyond the header's are ignored.

    Returns:
        ``{image: (14, 3) float32}`` ``[x, y, confidence]`` in 0-based pixels of the
        original image (:func:`from_one_based`); ``{}`` for a table without rows.

    Raises:
        KeypointsError (a :class:`~reidcore.errors.DatasetError`): the file is missing or
            unreadable, the header lacks a column, a value is not a number, a row is short,
            or one image is listed twice (file and line named).
    """
    path = Path(path)
    try:
        f = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise KeypointsError(f"cannot read keypoint table {path}: {exc}") from exc
    with f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        need = csv_header()
        lacking = [c for c in need if c not in header]
        if lacking:
            raise KeypointsError(
                f"{path}: header must hold {','.join(need[:2])}..x13,y0..y13 (1-based pixels; "
                f"optional v0..v13), it lacks {', '.join(lacking[:5])}"
                f"{' ...' if len(lacking) > 5 else ''}"
            )
        col = {h: i for i, h in enumerate(header)}
        has_v = all(f"v{i}" in col for i in range(NUM_JOINTS))
        xi = [col[f"x{i}"] for i in range(NUM_JOINTS)]
        yi = [col[f"y{i}"] for i in range(NUM_JOINTS)]
        vi = [col[f"v{i}"] for i in range(NUM_JOINTS)] if has_v else None
        names: list[str] = []
        rows: list[list[float]] = []
        seen: dict[str, int] = {}
        for lineno, fields in enumerate(reader, start=2):
            if not fields or not any(x.strip() for x in fields):
                continue
            if len(fields) < len(header):
                raise KeypointsError(
                    f"{path}:{lineno}: {len(fields)} fields, the header has {len(header)}"
                )
            name = fields[col["image"]].strip()
            if name in seen:
                raise KeypointsError(
                    f"{path}:{lineno}: image {name!r} is listed twice (also line {seen[name]})"
                )
            seen[name] = lineno
            try:
                rows.append([float(fields[i]) if fields[i].strip() else math.nan
                             for i in xi + yi + (vi or [])])
            except ValueError as exc:
                raise KeypointsError(f"{path}:{lineno}: not a number: {exc}") from exc
            names.append(name)
    if not names:
        return {}
    arr = np.asarray(rows, np.float64)
    n = NUM_JOINTS
    kps = from_one_based(arr[:, :n], arr[:, n:2 * n], arr[:, 2 * n:] if has_v else None)
    return dict(zip(names, kps, strict=True))
