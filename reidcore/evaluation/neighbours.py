"""Distance blocks and the nearest-neighbour search shared by the re-rankers and the
streaming evaluation.

:class:`DistanceBlocks` computes blocks ``d(x[a], x[b])`` of a
:data:`~reidcore.evaluation.METRICS` metric in one reused float32 buffer (the formulas
of :mod:`reidcore.evaluation.distances`, with row norms or unit vectors computed once).
:func:`search_neighbours` makes one pass over the all-pairs distance rows of the
``N = n_q + n_g`` query and gallery embeddings and keeps every image's ``k`` nearest
images (itself included, ties by lower index, exactly as a stable argsort of the row)
and each row's maximum distance. k-reciprocal re-ranking (Zhong et al., CVPR 2017) and
ECN (Sarfraz et al., CVPR 2018) both start from these lists, so when both run on the
same embeddings the search runs once (pass the :class:`Neighbours` to either).
"""

from __future__ import annotations

from typing import Any

import attrs
import numba
import numpy as np

__all__ = ["DistanceBlocks", "Neighbours", "nearest", "prepare_embeddings",
           "search_neighbours"]


def prepare_embeddings(query: Any, gallery: Any, metric: str) -> np.ndarray:
    """Query rows then gallery rows as one C-contiguous float32 ``(N, D)`` array, checked.

    Raises:
        ValueError: unknown ``metric`` (the message lists the known ones), inputs that are
            not 2-D with a common ``D``, non-finite embeddings, or embeddings so large that
            their float32 distances would overflow.
    """
    from reidcore.evaluation.distances import METRICS, stack_query_gallery

    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; known metrics: {', '.join(METRICS)}")
    x = stack_query_gallery(query, gallery)
    if not np.isfinite(x).all():
        raise ValueError("non-finite embeddings (NaN or inf) in the query or gallery")
    # |a|^2 + |b|^2 + 2|a||b| (or the L1 sum) must stay finite in float32
    if x.size and 4.0 * float(np.abs(x).max()) ** 2 * x.shape[1] >= 3e38:
        raise ValueError(f"embeddings too large for float32 distances (max |x| = "
                         f"{float(np.abs(x).max()):g})")
    return x


class DistanceBlocks:
    """Distance blocks ``d(x[a], x[b])`` of a metric, written into one reused buffer (a
    fresh ``(chunk, N)`` tensor per chunk costs as much in page faults as the matrix
    product).

    Args:
        x: ``(N, D)`` float32 embeddings (numpy array or torch tensor).
        metric: a :data:`~reidcore.evaluation.METRICS` name.
        device: torch device (``None``: the CPU).

    ``ranked=True`` may return a monotone stand-in (squared Euclidean for ``euclidean``)
    whose map to the metric's values is :attr:`transform` (a numpy ufunc, or ``None``).
    """

    def __init__(self, x: Any, metric: str, device: Any = None):
        import torch

        dev = torch.device(device) if device is not None else torch.device("cpu")
        xt = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
        self.xt, self.metric = xt.to(device=dev, dtype=torch.float32), metric
        self.transform = np.sqrt if metric == "euclidean" else None
        if metric in ("euclidean", "sqeuclidean"):
            self.stat = (self.xt * self.xt).sum(1)
        elif metric == "cosine":
            self.stat = torch.nn.functional.normalize(self.xt, dim=1)
        self.buf = None

    @property
    def n(self) -> int:
        return int(self.xt.shape[0])

    def part(self, sel):
        """The rows ``sel`` (a slice or an index tensor) as an argument of :meth:`__call__`
        (gather an index selection once, not per block)."""
        return self.xt[sel], (None if self.metric == "cityblock" else self.stat[sel])

    def __call__(self, a, b, ranked: bool = False, out=None):
        """``(rows of a, rows of b)`` float32 tensor for parts ``a``, ``b`` from
        :meth:`part`: a view of the reused buffer (valid until the next call), or ``out``
        (a contiguous float32 tensor of that shape on the blocks' device, e.g. a view of
        the caller's numpy array) filled in place."""
        import torch

        (xa, sa), (xb, sb) = a, b
        shape = (xa.shape[0], xb.shape[0])
        if out is not None and (tuple(out.shape) != shape or out.dtype != torch.float32
                                or not out.is_contiguous()):
            raise ValueError(f"out must be a contiguous float32 tensor of shape {shape}, "
                             f"got {out.dtype} {tuple(out.shape)}")
        if self.metric == "cityblock":
            if out is None:
                return torch.cdist(xa, xb, p=1.0)
            return out.copy_(torch.cdist(xa, xb, p=1.0))
        size = shape[0] * shape[1]
        if out is not None:
            d = out
        else:
            if self.buf is None or self.buf.numel() < size:
                self.buf = torch.empty(size, dtype=torch.float32, device=self.xt.device)
            d = self.buf[:size].view(*shape)
        if self.metric == "cosine":
            torch.mm(sa, sb.T, out=d)
            return d.neg_().add_(1.0)
        torch.add(sa[:, None], sb[None, :], out=d)
        d.addmm_(xa, xb.T, alpha=-2.0).clamp_(min=0.0)
        return d if ranked or self.metric == "sqeuclidean" else d.sqrt_()


