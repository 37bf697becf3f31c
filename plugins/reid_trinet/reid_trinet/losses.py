"""Triplet losses of "In Defense of the Triplet Loss for Person Re-Identification".

Hermans, Beyer, Leibe (2017), arXiv:1703.07737, Sec. 2:

* batch hard (eq. 5): for every anchor of a P×K batch, its hardest positive (the
  farthest image of the same identity) against its hardest negative (the closest
  image of another identity);
* batch all (eq. 6): every valid triplet of the batch, averaged over all of them
  or, as the paper's ``BA≠0`` variant, over the active (non-zero) ones only.

The margin is either a number ``m >= 0`` (hinge: ``relu(m + d_pos - d_neg)``) or
``"soft"`` (Sec. 2, "soft-margin": ``softplus(d_pos - d_neg)``, the paper's
default). Distances are computed by :func:`cdist` in float32, whatever the
autocast dtype of the embeddings.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

METRICS = ("euclidean", "sqeuclidean", "cityblock")
EPSILON = 1e-12
"""Added under the square root of the euclidean distance: finite gradient at 0."""
ACTIVE_THRESHOLD = 1e-5
"""A loss term above this counts as active in ``last_stats["active_fraction"]``
(the threshold triplet-reid logs with; also meaningful for the soft margin)."""
AVERAGES = ("active", "all")

Margin = str | float


def cdist(a: torch.Tensor, b: torch.Tensor, metric: str = "euclidean") -> torch.Tensor:
    """All pairwise distances between the rows of ``a`` and of ``b``.

    Args:
        a: ``(N, D)`` any float dtype (cast to float32).
        b: ``(M, D)`` any float dtype (cast to float32).
        metric: ``"euclidean"`` (``sqrt(sum (a-b)^2 + 1e-12)``: the epsilon keeps
            the gradient finite when two rows coincide, so it never returns an
            exact 0), ``"sqeuclidean"`` or ``"cityblock"`` (L1).

    Returns:
        ``(N, M)`` float32, computed with autocast disabled (stable when the
        embeddings come from an fp16/bf16 forward). Memory is ``O(N * M * D)``:
        this is meant for training batches, not for a whole gallery.

    Raises:
        ValueError: unknown metric, or ``a``/``b`` not 2-D with the same width.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown triplet metric {metric!r}; choose one of {', '.join(METRICS)}")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"cdist needs two 2-D tensors of the same width, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    with torch.autocast(device_type=a.device.type, enabled=False):
        diffs = a.float()[:, None, :] - b.float()[None, :, :]
        if metric == "cityblock":
            return diffs.abs().sum(-1)
        sq = diffs.square().sum(-1)
        if metric == "sqeuclidean":
            return sq
        return torch.sqrt(sq + EPSILON)


def parse_margin(margin: Margin) -> Margin:
    """``"soft"`` or a float ``>= 0`` from ``"soft"``, a number, or a number as a string.

    Raises:
        ValueError: anything else, or a negative margin.
    """
    if isinstance(margin, str):
        text = margin.strip().lower()
        if text == "soft":
            return "soft"
        try:
            value = float(text)
        except ValueError:
            raise ValueError(
                f"triplet margin must be 'soft' or a non-negative number, got {margin!r}"
            ) from None
    elif isinstance(margin, numbers.Real) and not isinstance(margin, bool):
        value = float(margin)
    else:
        raise ValueError(f"triplet margin must be 'soft' or a non-negative number, got {margin!r}")
    if not value >= 0.0:  # also rejects NaN
        raise ValueError(f"triplet margin must be >= 0, got {margin!r}")
    return value


def apply_margin(diff: torch.Tensor, margin: Margin) -> torch.Tensor:
    """``softplus(diff)`` for ``"soft"``, else ``relu(margin + diff)`` (``diff = d_pos - d_neg``)."""
    if margin == "soft":
        return F.softplus(diff)
    return F.relu(diff + float(margin))


def _embedding_and_pids(
    outputs: Mapping[str, torch.Tensor], pids: torch.Tensor, loss: str
) -> tuple[torch.Tensor, torch.Tensor]:
    if "embedding" not in outputs:
        raise KeyError(f"{loss} needs the model output 'embedding' (B, D)")
    emb = outputs["embedding"]
    if emb.ndim != 2:
        raise ValueError(f"{loss}: embedding must be (B, D), got shape {tuple(emb.shape)}")
    pids = torch.as_tensor(pids, device=emb.device)
    if pids.ndim != 1 or pids.shape[0] != emb.shape[0]:
        raise ValueError(
            f"{loss}: pids must be (B,) = ({emb.shape[0]},), got shape {tuple(pids.shape)}"
        )
    return emb, pids


