"""Person views (front / back / side): dataset labels and keypoint pseudo-labels.

PSE (Sarfraz et al., "A Pose-Sensitive Embedding for Person Re-Identification with
Expanded Cross Neighborhood Re-Ranking", CVPR 2018, Sec. 3.1) predicts a coarse view of
the person -- front, back or side -- and weights three view-specific branches with the
predicted probabilities. The view predictor is trained on a dataset with view labels
(RAP, see :mod:`reid_pse.rap`; left and right both count as side) because the re-ID
datasets (Market-1501, DukeMTMC-reID) have none.

This module maps every source of view information onto the paper's three classes
(:data:`VIEWS`, class index 0..2, ``-1`` = unknown):

* a dataset's own label in ``Sample.extras["view"]`` (the synthetic dataset's
  ``"front"``/``"back"``/``"side"``, RAP's ``faceFront``/``faceBack``/``faceLeft``/
  ``faceRight``, side-left/side-right, or an int class index);
* otherwise a pseudo-label from 14 body keypoints (``Sample.extras["keypoints"]``, the
  Market-1501 body-point order), by :func:`views_from_keypoints`.

Keypoint rule
-------------
With the person's right/left shoulders ``(2, 5)`` and hips ``(8, 11)`` and the torso
height ``T`` (vertical distance from the neck -- or the shoulders' centre -- to the hips'
centre), each pair with both joints visible gives its *signed width*
``(x_left - x_right) / T``. In a front view the person's right side is on the image's
left, so the width is positive; in a back view it is negative; turned sideways it
shrinks towards zero (roughly with the cosine of the turn angle). Each width is divided
by the width of a person facing the camera (:data:`SHOULDER_FRONT_WIDTH`,
:data:`HIP_FRONT_WIDTH`), and a pair of which only one joint is visible (the far one
hidden by the body, typical of side views) counts as width 0. The mean over the pairs
with at least one visible joint is the *frontal score* (:func:`frontal_scores`, about
+1 facing the camera, -1 facing away, 0 in profile). ``|score| <`` :data:`SIDE_THRESHOLD`
is *side*, otherwise the sign decides *front* or *back*. A view is undeterminable (-1)
when neither shoulders nor hips are visible, or the torso height cannot be measured or
is below :data:`MIN_TORSO_HEIGHT`.

Tuning (numbers measured on this repository's data):

* Synthetic dataset (``reid_datasets.synthetic``; 720 images, 60+20 ids, 3 cameras):
  front shoulder/hip widths ``0.53..0.72`` / ``0.29..0.40`` of the torso height, back
  the same negated; every side view hides the far shoulder and hip. Any threshold
  between 0 and 0.7 separates the classes (agreement 100%, see the tests).
* Market-1501 holdout (12,936 machine-estimated keypoint sets, no visibility flags):
  the absolute shoulder width peaks at 0.7-0.8 and the hip width at 0.4-0.5 of the
  torso height. :data:`SHOULDER_FRONT_WIDTH` = 0.7 and :data:`HIP_FRONT_WIDTH` = 0.4 sit
  between the two datasets. :data:`SIDE_THRESHOLD` = 0.5 = cos 60 deg makes the three
  views equal 120 deg sectors of the walking direction; on the Market holdout it labels
  49% front, 37% back, 14% side (0.1% unknown: hips above the neck).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from reid_datasets.joints import NUM_JOINTS

#: The paper's three view classes; a view label is the index into this tuple.
VIEWS = ("front", "back", "side")
#: Label of an unknown / undeterminable view.
UNKNOWN = -1

#: Market-1501 body-point joint indices used here (order: :mod:`reid_datasets.joints`).
NECK = 1
R_SHOULDER, L_SHOULDER = 2, 5
R_HIP, L_HIP = 8, 11

#: Shoulder width (joint to joint) of a person facing the camera, in torso heights.
SHOULDER_FRONT_WIDTH = 0.7
#: Hip width (joint to joint) of a person facing the camera, in torso heights.
HIP_FRONT_WIDTH = 0.4
#: ``|frontal score|`` below this is a side view (0.5 = cos 60 deg: three 120 deg sectors).
SIDE_THRESHOLD = 0.5
#: Smallest usable torso height in pixels; below it (or negative) the view is unknown.
MIN_TORSO_HEIGHT = 2.0

# Every accepted spelling (lower case, only letters and digits) -> class index.
_NAMES = {
    "front": 0,
    "frontal": 0,
    "facefront": 0,
    "back": 1,
    "rear": 1,
    "faceback": 1,
    "side": 2,
    "left": 2,
    "right": 2,
    "sideleft": 2,
    "sideright": 2,
    "leftside": 2,
    "rightside": 2,
    "profile": 2,
    "faceleft": 2,
    "faceright": 2,
    "unknown": UNKNOWN,
    "none": UNKNOWN,
    "": UNKNOWN,
}


def _check_keypoints(kps: np.ndarray) -> np.ndarray:
    arr = np.asarray(kps, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1] != NUM_JOINTS or arr.shape[2] != 3:
        raise ValueError(
            f"keypoints must have shape (N, {NUM_JOINTS}, 3) -- x, y, visibility in the "
            f"Market-1501 joint order -- got {np.shape(kps)}"
        )
    return arr


def frontal_scores(kps: np.ndarray) -> np.ndarray:
    """Signed frontal score per person from body keypoints (see the module docstring).

    Args:
        kps: ``(N, 14, 3)`` float array: x, y in pixels (any origin; y grows downwards)
            and a visibility/confidence per joint (``<= 0`` or non-finite x/y = missing),
            Market-1501 joint order.

    Returns:
        ``(N,)`` float64: about ``+1`` facing the camera, ``-1`` facing away, ``0`` in
        profile (may exceed 1 in magnitude for broad builds); ``NaN`` where the view is
        undeterminable (no visible shoulder nor hip, no measurable torso height, or a
        torso height below :data:`MIN_TORSO_HEIGHT`).

    Raises:
        ValueError: ``kps`` does not have shape ``(N, 14, 3)``.
    """
    arr = _check_keypoints(kps)
    x, y = arr[..., 0], arr[..., 1]
    vis = (arr[..., 2] > 0) & np.isfinite(x) & np.isfinite(y)
    x = np.where(vis, x, 0.0)
    y = np.where(vis, y, 0.0)

    def centre_y(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        n = vis[:, a].astype(np.float64) + vis[:, b]
        s = y[:, a] * vis[:, a] + y[:, b] * vis[:, b]
        return np.divide(s, n, out=np.zeros_like(s), where=n > 0), n > 0

    sh_y, has_sh = centre_y(R_SHOULDER, L_SHOULDER)
    hip_y, has_hip = centre_y(R_HIP, L_HIP)
    top = np.where(vis[:, NECK], y[:, NECK], sh_y)
    has_top = vis[:, NECK] | has_sh
    torso = hip_y - top
    ok = has_top & has_hip & (torso >= MIN_TORSO_HEIGHT) & (has_sh | has_hip)
    safe = np.where(ok, torso, 1.0)

    total = np.zeros(len(arr))
    count = np.zeros(len(arr))
    for right, left, width in (
        (R_SHOULDER, L_SHOULDER, SHOULDER_FRONT_WIDTH),
        (R_HIP, L_HIP, HIP_FRONT_WIDTH),
    ):
        both = vis[:, right] & vis[:, left]
        one = vis[:, right] ^ vis[:, left]
        total += np.where(both, (x[:, left] - x[:, right]) / safe / width, 0.0)
        count += both | one  # a half-hidden pair counts as width 0 (side evidence)
    return np.where(ok & (count > 0), total / np.maximum(count, 1), np.nan)


def views_from_keypoints(kps: np.ndarray) -> np.ndarray:
    """Pseudo view labels from body keypoints (vectorised :func:`view_from_keypoints`).

    Args:
        kps: ``(N, 14, 3)`` keypoints, as for :func:`frontal_scores`.

    Returns:
        ``(N,)`` int64 class indices into :data:`VIEWS` (0 front, 1 back, 2 side), ``-1``
        where undeterminable.

    Raises:
        ValueError: ``kps`` does not have shape ``(N, 14, 3)``.
    """
    score = frontal_scores(kps)
    out = np.full(score.shape, UNKNOWN, dtype=np.int64)
    known = np.isfinite(score)
    out[known & (score >= SIDE_THRESHOLD)] = 0
    out[known & (score <= -SIDE_THRESHOLD)] = 1
    out[known & (np.abs(score) < SIDE_THRESHOLD)] = 2
    return out


def view_from_keypoints(kp: np.ndarray) -> int:
    """Pseudo view label of one person from its body keypoints.

    The left/right order of shoulders and hips gives front (person's right joint on the
    image's left) or back; a narrow shoulder/hip width relative to the torso height, or
    a half-hidden pair, gives side (module docstring; PSE Sec. 3.1 uses the same three
    classes).

    Args:
        kp: ``(14, 3)`` float array: x, y in pixels and visibility (0 = missing),
            Market-1501 joint order.

    Returns:
        0 (front), 1 (back), 2 (side), or -1 when undeterminable (e.g. shoulders and
        hips missing).

    Raises:
        ValueError: ``kp`` does not have shape ``(14, 3)``.
    """
    arr = np.asarray(kp)
    if arr.shape != (NUM_JOINTS, 3):
        raise ValueError(f"keypoints must have shape ({NUM_JOINTS}, 3), got {arr.shape}")
    return int(views_from_keypoints(arr[None])[0])


def view_index(value: Any) -> int:
    """Map a dataset's view label to a class index of :data:`VIEWS` (``-1`` unknown).

    Accepts an int class index (``-1..2``) or a name, compared case-insensitively and
    ignoring everything but letters and digits: ``front``; ``back``; ``side``, ``left``,
    ``right``, ``side-left``, ``side-right``; RAP's ``faceFront``, ``faceBack``,
    ``faceLeft``, ``faceRight`` (also ``Face-Front`` etc.); ``unknown``/``""`` -> -1.

    Raises:
        ValueError: an unknown name or an int outside ``-1..2``.
    """
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"view label must be an int class or a name, got {value!r}")
    if isinstance(value, (int, np.integer)):
        if not UNKNOWN <= int(value) < len(VIEWS):
            raise ValueError(f"view class {int(value)} is outside -1..{len(VIEWS) - 1}")
        return int(value)
    if isinstance(value, str):
        key = "".join(ch for ch in value.lower() if ch.isalnum())
        if key in _NAMES:
            return _NAMES[key]
    raise ValueError(
        f"unknown view label {value!r}; expected one of {', '.join(VIEWS)}, left/right, "
        "RAP's faceFront/faceBack/faceLeft/faceRight, or an int class 0..2"
    )


def view_labels(samples: Sequence[Any], *, use_keypoints: bool = True) -> np.ndarray:
    """View class per sample: the dataset's label, else a keypoint pseudo-label, else -1.

    Args:
        samples: :class:`~reidcore.data.Sample` objects (anything with ``extras`` and
            ``path``). ``extras["view"]`` (see :func:`view_index`) wins; otherwise
            ``extras["keypoints"]`` (``(14, 3)``) gives :func:`view_from_keypoints`.
        use_keypoints: ``False`` to ignore keypoints (only true labels, else -1).

    Returns:
        ``(N,)`` int64 class indices into :data:`VIEWS`, ``-1`` unknown.

    Raises:
        ValueError: an ``extras["view"]`` value is not a known view or a keypoint array
            has the wrong shape; the message names the sample's path.
    """
    out = np.full(len(samples), UNKNOWN, dtype=np.int64)
    pending: list[int] = []
    arrays: list[np.ndarray] = []
    for i, sample in enumerate(samples):
        extras: Mapping[str, Any] = getattr(sample, "extras", None) or {}
        if "view" in extras and extras["view"] is not None:
            try:
                out[i] = view_index(extras["view"])
            except ValueError as exc:
                raise ValueError(f"{getattr(sample, 'path', i)}: {exc}") from None
        elif use_keypoints and extras.get("keypoints") is not None:
            kp = np.asarray(extras["keypoints"], dtype=np.float64)
            if kp.shape != (NUM_JOINTS, 3):
                raise ValueError(
                    f"{getattr(sample, 'path', i)}: keypoints must have shape "
                    f"({NUM_JOINTS}, 3), got {kp.shape}"
                )
            pending.append(i)
            arrays.append(kp)
    if pending:
        out[np.asarray(pending)] = views_from_keypoints(np.stack(arrays))
    return out


def view_counts(labels: Iterable[int]) -> dict[str, int]:
    """``{"front": n, "back": n, "side": n, "unknown": n}`` for class labels (``-1`` unknown).

    Raises:
        ValueError: a label outside ``-1..2``.
    """
    arr = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels)
    arr = arr.astype(np.int64).ravel()
    if arr.size and (arr.min() < UNKNOWN or arr.max() >= len(VIEWS)):
        raise ValueError(f"view labels must lie in -1..{len(VIEWS) - 1}")
    counts = {name: int(np.sum(arr == i)) for i, name in enumerate(VIEWS)}
    counts["unknown"] = int(np.sum(arr == UNKNOWN))
    return counts


def view_summary(labels: Iterable[int]) -> str:
    """One line of counts and shares, e.g. ``"front 120 (48.0%), back ..., unknown 0 (0.0%)"``."""
    counts = view_counts(labels)
    total = max(1, sum(counts.values()))
    return ", ".join(f"{k} {n} ({100.0 * n / total:.1f}%)" for k, n in counts.items())
