"""Expanded Cross Neighborhood (ECN) re-ranking (Sarfraz, Schumann, Eberle & Stiefelhagen,
"A Pose-Sensitive Embedding for Person Re-Identification with Expanded Cross Neighborhood
Re-Ranking", CVPR 2018, Sec. 3.2), dense reference and sparse/chunked implementation.

The definitions, on the ``N = n_q + n_g`` images of query and gallery together, with
``d`` the original distance of the chosen metric:

1. ``rank(i)``: image ``i`` itself first, then the other images by ascending ``d(i, .)``,
   ties by lower index (a stable sort). The authors' code sorts each row and drops its
   first entry, taking it to be ``i``; putting ``i`` first explicitly gives the same lists
   when ``d(i, i)`` is the strict row minimum, and stays well defined for duplicate
   images and for a ``d(i, i)`` that rounding leaves slightly above 0.
2. The expanded neighbourhood ``N(i)``: the ``t`` nearest neighbours
   ``i_1 .. i_t`` of ``i`` (``rank(i)[1:t+1]``), followed by the ``q`` nearest neighbours
   ``rank(i_j)[1:q+1]`` of each of them: ``M = t + t q`` entries, repeats kept (``i``
   itself is usually among its neighbours' neighbours), as in the authors' code.
3. ``ECN(p, g) = 1/(2M) [sum_{r in N(p)} d'(r, g) + sum_{r in N(g)} d'(r, p)]``
   with ``d'`` either the original distance ``d`` (re-ranker
   ``ecn-orig``, the authors' ``method="origdist"``) or the rank-list distance (re-ranker
   ``ecn``, the authors' default ``method="rankdist"``):
4. the rank-list distance (as the authors' Matlab ``get_rank_dist`` computes it): weights ``w_i(j) = max(0, k + 1 - pos_i(j))`` with ``pos_i(j)`` the
   1-based position of ``j`` in ``rank(i)`` (``i`` itself weighs ``k``, its nearest
   neighbour ``k - 1``, ...); similarity ``S(i, j) = sum_l w_i(l) w_j(l)``; distance
   ``R(i, j) = 1 - (S(i, j) - min_l S(i, l)) / (max_l S(i, l) - min_l S(i, l))``, every
   row min-max normalised. (The authors' Python port returns ``-S`` without the
   normalisation; we follow their Matlab code.)

The authors' defaults, used here: ``t = 3``, ``q = 8``, ``k = 25``, ``rankdist``.

:func:`ecn_dense` follows these steps with dense ``N x N`` arrays (the test reference;
memory ``O(N^2)``). :func:`ecn_rerank` and :func:`ecn_orig_rerank` give the same values
from the embeddings without any ``N x N`` array: one pass over the distance rows (torch,
in chunks) keeps every image's nearest neighbours, and then

* rank-list distance: every row of ``w`` holds the same weights ``k .. 1``, so by
  Cauchy-Schwarz ``max_l S(i, l) = S(i, i) = sum_{w=1}^k w^2``, and
  ``min_l S(i, l) = 0`` unless every image shares a top-``k`` neighbour with ``i`` (this
  is checked, and the minimum computed exactly, per row). With ``a_r = 1 / (max - min_r)``
  and ``b_r = 1 + min_r a_r``, ``R(r, c) = b_r - a_r S(r, c)``, hence ``2M ECN(p, g) =
  sum_{N(p)} b_r + sum_{N(g)} b_r - sum_{r in N(p)} a_r S(r, g) - sum_{r in N(g)} a_r
  S(r, p)``. ``S(r, .)`` is non-zero only on the images holding one of ``r``'s top-``k``
  neighbours, so both sums run over reverse top-``k`` lists (and the second one over the
  reverse expanded lists of the gallery) in a numba kernel, in exact integer and float64
  arithmetic;
* original distance: ``2M ECN(p, g) = (C D[:, gallery])[p, g] + (G D[:, queries])[g, p]``
  with the sparse count matrices ``C`` (``n_q x N``) and ``G`` (``n_g x N``) of the
  expanded neighbourhoods. The second term is summed from the queries' distance rows,
  kept (``n_q x N`` float32) from the first pass (``d`` is symmetric); the first from
  distance blocks ``d(R, gallery chunk)`` of the images ``R`` in the queries'
  neighbourhoods, recomputed in a second pass; both sums run in numba kernels.
"""

