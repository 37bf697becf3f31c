"""Query-by-gallery distance matrices, computed with torch in float32 in query chunks.

The metrics match :func:`scipy.spatial.distance.cdist` of the same name (up to
float32 rounding): ``euclidean``, ``sqeuclidean``, ``cosine`` (one minus the
cosine similarity) and ``cityblock`` (L1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = ["METRICS", "pairwise_distances"]


def _sqeuclidean(q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # |q|^2 + |g|^2 - 2 q.g, clamped at 0 against rounding; see pairwise_distances' note.
    d = (q * q).sum(1, keepdim=True) + (g * g).sum(1)[None, :]
    d.addmm_(q, g.T, alpha=-2.0)
    return d.clamp_(min=0.0)


def _euclidean(q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return _sqeuclidean(q, g).sqrt_()


def _cosine(q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # Zero vectors are normalised to zero (F.normalize's eps): their distance to anything is 1.
    qn = torch.nn.functional.normalize(q, dim=1)
    gn = torch.nn.functional.normalize(g, dim=1)
    return (qn @ gn.T).neg_().add_(1.0)


def _cityblock(q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return torch.cdist(q, g, p=1.0)


#: metric name -> ``f(query (c, D), gallery (n_g, D)) -> (c, n_g)`` on float32 tensors.
METRICS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "euclidean": _euclidean,
    "sqeuclidean": _sqeuclidean,
    "cosine": _cosine,
    "cityblock": _cityblock,
}


def _as_matrix(x: Any, name: str, device: torch.device) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n, D) array of embeddings, got shape "
                         f"{tuple(t.shape)}")
    return t.to(device=device, dtype=torch.float32)


def pairwise_distances(
    query: torch.Tensor | np.ndarray,
    gallery: torch.Tensor | np.ndarray,
    metric: str = "euclidean",
    chunk_size: int = 4096,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Distances between every query and every gallery embedding.

    Args:
        query: ``(n_q, D)`` embeddings (tensor or array, any real dtype; cast to float32).
        gallery: ``(n_g, D)`` embeddings.
        metric: one of :data:`METRICS`: ``"euclidean"``, ``"sqeuclidean"``, ``"cosine"``
            (``1 - cos``; a zero vector is at distance 1 from everything, where scipy
            gives NaN) or ``"cityblock"``.
        chunk_size: queries per chunk; bounds the working memory to about
            ``chunk_size * n_g`` floats on ``device``.
        device: where to compute. ``None``: the device of ``query`` if it is a tensor,
            else CUDA when available, else the CPU.

    Returns:
        ``(n_q, n_g)`` float32 numpy array; entry ``[i, j]`` is the distance of query
        ``i`` to gallery item ``j``.

    Raises:
        ValueError: unknown ``metric`` (the message lists the known ones), inputs that
            are not 2-D, embedding dimensions that differ (the message names both shapes),
            or ``chunk_size < 1``.

    Note:
        ``euclidean`` and ``sqeuclidean`` use the expansion
        ``|q|^2 + |g|^2 - 2 q.g`` (one matrix product, as torchreid and fast-reid do),
        so in float32 the absolute error of a squared distance is about
        ``1e-7 * (|q|^2 + |g|^2)``: a vector's distance to itself may come out as a small
        positive number rather than exactly 0.
    """
    try:
        fn = METRICS[metric]
    except KeyError:
        raise ValueError(
            f"Unknown metric {metric!r}; known metrics: {', '.join(METRICS)}"
        ) from None
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    if device is None:
        if isinstance(query, torch.Tensor):
            device = query.device
        else:
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    q = _as_matrix(query, "query", device)
    g = _as_matrix(gallery, "gallery", device)
    if q.shape[1] != g.shape[1]:
        raise ValueError(
            f"query and gallery embeddings differ in dimension: query has shape "
            f"{tuple(q.shape)}, gallery has shape {tuple(g.shape)}"
        )
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, q.shape[0], chunk_size):
            stop = min(start + chunk_size, q.shape[0])
            out[start:stop] = fn(q[start:stop], g).cpu().numpy()
    return out


def stack_query_gallery(query: Any, gallery: Any) -> np.ndarray:
    """Query rows then gallery rows as one C-contiguous float32 ``(n_q + n_g, D)`` array.

    Used by the re-rankers, which work on all ``N = n_q + n_g`` embeddings at once.

    Raises:
        ValueError: either is not 2-D, or their dimensions ``D`` differ.
    """
    q = np.asarray(query, dtype=np.float32)
    g = np.asarray(gallery, dtype=np.float32)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f"query and gallery must be (n, D) with the same D, got {q.shape} "
                         f"and {g.shape}")
    return np.ascontiguousarray(np.concatenate([q, g]))