@numba.njit(parallel=True, cache=True)
def _smallest_rows(d, vals, idx, rowmax):
    """The ``m = vals.shape[1]`` smallest entries of each row of ``d`` by (value, index),
    in that order, by insertion into a sorted list while scanning the row (an entry
    equal to the list's last comes later, so it is not better); ``rowmax``: each row's
    maximum, from the same scan."""
    rows, n = d.shape
    m = vals.shape[1]
    for r in numba.prange(rows):
        cnt = 0
        mx = d[r, 0]
        for j in range(n):
            v = d[r, j]
            if v > mx:
                mx = v
            if cnt < m:
                pos = cnt
                cnt += 1
            elif v < vals[r, m - 1]:
                pos = m - 1
            else:
                continue
            while pos > 0 and vals[r, pos - 1] > v:
                vals[r, pos] = vals[r, pos - 1]
                idx[r, pos] = idx[r, pos - 1]
                pos -= 1
            vals[r, pos] = v
            idx[r, pos] = j
        rowmax[r] = mx


def _topk_smallest(d, m: int, rowmax: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(values float32, indices int64)`` numpy ``(rows, m)`` of the ``m`` smallest
    entries of each row of the torch tensor ``d`` (a numba scan on the CPU, sorted by
    (value, index); ``torch.topk`` elsewhere, in no particular order); each row's
    maximum goes into ``rowmax``."""
    import torch

    if d.device.type == "cpu":
        vals = np.empty((d.shape[0], m), np.float32)
        idx = np.empty((d.shape[0], m), np.int64)
        _smallest_rows(np.ascontiguousarray(d.numpy()), vals, idx, rowmax)
        return vals, idx
    rowmax[:] = d.max(dim=1).values.cpu().numpy()
    vals, idx = torch.topk(d, m, dim=1, largest=False, sorted=False)
    return vals.cpu().numpy(), idx.cpu().numpy().astype(np.int64)


def nearest(d, k: int, transform=None, margin: int = 8, rowmax=None) -> np.ndarray:
    """``(rows, k)`` int64 indices of the ``k`` smallest entries of each row of the torch
    tensor ``d`` in (value, index) order, as a stable argsort of ``transform(d)`` (a
    non-decreasing numpy ufunc such as ``np.sqrt``, applied to the finite entries only;
    ``None``: the identity). ``k + margin`` candidates are picked and re-sorted by
    (transformed value, index); a row whose tie run reaches past the candidates is
    sorted in full. ``rowmax`` (optional, ``(rows,)`` float array): receives each row's
    maximum (untransformed)."""
    n = d.shape[1]
    m = min(k + margin, n)
    if rowmax is None:
        rowmax = np.empty(d.shape[0], np.float32)

    def values(v: np.ndarray) -> np.ndarray:
        if transform is not None:
            fin = np.isfinite(v)
            v[fin] = transform(v[fin])
        return v

    vals, idx = _topk_smallest(d, m, rowmax)
    vals = values(vals)
    order = np.lexsort((idx, vals), axis=-1)
    vals = np.take_along_axis(vals, order, axis=1)
    idx = np.take_along_axis(idx, order, axis=1)
    if m < n:
        for r in np.flatnonzero(vals[:, k - 1] == vals[:, m - 1]):
            idx[r, :k] = np.argsort(values(d[r].cpu().numpy()), kind="stable")[:k]
    return idx[:, :k]


@attrs.frozen
class Neighbours:
    """The result of :func:`search_neighbours`.

    Attributes:
        index: ``(N, k)`` int64; row ``i`` lists the ``k`` images nearest to image ``i``
            (query rows first, then gallery rows) by ascending distance, ties by lower
            index (a stable argsort of the row); ``i`` itself is among them at its
            natural place (first unless another image is as close).
        rowmax: ``(N,)`` float64, the maximum of each distance row in the metric's units.
        metric: the metric's name.
        n_query: ``n_q``; rows ``n_q ..`` are the gallery.
    """

    index: np.ndarray
    rowmax: np.ndarray
    metric: str
    n_query: int

    @property
    def k(self) -> int:
        return int(self.index.shape[1])

    def check(self, n: int, n_query: int, metric: str, k: int) -> None:
        """Raise ``ValueError`` unless these lists serve a problem of ``n`` images with
        ``n_query`` queries, ``metric`` and at least ``k`` neighbours per image."""
        if (len(self.index), self.n_query, self.metric) != (n, n_query, metric):
            raise ValueError(
                f"the neighbours were searched for {len(self.index)} images "
                f"({self.n_query} queries, metric {self.metric!r}), not for {n} images "
                f"({n_query} queries, metric {metric!r})")
        if self.k < k:
            raise ValueError(f"{k} neighbours per image are needed, the search kept "
                             f"{self.k}; search with k >= {k}")

    def self_first(self, k: int) -> np.ndarray:
        """``(N, k)`` int64: each image itself, then the others in the order of
        :attr:`index` (the rank lists of ECN; needs ``k <= self.k``)."""
        n = len(self.index)
        idx = self.index[:, :k]
        own = idx == np.arange(n)[:, None]
        # drop the image itself where it appears (else the last entry): k - 1 others remain
        keep = ~own
        keep[~own.any(axis=1), k - 1] = False
        out = np.empty((n, k), dtype=np.int64)
        out[:, 0] = np.arange(n)
        out[:, 1:] = idx[keep].reshape(n, k - 1)
        return out


def search_neighbours(query: Any, gallery: Any, *, metric: str = "euclidean", k: int = 26,
                      chunk_size: int = 1024, device: Any = None) -> Neighbours:
    """The ``k`` nearest of all ``N = n_q + n_g`` query and gallery images to each of them.

    Args:
        query: ``(n_q, D)``, gallery: ``(n_g, D)`` embeddings (any real dtype; float32
            inside).
        metric: a :data:`~reidcore.evaluation.METRICS` name (``euclidean`` default).
        k: neighbours kept per image, itself included (default 26: enough for ECN's
            ``k = 25`` and k-reciprocal's ``k1 + 1 = 21``); capped at ``N``.
        chunk_size: distance rows computed at a time (one reused ``chunk_size * N``
            float32 buffer).
        device: torch device of the distance blocks (``None``: the CPU).

    Returns:
        :class:`Neighbours`.

    Raises:
        ValueError: as :func:`prepare_embeddings`; ``k < 1`` or ``chunk_size < 1``.

    Time: one all-pairs distance pass (``N^2 D`` multiply-adds) and a linear scan per row;
    memory ``O(N k)`` plus the buffer.
    """
    import torch

    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    x = prepare_embeddings(query, gallery, metric)
    blocks = DistanceBlocks(x, metric, device)
    n = len(x)
    k = min(k, n)
    index = np.empty((n, k), dtype=np.int64)
    rowmax = np.empty(n, dtype=np.float64)
    everything = blocks.part(slice(0, n))
    with torch.no_grad():
        for s in range(0, n, chunk_size):
            e = min(s + chunk_size, n)
            d = blocks(blocks.part(slice(s, e)), everything, ranked=True)
            mx = np.empty(e - s, np.float32)
            index[s:e] = nearest(d, k, blocks.transform, rowmax=mx)
            rowmax[s:e] = mx
    if blocks.transform is not None:
        rowmax = blocks.transform(rowmax)
    return Neighbours(index=index, rowmax=rowmax, metric=metric, n_query=len(query))