from __future__ import annotations

import operator

import numba
import numpy as np

__all__ = ["ecn_dense", "ecn_orig_rerank", "ecn_rerank"]

#: the ``method`` values of :func:`ecn_dense` (the authors' names)
METHODS = ("rankdist", "origdist")


def _check_params(n_q: int, n_g: int, **params: int) -> None:
    if n_q < 1 or n_g < 1:
        raise ValueError(f"ECN re-ranking needs at least one query and one gallery image, got "
                         f"{n_q} queries and {n_g} gallery images")
    n = n_q + n_g
    for name, value in params.items():
        try:
            if isinstance(value, bool):
                raise TypeError
            v = operator.index(value)
        except TypeError:
            raise ValueError(f"{name} must be an integer, got {name}={value!r}") from None
        if not 1 <= v <= n - 1:
            raise ValueError(f"{name} must be in [1, N - 1] = [1, {n - 1}] (N = {n} images in "
                             f"query and gallery together), got {name}={value}")


# ---------------------------------------------------------------------------- dense reference


def ecn_dense(q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, *, t: int = 3, q: int = 8,
              k: int = 25, method: str = "rankdist") -> np.ndarray:
    """Dense ECN re-ranking from distance matrices (the test reference), Sec. 3.2.

    Args:
        q_g: ``(n_q, n_g)``, q_q: ``(n_q, n_q)``, g_g: ``(n_g, n_g)`` distances (any
            metric; only their order matters for ``rankdist``; the diagonals of ``q_q``
            and ``g_g`` are taken as 0).
        t: nearest neighbours of each image in its expanded neighbourhood (default 3).
        q: nearest neighbours of each of those added to it (default 8).
        k: rank-list length of the rank-list distance (default 25; unused by
            ``origdist``).
        method: ``"rankdist"`` (rank-list distance, the authors' default) or
            ``"origdist"`` (the given distances).

    Returns:
        ``(n_q, n_g)`` float32 ECN distances (smaller = more similar); ``rankdist`` values
        lie in ``[0, 1]``.

    Raises:
        ValueError: shapes that disagree, an unknown ``method``, empty query or gallery,
            or ``t``, ``q``, ``k`` (``rankdist`` only) outside ``[1, N - 1]``
            (``N = n_q + n_g``; the message names the value).

    Memory is ``O(N^2)``: use :func:`ecn_rerank` / :func:`ecn_orig_rerank` for real
    galleries.
    """
    q_g, q_q, g_g = (np.asarray(a, dtype=np.float64) for a in (q_g, q_q, g_g))
    if q_g.ndim != 2:
        raise ValueError(f"q_g must be 2-D (n_q, n_g), got shape {q_g.shape}")
    n_q, n_g = q_g.shape
    if q_q.shape != (n_q, n_q) or g_g.shape != (n_g, n_g):
        raise ValueError(f"shapes disagree: q_g {q_g.shape}, q_q {q_q.shape}, g_g {g_g.shape}")
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; known: {', '.join(METHODS)}")
    _check_params(n_q, n_g, t=t, q=q, **({"k": k} if method == "rankdist" else {}))
    n = n_q + n_g
    full = np.block([[q_q, q_g], [q_g.T, g_g]])
    np.fill_diagonal(full, 0.0)  # d(i, i) = 0, whatever rounding left on the diagonal
    # 1. rank lists: the image itself first, then the others by (distance, index)
    masked = full.copy()
    np.fill_diagonal(masked, -np.inf)
    rank = np.argsort(masked, axis=1, kind="stable")
    # 4. the rank-list distance, or the original one
    if method == "rankdist":
        pos = np.empty((n, n), dtype=np.int64)
        pos[np.arange(n)[:, None], rank] = np.arange(1, n + 1)[None, :]
        w = np.maximum(0, k + 1 - pos).astype(np.float64)
        s = w @ w.T
        lo = s.min(axis=1, keepdims=True)
        hi = s.max(axis=1, keepdims=True)
        dist = 1.0 - (s - lo) / (hi - lo)
    else:
        dist = full
    # 2. expanded neighbourhoods, M = t + t q entries each
    first = rank[:, 1:t + 1]
    expanded = np.concatenate([first] + [rank[first[:, j], 1:q + 1] for j in range(t)], axis=1)
    m = expanded.shape[1]
    # 3. ECN(p, g) = (sum_{r in N(p)} d'(r, g) + sum_{r in N(g)} d'(r, p)) / 2M
    out = np.empty((n_q, n_g), dtype=np.float32)
    gal_expanded = expanded[n_q:]  # (n_g, M)
    for p in range(n_q):
        from_p = dist[expanded[p]][:, n_q:].sum(axis=0)  # (n_g,)
        from_g = dist[gal_expanded, p].sum(axis=1)  # (n_g,)
        out[p] = (from_p + from_g) / (2 * m)
    return out


