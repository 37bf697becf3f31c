"""Video re-ID: tracklet-level features by pooling frame features, then image evaluation.

The MARS protocol (Zheng et al., "MARS: A Video Benchmark for Large-Scale Person
Re-identification", ECCV 2016): every tracklet (a sequence of frames of one person from
one camera) is one query or gallery item; its feature is the average (or max) of its
frames' features; ranking and metrics are those of images, with the Market-1501
excluder (same identity and camera ignored, pid -1 junk, pid 0 distractors).
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

__all__ = ["POOLINGS", "Tracklets", "pool_tracklets"]

#: frame pooling methods of :func:`pool_tracklets`
POOLINGS = ("mean", "max")


@attrs.frozen
class Tracklets:
    """Tracklet-level features from :func:`pool_tracklets`.

    Attributes:
        embs: ``(T, D)`` float32, one pooled feature per tracklet.
        tracklet_ids: ``(T,)`` the tracklet ids, ascending (``np.unique`` order).
        pids, camids: ``(T,)`` int64 identity and camera of each tracklet, or ``None``
            when no frame ids were given.
        num_frames: ``(T,)`` int64 frames per tracklet.
    """

    embs: np.ndarray = attrs.field(eq=False)
    tracklet_ids: np.ndarray = attrs.field(eq=False)
    pids: np.ndarray | None = attrs.field(eq=False)
    camids: np.ndarray | None = attrs.field(eq=False)
    num_frames: np.ndarray = attrs.field(eq=False)


def _per_tracklet(values: Any, name: str, n: int, order: np.ndarray, starts: np.ndarray,
                  tids: np.ndarray) -> np.ndarray:
    v = np.asarray(values).astype(np.int64)
    if v.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (one per frame), got {v.shape}")
    v = v[order]
    lo, hi = np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts)
    if (lo != hi).any():
        t = int(np.flatnonzero(lo != hi)[0])
        raise ValueError(f"tracklet {tids[t].item()!r} has frames of different {name} "
                         f"({lo[t]} and {hi[t]}); a tracklet is one person from one camera")
    return lo


def pool_tracklets(features: Any, tracklet_ids: Any, pids: Any = None, camids: Any = None,
                   method: str = "mean") -> Tracklets:
    """Pool frame features into one feature per tracklet.

    Args:
        features: ``(F, D)`` frame features (array or tensor; any real dtype).
        tracklet_ids: ``(F,)`` the tracklet of each frame (integers or strings; frames of
            one tracklet need not be contiguous).
        pids, camids: optional ``(F,)`` integer identity/camera of each frame; they must
            be constant within a tracklet.
        method: ``"mean"`` (MARS's average pooling) or ``"max"`` (element-wise maximum).

    Returns:
        :class:`Tracklets`, tracklets in ascending ``tracklet_ids`` order.

    Raises:
        ValueError: unknown ``method``; ``features`` not 2-D; lengths that differ from
            ``F``; no frame; a tracklet whose frames disagree on pid or camera.
    """
    if method not in POOLINGS:
        raise ValueError(f"method must be one of {', '.join(POOLINGS)}, got {method!r}")
    if hasattr(features, "detach"):
        features = features.detach().cpu().numpy()
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"features must be (frames, D), got shape {x.shape}")
    n = len(x)
    if n == 0:
        raise ValueError("no frames to pool")
    t = np.asarray(tracklet_ids)
    if t.shape != (n,):
        raise ValueError(f"tracklet_ids must have shape ({n},) (one per frame), got {t.shape}")
    tids, inverse, counts = np.unique(t, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    xs = x[order]
    if method == "mean":
        embs = (np.add.reduceat(xs.astype(np.float64), starts, axis=0)
                / counts[:, None]).astype(np.float32)
    else:
        embs = np.maximum.reduceat(xs, starts, axis=0)
    tp = None if pids is None else _per_tracklet(pids, "pids", n, order, starts, tids)
    tc = None if camids is None else _per_tracklet(camids, "camids", n, order, starts, tids)
    return Tracklets(embs, tids, tp, tc, counts.astype(np.int64))