def _masks(pids: torch.Tensor, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) ``(B, B)`` bool masks; raise when no triplet exists."""
    same = pids[:, None] == pids[None, :]
    eye = torch.eye(len(pids), dtype=torch.bool, device=pids.device)
    positive = same & ~eye
    negative = ~same
    if not bool(positive.any()):
        raise ValueError(
            f"{loss}: no positive pair in the batch (each of its {len(pids)} pids appears "
            "once); sample P×K batches with K >= 2 images per identity"
        )
    if not bool(negative.any()):
        raise ValueError(
            f"{loss}: no negative pair in the batch (all {len(pids)} images share one pid); "
            "sample P×K batches with P >= 2 identities"
        )
    return positive, negative


class BatchHardTripletLoss(nn.Module):
    """Batch-hard triplet loss (Hermans et al. 2017, Sec. 2, eq. 5).

    For each anchor ``a``: ``d_pos = max_{p: pid_p = pid_a, p != a} D(a, p)`` and
    ``d_neg = min_{n: pid_n != pid_a} D(a, n)``; the loss is the mean over anchors
    of ``softplus(d_pos - d_neg)`` (``margin="soft"``) or
    ``relu(margin + d_pos - d_neg)``. Anchors without any positive (an identity
    with one image in the batch) are left out of the mean.

    Args:
        margin: ``"soft"`` (the paper's default), a number ``>= 0`` or a numeric string.
        metric: ``"euclidean"`` (default), ``"sqeuclidean"`` or ``"cityblock"``.

    Forward:
        ``outputs["embedding"]`` ``(B, D)`` any float dtype and ``pids`` ``(B,)``
        int64 -> scalar float32. Sets ``last_stats`` = ``{"active_fraction"``
        (anchors whose loss exceeds 1e-5), ``"mean_pos"`` (mean hardest-positive
        distance), ``"mean_neg"`` (mean hardest-negative distance)``}``.

    Raises:
        ValueError: bad margin or metric; a batch without any positive pair
            (every pid appears once) or without any negative pair.
        KeyError: ``outputs`` has no ``"embedding"``.
    """

    def __init__(self, margin: Margin = "soft", metric: str = "euclidean"):
        super().__init__()
        if metric not in METRICS:
            raise ValueError(
                f"unknown triplet metric {metric!r}; choose one of {', '.join(METRICS)}"
            )
        self.margin = parse_margin(margin)
        self.metric = metric
        self.last_stats: dict[str, float] = {}

    def extra_repr(self) -> str:
        return f"margin={self.margin!r}, metric={self.metric!r}"

    def forward(self, outputs: Mapping[str, torch.Tensor], pids: torch.Tensor) -> torch.Tensor:
        emb, pids = _embedding_and_pids(outputs, pids, "batch_hard")
        positive, negative = _masks(pids, "batch_hard")
        dists = cdist(emb, emb, self.metric)
        valid = positive.any(1) & negative.any(1)
        d_pos = dists.masked_fill(~positive, float("-inf")).amax(1)[valid]
        d_neg = dists.masked_fill(~negative, float("inf")).amin(1)[valid]
        losses = apply_margin(d_pos - d_neg, self.margin)
        with torch.no_grad():
            self.last_stats = {
                "active_fraction": float((losses > ACTIVE_THRESHOLD).float().mean()),
                "mean_pos": float(d_pos.mean()),
                "mean_neg": float(d_neg.mean()),
            }
        return losses.mean()


class BatchAllTripletLoss(nn.Module):
    """Batch-all triplet loss (Hermans et al. 2017, Sec. 2, eq. 6).

    Every triplet ``(a, p, n)`` of the batch with ``pid_p = pid_a``, ``p != a`` and
    ``pid_n != pid_a`` contributes ``softplus(D(a,p) - D(a,n))`` (``"soft"``) or
    ``relu(margin + D(a,p) - D(a,n))``.

    Args:
        margin: ``"soft"``, a number ``>= 0`` or a numeric string.
        metric: ``"euclidean"`` (default), ``"sqeuclidean"`` or ``"cityblock"``.
        average: ``"active"`` (default; the paper's ``BA≠0``: the sum divided by
            the number of non-zero terms, 0 when none is) or ``"all"`` (the mean
            over every valid triplet, the paper's plain ``BA``).

    Forward:
        ``outputs["embedding"]`` ``(B, D)`` and ``pids`` ``(B,)`` int64 -> scalar
        float32. Memory is ``O(B^3)`` (373k terms for a 72-image batch). Sets
        ``last_stats`` = ``{"active_fraction"`` (triplets whose loss exceeds 1e-5),
        ``"mean_pos"`` / ``"mean_neg"`` (mean distance over all positive /
        negative pairs)``}``.

    Raises:
        ValueError: bad margin, metric or average; a batch without any positive
            pair (every pid appears once) or without any negative pair.
        KeyError: ``outputs`` has no ``"embedding"``.
    """

    def __init__(self, margin: Margin = "soft", metric: str = "euclidean", average: str = "active"):
        super().__init__()
        if metric not in METRICS:
            raise ValueError(
                f"unknown triplet metric {metric!r}; choose one of {', '.join(METRICS)}"
            )
        if average not in AVERAGES:
            raise ValueError(f"unknown average {average!r}; choose one of {', '.join(AVERAGES)}")
        self.margin = parse_margin(margin)
        self.metric = metric
        self.average = average
        self.last_stats: dict[str, float] = {}

    def extra_repr(self) -> str:
        return f"margin={self.margin!r}, metric={self.metric!r}, average={self.average!r}"

    def forward(self, outputs: Mapping[str, torch.Tensor], pids: torch.Tensor) -> torch.Tensor:
        emb, pids = _embedding_and_pids(outputs, pids, "batch_all")
        positive, negative = _masks(pids, "batch_all")
        dists = cdist(emb, emb, self.metric)
        # (a, p, n) -> D(a, p) - D(a, n), kept for the valid triplets only
        valid = positive[:, :, None] & negative[:, None, :]
        diff = (dists[:, :, None] - dists[:, None, :])[valid]
        losses = apply_margin(diff, self.margin)
        if self.average == "all":
            loss = losses.mean()
        else:
            active = (losses > 0).sum()
            loss = losses.sum() / active.clamp(min=1).to(losses.dtype)
        with torch.no_grad():
            self.last_stats = {
                "active_fraction": float((losses > ACTIVE_THRESHOLD).float().mean()),
                "mean_pos": float(dists[positive].mean()),
                "mean_neg": float(dists[negative].mean()),
            }
        return loss