# ---------------------------------------------------------------------------- neighbours


def _nearest(d, kk: int, transform=None, margin: int = 8) -> np.ndarray:
    """Indices of the ``kk`` smallest entries of each row of the torch tensor ``d`` in
    (value, index) order, as a stable argsort of ``transform(d)`` (a non-decreasing
    numpy ufunc such as ``np.sqrt``, applied to the finite entries only; ``None``: the
    identity): :func:`_topk_smallest` picks ``kk + margin`` candidates, re-sorted by
    (transformed value, index); a row whose tie run reaches past the candidates is sorted
    in full."""
    n = d.shape[1]
    m = min(kk + margin, n)

    def values(v: np.ndarray) -> np.ndarray:
        if transform is not None:
            fin = np.isfinite(v)
            v[fin] = transform(v[fin])
        return v

    vals, idx = _topk_smallest(d, m)
    vals = values(vals)
    order = np.lexsort((idx, vals), axis=-1)
    vals = np.take_along_axis(vals, order, axis=1)
    idx = np.take_along_axis(idx, order, axis=1)
    if m < n:
        for r in np.flatnonzero(vals[:, kk - 1] == vals[:, m - 1]):
            idx[r, :kk] = np.argsort(values(d[r].cpu().numpy()), kind="stable")[:kk]
    return idx[:, :kk]


