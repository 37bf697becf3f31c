"""k-reciprocal re-ranking (Zhong, Zheng, Cao & Li, "Re-ranking Person Re-identification
with k-reciprocal Encoding", CVPR 2017), dense and sparse/chunked.

The algorithm, on the ``N = n_q + n_g`` images of query and gallery together:

1. ``d(i, j)``: squared distances (the authors square the given distances), each row
   ``i`` divided by its maximum; ``rank(i)``: the images by ascending ``d(i, .)``
   (ties: lower index first, a stable sort).
2. ``R(i, k)``: the k-reciprocal neighbours of ``i``: the ``j`` among the first
   ``k + 1`` of ``rank(i)`` that have ``i`` among the first ``k + 1`` of ``rank(j)``.
3. ``R*(i)``: ``R(i, k1)`` plus, for every candidate ``c`` in it, ``R(c, round(k1/2))``
   when more than 2/3 of that set lies in ``R(i, k1)``.
4. ``V[i, j] = exp(-d(i, j)) / sum_{j' in R*(i)} exp(-d(i, j'))`` for ``j`` in
   ``R*(i)``, 0 elsewhere; local query expansion: ``V[i] <- mean of V[rank(i)[:k2]]``.
5. Jaccard distance ``J(i, j) = 1 - m / (2 - m)`` with ``m = sum_l min(V[i, l], V[j, l])``.
6. Final distance ``(1 - lambda) J(i, j) + lambda d(i, j)``, for queries ``i`` and
   gallery images ``j``.

The dense reference (``tests/rerank_reference.py``) follows these steps with dense
``N x N`` arrays. :func:`k_reciprocal_rerank` gives the same distances from the embeddings
with ``O(N k1 k2)`` memory plus one block of rows: the shared neighbour search
(:mod:`reidcore.evaluation.neighbours`) gives each row's maximum and nearest neighbours;
``V`` is kept sparse (CSR) with its weights recomputed from the embeddings for the pairs
it holds, and the Jaccard sums run over ``V``'s transposed index in a numba kernel, one
block of queries at a time. Input distances are assumed
symmetric (they are for every metric of :func:`~reidcore.evaluation.pairwise_distances`;
the authors' code normalises by column maxima, which equals the row maxima then).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["k_reciprocal_rerank"]


def _check_params(k1: int, k2: int, lambda_value: float, n: int) -> None:
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be at least 1, got k1={k1}, k2={k2}")
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value}")
    if n < k1 + 2:
        raise ValueError(f"k-reciprocal re-ranking needs more than k1 + 1 = {k1 + 1} images in "
                         f"query and gallery together, got {n}")


# ---------------------------------------------------------------------------- sparse


@numba.njit(cache=True)
def _recip(nbr, i, k):
    """k-reciprocal neighbours of ``i`` (in ``nbr[i]`` order) from the top lists."""
    out = np.empty(k + 1, np.int64)
    n_out = 0
    for a in range(k + 1):
        j = nbr[i, a]
        for b in range(k + 1):
            if nbr[j, b] == i:
                out[n_out] = j
                n_out += 1
                break
    return out[:n_out]


@numba.njit(parallel=True, cache=True)
def _expansion_sets(nbr, k1, half):
    """``R*(i)`` of every image as CSR ``(indptr, indices)``, indices sorted."""
    n = nbr.shape[0]
    cap = (k1 + 1) * (half + 2)
    buf = np.full((n, cap), -1, np.int64)
    counts = np.zeros(n, np.int64)
    for i in numba.prange(n):
        r = _recip(nbr, i, k1)
        items = np.empty(cap, np.int64)
        m = 0
        for a in range(r.shape[0]):
            items[m] = r[a]
            m += 1
        for a in range(r.shape[0]):
            rc = _recip(nbr, r[a], half)
            inter = 0
            for b in range(rc.shape[0]):
                for c in range(r.shape[0]):
                    if rc[b] == r[c]:
                        inter += 1
                        break
            if inter > 2.0 / 3.0 * rc.shape[0]:
                for b in range(rc.shape[0]):
                    items[m] = rc[b]
                    m += 1
        items = np.unique(items[:m])
        counts[i] = items.shape[0]
        buf[i, :items.shape[0]] = items
    indptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        indptr[i + 1] = indptr[i] + counts[i]
    indices = np.empty(indptr[n], np.int64)
    for i in numba.prange(n):
        indices[indptr[i]:indptr[i + 1]] = buf[i, :counts[i]]
    return indptr, indices


@numba.njit(cache=True)
def _neighbour_columns(indptr, indices, nbr, i, k2):
    """The column indices of the CSR rows ``nbr[i, :k2]``, concatenated (with repeats)."""
    tot = 0
    for a in range(k2):
        j = nbr[i, a]
        tot += indptr[j + 1] - indptr[j]
    cols = np.empty(tot, np.int64)
    m = 0
    for a in range(k2):
        j = nbr[i, a]
        for p in range(indptr[j], indptr[j + 1]):
            cols[m] = indices[p]
            m += 1
    return cols


@numba.njit(parallel=True, cache=True)
def _query_expansion(indptr, indices, data, nbr, k2):
    """CSR of ``V_qe[i] = sum(V[nbr[i, :k2]]) / k2`` (float32, indices sorted)."""
    n = indptr.shape[0] - 1
    counts = np.zeros(n, np.int64)
    for i in numba.prange(n):
        counts[i] = np.unique(_neighbour_columns(indptr, indices, nbr, i, k2)).shape[0]
    out_ptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        out_ptr[i + 1] = out_ptr[i] + counts[i]
    out_idx = np.empty(out_ptr[n], np.int64)
    out_val = np.zeros(out_ptr[n], np.float32)
    for i in numba.prange(n):
        u = np.unique(_neighbour_columns(indptr, indices, nbr, i, k2))
        s = out_ptr[i]
        out_idx[s:s + u.shape[0]] = u
        for a in range(k2):  # rows summed in order, as the dense mean does
            j = nbr[i, a]
            for p in range(indptr[j], indptr[j + 1]):
                pos = np.searchsorted(u, indices[p])
                out_val[s + pos] += data[p]
        for q in range(u.shape[0]):
            out_val[s + q] = out_val[s + q] / np.float32(k2)
    return out_ptr, out_idx, out_val


@numba.njit(parallel=True, cache=True)
def _jaccard_final(indptr, indices, data, t_ptr, t_rows, t_pos, n_q, lambda_value, orig_q, p0):
    """Final distances of the queries ``p0 .. p0 + len(orig_q) - 1``; ``orig_q`` holds
    their ``d(i, gallery)`` and is overwritten with the result."""
    n = indptr.shape[0] - 1
    n_g = n - n_q
    lam = np.float32(lambda_value)
    one_minus = np.float32(1.0 - lambda_value)
    for b in numba.prange(orig_q.shape[0]):
        i = p0 + b
        acc = np.zeros(n, np.float32)
        for p in range(indptr[i], indptr[i + 1]):
            col = indices[p]
            vi = data[p]
            for t in range(t_ptr[col], t_ptr[col + 1]):
                j = t_rows[t]
                vj = data[t_pos[t]]
                acc[j] += vi if vi < vj else vj
        for j in range(n_g):
            m = acc[n_q + j]
            jac = np.float32(1.0) - m / (np.float32(2.0) - m)
            orig_q[b, j] = jac * one_minus + orig_q[b, j] * lam


@numba.njit(parallel=True, cache=True)
def _weights(x, indptr, indices, rowmax, metric_code):
    """``V``'s data: ``exp(-d(i, j))`` normalised over ``R*(i)``, with the squared distance
    ``d`` recomputed in float64 from the embeddings ``x`` and divided by ``rowmax[i]``."""
    n = indptr.shape[0] - 1
    dim = x.shape[1]
    data = np.empty(indices.shape[0], np.float32)
    for i in numba.prange(n):
        a = indptr[i]
        b = indptr[i + 1]
        w = np.empty(b - a)
        if metric_code == 2:
            ni = 0.0
            for t in range(dim):
                ni += np.float64(x[i, t]) * x[i, t]
            ni = max(np.sqrt(ni), 1e-12)
        for p in range(a, b):
            j = indices[p]
            acc = 0.0
            if metric_code == 0 or metric_code == 1:
                for t in range(dim):
                    diff = np.float64(x[i, t]) - x[j, t]
                    acc += diff * diff
                dist = acc if metric_code == 0 else acc * acc
            elif metric_code == 2:
                nj = 0.0
                for t in range(dim):
                    acc += np.float64(x[i, t]) * x[j, t]
                    nj += np.float64(x[j, t]) * x[j, t]
                nj = max(np.sqrt(nj), 1e-12)
                c = 1.0 - acc / (ni * nj)
                dist = c * c
            else:
                for t in range(dim):
                    acc += abs(np.float64(x[i, t]) - x[j, t])
                dist = acc * acc
            w[p - a] = np.exp(-dist / rowmax[i])
        tot = w.sum()
        for p in range(a, b):
            data[p] = np.float32(w[p - a] / tot)
    return data


#: metric -> code of :func:`_weights`
_METRIC_CODES = {"euclidean": 0, "sqeuclidean": 1, "cosine": 2, "cityblock": 3}


def k_reciprocal_rerank(query: np.ndarray, gallery: np.ndarray, *, metric: str = "euclidean",
                        k1: int = 20, k2: int = 6, lambda_value: float = 0.3,
                        chunk_size: int = 1024, device: str | None = None, neighbours=None,
                        streaming: bool = False, block_queries: int = 256):
    """Sparse k-reciprocal re-ranking from embeddings, in query blocks.

    Args:
        query: ``(n_q, D)``, gallery: ``(n_g, D)`` embeddings (any real dtype).
        metric: ``euclidean`` (default), ``sqeuclidean``, ``cosine`` or ``cityblock``, as
            in :func:`~reidcore.evaluation.pairwise_distances`; squared as in the
            authors' code (``euclidean`` gives squared Euclidean distances).
        k1, k2, lambda_value: the paper's parameters (defaults 20, 6, 0.3).
        chunk_size: rows of the ``(chunk, N)`` float32 distance block of the neighbour
            search (one reused buffer).
        device: torch device for the distance blocks (``None``: CPU).
        neighbours: a :class:`~reidcore.evaluation.neighbours.Neighbours` of the same
            embeddings and metric with at least ``max(k1 + 1, k2)`` neighbours (skips the
            search; share it with ECN).
        streaming: return :class:`~reidcore.evaluation.streaming.DistanceRows` (blocks of
            re-ranked rows on demand) instead of the matrix.
        block_queries: queries per block of the final distances.

    Returns:
        ``(n_q, n_g)`` float32 re-ranked distances (smaller = more similar).

    Raises:
        ValueError: bad parameters or metric, fewer than ``k1 + 2`` images, embeddings of
            different dimensions, non-finite embeddings, or ``neighbours`` of another
            problem.

    One neighbour search (:func:`~reidcore.evaluation.neighbours.search_neighbours`)
    gives every row's maximum and its ``max(k1 + 1, k2)`` nearest neighbours (ties by
    index, as a stable argsort); the weights of ``V`` are recomputed in float64 from the
    embeddings for the ``O(N k1)`` pairs in the expansion sets; then, per block of
    queries, one distance block ``d(queries, gallery)`` and the Jaccard sums over ``V``'s
    transposed index. Memory: ``O(N k1 k2)`` for ``V``, one block of rows, and the output
    unless streaming. The result matches the dense reference (``tests/rerank_reference.py``)
    on ``pairwise_distances`` of the same embeddings to about 1e-6.
    """
    import torch

    from reidcore.evaluation.neighbours import (
        DistanceBlocks,
        prepare_embeddings,
        search_neighbours,
    )
    from reidcore.evaluation.streaming import DistanceRows

    if metric not in _METRIC_CODES:
        raise ValueError(f"Unknown metric {metric!r}; known metrics: {', '.join(_METRIC_CODES)}")
    x = prepare_embeddings(query, gallery, metric)
    n_q, n = len(query), len(x)
    n_g = n - n_q
    _check_params(k1, k2, lambda_value, n)
    if block_queries < 1:
        raise ValueError(f"block_queries must be at least 1, got {block_queries}")
    kk = max(k1 + 1, k2)
    if neighbours is None:
        neighbours = search_neighbours(x[:n_q], x[n_q:], metric=metric, k=kk,
                                       chunk_size=chunk_size, device=device)
    neighbours.check(n, n_q, metric, kk)
    nbr = np.ascontiguousarray(neighbours.index[:, :kk])
    rowmax = neighbours.rowmax.astype(np.float64) ** 2  # of the squared distances
    half = int(np.around(k1 / 2.0))
    indptr, indices = _expansion_sets(nbr, k1, half)
    data = _weights(x, indptr, indices, rowmax, _METRIC_CODES[metric])
    if k2 != 1:
        indptr, indices, data = _query_expansion(indptr, indices, data, nbr, k2)
    # transposed index of V: for each column, the rows holding it and their data positions
    order = np.argsort(indices, kind="stable")
    t_rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))[order]
    t_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(indices, minlength=n), out=t_ptr[1:])
    order = order.astype(np.int64)
    blocks = DistanceBlocks(x, metric, device)
    gallery_part = blocks.part(slice(n_q, n))
    # euclidean: the squared distance directly (the authors square the distances anyway)
    square = metric != "euclidean"
    rowmax32 = torch.from_numpy(rowmax.astype(np.float32))

    def block_rows(p0: int, p1: int) -> np.ndarray:
        out = np.empty((p1 - p0, n_g), dtype=np.float32)  # the block, written in place
        with torch.no_grad():
            on_cpu = blocks.xt.device.type == "cpu"
            d = blocks(blocks.part(slice(p0, p1)), gallery_part, ranked=True,
                       out=torch.from_numpy(out) if on_cpu else None)
            if square:
                d.mul_(d)
            d.div_(rowmax32[p0:p1, None].to(d.device))
            if not on_cpu:
                out[...] = d.cpu().numpy()
        _jaccard_final(indptr, indices, data, t_ptr, t_rows, order, n_q, float(lambda_value),
                       out, p0)
        return out

    rows = DistanceRows((n_q, n_g), block_rows)
    return rows if streaming else rows.dense(block_queries)