def _topk_smallest(d, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``(values float32, indices int64)`` numpy ``(rows, m)`` of the ``m`` smallest
    entries of each row of the torch tensor ``d`` (a numba scan on the CPU, sorted by
    (value, index); ``torch.topk`` elsewhere, in no particular order)."""
    import torch

    if d.device.type == "cpu":
        vals = np.empty((d.shape[0], m), np.float32)
        idx = np.empty((d.shape[0], m), np.int64)
        _smallest_rows(d.numpy(), vals, idx)
        return vals, idx
    vals, idx = torch.topk(d, m, dim=1, largest=False, sorted=False)
    return vals.cpu().numpy(), idx.cpu().numpy().astype(np.int64)


@numba.njit(parallel=True, cache=True)
def _smallest_rows(d, vals, idx):
    """The ``m = vals.shape[1]`` smallest entries of each row of ``d`` by (value, index),
    in that order, by insertion into a sorted list while scanning the row (an entry
    equal to the list's last comes later, so it is not better)."""
    rows, n = d.shape
    m = vals.shape[1]
    for r in numba.prange(rows):
        cnt = 0
        for j in range(n):
            v = d[r, j]
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


def _prepare(query, gallery, metric: str, device):
    """``(x (N, D) float32 ndarray, n_q, torch device)`` after validation."""
    import torch

    from reidcore.evaluation.distances import METRICS, stack_query_gallery

    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; known metrics: {', '.join(METRICS)}")
    x = stack_query_gallery(query, gallery)
    if not np.isfinite(x).all():
        raise ValueError("non-finite embeddings (NaN or inf) in ECN re-ranking")
    # |a|^2 + |b|^2 + 2|a||b| (or the L1 sum) must stay finite in float32
    if x.size and 4.0 * float(np.abs(x).max()) ** 2 * x.shape[1] >= 3e38:
        raise ValueError(f"embeddings too large for float32 distances (max |x| = "
                         f"{float(np.abs(x).max()):g})")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    return x, len(query), dev


class _Blocks:
    """Distance blocks ``d(x[a], x[b])`` of a :data:`reidcore.evaluation.METRICS` metric,
    written into one reused buffer (a fresh ``(chunk, N)`` tensor per chunk costs as much
    in page faults as the matrix product). The formulas are those of
    :mod:`reidcore.evaluation.distances`, with the row norms (or unit vectors) computed
    once; ``ranked=True`` may return a monotone stand-in (squared Euclidean for
    ``euclidean``) whose map to the metric's values is :attr:`transform` (numpy)."""

    def __init__(self, xt, metric: str):
        import torch

        self.xt, self.metric = xt, metric
        self.transform = np.sqrt if metric == "euclidean" else None
        if metric in ("euclidean", "sqeuclidean"):
            self.stat = (xt * xt).sum(1)
        elif metric == "cosine":
            self.stat = torch.nn.functional.normalize(xt, dim=1)
        self.buf = None

    def part(self, sel):
        """The rows ``sel`` (a slice or an index tensor) as an argument of :meth:`__call__`
        (gather an index selection once, not per block)."""
        return self.xt[sel], (None if self.metric == "cityblock" else self.stat[sel])

    def __call__(self, a, b, ranked: bool = False):
        """``(rows of a, rows of b)`` float32 tensor (a view of the buffer, valid until the
        next call) for parts ``a``, ``b`` from :meth:`part`."""
        import torch

        (xa, sa), (xb, sb) = a, b
        if self.metric == "cityblock":
            return torch.cdist(xa, xb, p=1.0)
        size = xa.shape[0] * xb.shape[0]
        if self.buf is None or self.buf.numel() < size:
            self.buf = torch.empty(size, dtype=torch.float32, device=self.xt.device)
        d = self.buf[:size].view(xa.shape[0], xb.shape[0])
        if self.metric == "cosine":
            torch.mm(sa, sb.T, out=d)
            return d.neg_().add_(1.0)
        torch.add(sa[:, None], sb[None, :], out=d)
        d.addmm_(xa, xb.T, alpha=-2.0).clamp_(min=0.0)
        return d if ranked or self.metric == "sqeuclidean" else d.sqrt_()


def _neighbour_lists(blocks: _Blocks, kk: int, chunk_size: int, keep_rows: int = 0):
    """``(N, kk)`` int64: ``rank(i)[:kk]`` of every image (itself first), from distance
    rows computed ``chunk_size`` at a time. With ``keep_rows > 0`` also the
    ``(keep_rows, N)`` float32 distances of the first images (``d(i, i) = 0``)."""
    import torch

    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    n = blocks.xt.shape[0]
    nbr = np.empty((n, kk), dtype=np.int64)
    kept = np.empty((keep_rows, n), dtype=np.float32)
    everything = blocks.part(slice(0, n))
    with torch.no_grad():
        for s in range(0, n, chunk_size):
            e = min(s + chunk_size, n)
            d = blocks(blocks.part(slice(s, e)), everything, ranked=True)
            rows = torch.arange(e - s, device=d.device)
            if s < keep_rows:
                stop = min(e, keep_rows)
                block = kept[s:stop]
                block[:] = d[:stop - s].cpu().numpy()
                if blocks.transform is not None:
                    blocks.transform(block, out=block)
                block[np.arange(stop - s), np.arange(s, stop)] = 0.0
            d[rows, rows + s] = -float("inf")  # the image itself comes first
            nbr[s:e] = _nearest(d, kk, blocks.transform)
    return (nbr, kept) if keep_rows else nbr


def _expanded(nbr: np.ndarray, t: int, q: int) -> np.ndarray:
    """``(N, t + t q)`` int64 expanded neighbourhoods ``N(i)`` from the lists."""
    first = nbr[:, 1:t + 1]
    second = nbr[first, 1:q + 1].reshape(len(nbr), t * q)  # neighbour j's q, j = 0 .. t-1
    return np.ascontiguousarray(np.concatenate([first, second], axis=1))


def _reverse(lists: np.ndarray, n: int):
    """Reverse index of the rows of ``lists`` ``(R, L)`` with values in ``[0, n)``:
    ``(ptr (n + 1), rows, slot)``: the rows holding value ``v`` (ascending, with
    repeats) are ``rows[ptr[v]:ptr[v + 1]]``, at the positions ``slot``."""
    flat = lists.ravel()
    order = np.argsort(flat, kind="stable")
    width = lists.shape[1]
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(flat, minlength=n), out=ptr[1:])
    return ptr, (order // width).astype(np.int64), (order % width).astype(np.int64)


# ---------------------------------------------------------------------------- rank-list ECN


@numba.njit(parallel=True, cache=True)
def _row_minima(nbr, w, ptr, rows, slot):
    """``min_l S(r, l)`` of every row ``r`` (int64): 0 when fewer than ``N`` images share a
    top-``k`` neighbour with ``r`` (an upper bound on their count decides most rows),
    else the minimum of the row computed in full."""
    n, k = nbr.shape
    lo = np.zeros(n, np.int64)
    for r in numba.prange(n):
        bound = 0
        for a in range(k):
            v = nbr[r, a]
            bound += ptr[v + 1] - ptr[v]
        if bound < n:
            continue
        s = np.zeros(n, np.int64)
        for a in range(k):
            v = nbr[r, a]
            for e in range(ptr[v], ptr[v + 1]):
                s[rows[e]] += w[a] * w[slot[e]]
        lo[r] = s.min()
    return lo


@numba.njit(parallel=True, cache=True)
def _ecn_rank_rows(nbr, w, expanded, coef_a, bsum, ptr, rows, slot, gstart, gt_ptr, gt_rows,
                   n_q, block, out):
    """``out[p, g] = (bsum[p] + bsum[n_q + g] - T1 - T2) / 2M`` for the queries ``p``, with
    ``T1 = sum_{r in N(p)} a_r S(r, g)`` and ``T2 = sum_{r in N(g)} a_r S(r, p)``."""
    n, k = nbr.shape
    n_g = n - n_q
    m = expanded.shape[1]
    inv = 1.0 / (2.0 * m)
    n_blocks = (n_q + block - 1) // block
    for bi in numba.prange(n_blocks):
        acc = np.zeros(n_g, np.float64)
        ep = np.zeros(n, np.float64)  # sum_{r in N(p)} a_r w_r(l), by l
        srow = np.zeros(n, np.int64)  # S(p, j), by j
        touched = np.empty(n, np.int64)
        for p in range(bi * block, min((bi + 1) * block, n_q)):
            # T1: sum_l ep[l] w_g(l) over the gallery images g holding l in their top k
            nt = 0
            for c in range(m):
                r = expanded[p, c]
                ar = coef_a[r]
                for a in range(k):
                    v = nbr[r, a]
                    if ep[v] == 0.0:
                        touched[nt] = v
                        nt += 1
                    ep[v] += ar * w[a]
            for i in range(nt):
                v = touched[i]
                x = ep[v]
                ep[v] = 0.0
                for e in range(gstart[v], ptr[v + 1]):
                    acc[rows[e] - n_q] += x * w[slot[e]]
            # T2: S(p, j) for the j sharing a top-k neighbour with p, then a_j S(p, j) for
            # every gallery image g with j in N(g) (repeats counted)
            nt = 0
            for a in range(k):
                v = nbr[p, a]
                for e in range(ptr[v], ptr[v + 1]):
                    j = rows[e]
                    if srow[j] == 0:
                        touched[nt] = j
                        nt += 1
                    srow[j] += w[a] * w[slot[e]]
            for i in range(nt):
                j = touched[i]
                x = coef_a[j] * srow[j]
                srow[j] = 0
                for e in range(gt_ptr[j], gt_ptr[j + 1]):
                    acc[gt_rows[e]] += x
            base = bsum[p]
            for g in range(n_g):
                out[p, g] = (base + bsum[n_q + g] - acc[g]) * inv
                acc[g] = 0.0


def ecn_rerank(query: np.ndarray, gallery: np.ndarray, *, metric: str = "euclidean",
               t: int = 3, q: int = 8, k: int = 25, chunk_size: int = 1024,
               device: str | None = None, block: int = 16) -> np.ndarray:
    """ECN re-ranking with the rank-list distance (the authors' default ``rankdist``),
    sparse and chunked, from embeddings (Sec. 3.2; definitions in the module docstring).

    Args:
        query: ``(n_q, D)``, gallery: ``(n_g, D)`` embeddings (any real dtype; float32
            inside).
        metric: a :data:`reidcore.evaluation.METRICS` distance (``euclidean`` default,
            ``sqeuclidean``, ``cosine``, ``cityblock``) of the initial rank lists.
        t, q: neighbours in the expanded neighbourhood (defaults 3 and 8, the paper's).
        k: rank-list length of the rank-list distance (default 25, the authors').
        chunk_size: rows of the ``(chunk, N)`` float32 distance block computed at a time
            with torch (one reused buffer of ``chunk_size * N * 4`` bytes).
        device: torch device for the distance blocks (``None``: CPU).
        block: queries per numba task (scratch arrays are reused within a block).

    Returns:
        ``(n_q, n_g)`` float32 ECN distances in ``[0, 1]`` (smaller = more similar).

    Raises:
        ValueError: unknown metric, embeddings that are not ``(n, D)`` with a common
            ``D``, empty query or gallery, ``t``, ``q``, ``k`` outside ``[1, N - 1]``
            (``N = n_q + n_g``; the message names the value), ``chunk_size < 1`` or
            non-finite or float32-overflowing embeddings.

    Memory: the ``(n_q, n_g)`` output, ``O(N (k + t q))`` for the neighbour lists and their
    reverse indices, the distance buffer and per-thread ``O(N)`` scratch; no ``N x N``
    array. The result equals :func:`ecn_dense` (``method="rankdist"``) on
    :func:`~reidcore.evaluation.pairwise_distances` of the same embeddings to about 1e-7
    (float64 inside), given the same rank lists (distances equal up to rounding can
    order differently when computed in blocks of other shapes).
    """
    import torch

    x, n_q, dev = _prepare(query, gallery, metric, device)
    n = len(x)
    _check_params(n_q, n - n_q, t=t, q=q, k=k)
    if block < 1:
        raise ValueError(f"block must be at least 1, got {block}")
    kk = max(k, t + 1, q + 1)
    nbr = _neighbour_lists(_Blocks(torch.from_numpy(x).to(dev), metric), kk, chunk_size)
    expanded = _expanded(nbr, t, q)
    top = np.ascontiguousarray(nbr[:, :k])
    w = np.arange(k, 0, -1, dtype=np.int64)  # weight of positions 1 .. k: k .. 1
    ptr, rows, slot = _reverse(top, n)
    # first gallery entry of every reverse list (rows ascending): after its query rows
    gstart = ptr[:-1] + np.bincount(top[:n_q].ravel(), minlength=n)
    lo = _row_minima(top, w, ptr, rows, slot)
    hi = int((w * w).sum())  # S(r, r), the maximum of every row
    coef_a = 1.0 / (hi - lo).astype(np.float64)
    coef_b = 1.0 + lo * coef_a
    bsum = coef_b[expanded].sum(axis=1)
    gt_ptr, gt_rows, _ = _reverse(expanded[n_q:], n)
    out = np.empty((n_q, n - n_q), dtype=np.float32)
    _ecn_rank_rows(top, w, expanded, coef_a, bsum, ptr, rows, slot, gstart, gt_ptr, gt_rows,
                   n_q, int(block), out)
    return out


# ---------------------------------------------------------------------------- original distance


def _count_csr(lists: np.ndarray, cols: np.ndarray | None = None):
    """CSR ``(indptr, indices, data)`` (int64, int64, float32) of the matrix counting each
    row's entries of ``lists`` ``(R, L)`` (repeats become counts); columns are the values,
    or their positions in the sorted ``cols`` when given (every value must be in it)."""
    import scipy.sparse

    n_rows, width = lists.shape
    values = lists.ravel() if cols is None else np.searchsorted(cols, lists.ravel())
    n_cols = int(values.max()) + 1 if cols is None else len(cols)
    csr = scipy.sparse.csr_matrix(
        (np.ones(lists.size, dtype=np.float32),
         (np.repeat(np.arange(n_rows, dtype=np.int64), width), values)),
        shape=(n_rows, n_cols))
    csr.sum_duplicates()
    return (csr.indptr.astype(np.int64), csr.indices.astype(np.int64),
            csr.data.astype(np.float32))


@numba.njit(parallel=True, cache=True)
def _gather_sums(dense, indptr, indices, data, out, block, accumulate):
    """``out[a, b] (+)= sum_e data[e] dense[a, indices[e]]`` over the entries ``e`` of CSR
    row ``b``; ``block`` rows of ``dense`` at a time, transposed so that one CSR entry
    serves them all (``out`` may be a transposed view)."""
    n_a, n_b = out.shape
    width_all = dense.shape[1]
    for bi in numba.prange((n_a + block - 1) // block):
        a0 = bi * block
        width = min(block, n_a - a0)
        cols = np.empty((width_all, width), np.float32)
        for i in range(width):
            for j in range(width_all):
                cols[j, i] = dense[a0 + i, j]
        acc = np.empty(width, np.float32)
        for b in range(n_b):
            acc[:] = 0.0
            for e in range(indptr[b], indptr[b + 1]):
                j = indices[e]
                c = data[e]
                for i in range(width):
                    acc[i] += c * cols[j, i]
            if accumulate:
                for i in range(width):
                    out[a0 + i, b] += acc[i]
            else:
                for i in range(width):
                    out[a0 + i, b] = acc[i]


def _zero_self(d, row_images: np.ndarray, start: int, stop: int) -> None:
    """Set ``d[i, c] = 0`` where row ``i`` (image ``row_images[i]``, sorted) is column
    ``c``'s image ``start + c``: an image's distance to itself, which the expansion
    ``|a|^2 + |b|^2 - 2 a.b`` (and a square root) leaves at rounding level otherwise."""
    import torch

    images = np.arange(start, stop)
    at = np.searchsorted(row_images, images)
    hit = (at < len(row_images)) & (row_images[np.minimum(at, len(row_images) - 1)] == images)
    if hit.any():
        d[torch.from_numpy(at[hit]).to(d.device),
          torch.from_numpy(np.flatnonzero(hit)).to(d.device)] = 0.0


def ecn_orig_rerank(query: np.ndarray, gallery: np.ndarray, *, metric: str = "euclidean",
                    t: int = 3, q: int = 8, chunk_size: int = 1024,
                    device: str | None = None) -> np.ndarray:
    """ECN re-ranking on the original pairwise distance (the authors' ``origdist``),
    sparse and chunked, from embeddings (Sec. 3.2; definitions in the module docstring).

    Args:
        query: ``(n_q, D)``, gallery: ``(n_g, D)`` embeddings (any real dtype; float32
            inside).
        metric: a :data:`reidcore.evaluation.METRICS` distance (``euclidean`` default,
            ``sqeuclidean``, ``cosine``, ``cityblock``), used for the rank lists and
            averaged by ECN (units: those of the metric).
        t, q: neighbours in the expanded neighbourhood (defaults 3 and 8, the paper's).
        chunk_size: rows (first pass) or gallery columns (second pass) of the float32
            distance blocks computed at a time with torch, in one reused buffer of
            ``chunk_size * N * 4`` bytes.
        device: torch device for the distance blocks (``None``: CPU).

    Returns:
        ``(n_q, n_g)`` float32 ECN distances (smaller = more similar):
        ``ECN(p, g) = (sum_{r in N(p)} d(r, g) + sum_{r in N(g)} d(r, p)) / 2M``.

    Raises:
        ValueError: unknown metric, embeddings that are not ``(n, D)`` with a common
            ``D``, empty query or gallery, ``t`` or ``q`` outside ``[1, N - 1]``
            (``N = n_q + n_g``; the message names the value), ``chunk_size < 1`` or
            non-finite or float32-overflowing embeddings.

    Two passes over distance blocks: the first finds the neighbour lists and keeps the
    queries' distance rows (``n_q * N * 4`` bytes), which give the gallery side
    ``sum_{r in N(g)} d(p, r)``; the second computes ``d(R, gallery chunk)`` for the
    images ``R`` in the queries' neighbourhoods, for the query side. Memory: that, the
    ``(n_q, n_g)`` output and the distance buffer; no ``N x N`` array. An image's
    distance to itself is taken as 0. The result equals :func:`ecn_dense`
    (``method="origdist"``) to float32 rounding of the distances (about 1e-7 relative),
    given the same rank lists.
    """
    import torch

    x, n_q, dev = _prepare(query, gallery, metric, device)
    n = len(x)
    n_g = n - n_q
    _check_params(n_q, n_g, t=t, q=q)
    blocks = _Blocks(torch.from_numpy(x).to(dev), metric)
    # pass 1: neighbour lists, and the queries' distance rows d(p, .)
    nbr, dq = _neighbour_lists(blocks, max(t, q) + 1, chunk_size, keep_rows=n_q)
    expanded = _expanded(nbr, t, q)
    out = np.empty((n_q, n_g), dtype=np.float32)
    # sum_{r in N(g)} d(r, p) = sum_{r in N(g)} d(p, r)
    _gather_sums(dq, *_count_csr(expanded[n_q:]), out, 16, False)
    del dq
    # pass 2: sum_{r in N(p)} d(r, g) = sum_{r in N(p)} d(g, r) over the images R in the
    # queries' neighbourhoods
    rows_r = np.unique(expanded[:n_q])
    c_csr = _count_csr(expanded[:n_q], rows_r)
    part_r = blocks.part(torch.from_numpy(rows_r).to(dev))
    with torch.no_grad():
        for s in range(0, n_g, chunk_size):
            e = min(s + chunk_size, n_g)
            d = blocks(blocks.part(slice(n_q + s, n_q + e)), part_r)  # (chunk, |R|): d(g, r)
            _zero_self(d.T, rows_r, n_q + s, n_q + e)
            _gather_sums(d.cpu().numpy(), *c_csr, out[:, s:e].T, 16, True)
    out *= np.float32(1.0 / (2.0 * expanded.shape[1]))
    return out
