"""Expanded Cross Neighborhood (ECN) re-ranking (Sarfraz, Schumann, Eberle & Stiefelhagen,
"A Pose-Sensitive Embedding for Person Re-Identification with Expanded Cross Neighborhood
Re-Ranking", CVPR 2018, Sec. 3.2), sparse and streamed (the dense test reference is
``plugins/reid_pse/tests/ecn_reference.py``).

The definitions, on the ``N = n_q + n_g`` images of query and gallery together, with
``d`` the original distance of the chosen metric:

1. ``rank(i)``: image ``i`` itself first, then the other images by ascending ``d(i, .)``,
   ties by lower index (a stable sort). The authors' code sorts each row and drops its
   first entry, taking it to be ``i``; putting ``i`` first explicitly gives the same lists
   when ``d(i, i)`` is the strict row minimum, and stays well defined for duplicate
   images and for a ``d(i, i)`` that rounding leaves slightly above 0.
2. The expanded neighbourhood ``N(i)``: the ``t`` nearest neighbours
   ``i_1 .. i_t`` of ``i`` (``rank(i)[1:t+1]``), followed by the ``q`` nearest neighbours
   ``rank(i_j)[1:q+1]`` of each of them: ``M = t + t q`` entries, repeats kept.
3. ``ECN(p, g) = 1/(2M) [sum_{r in N(p)} d'(r, g) + sum_{r in N(g)} d'(r, p)]``
   with ``d'`` the original distance ``d`` (re-ranker ``ecn-orig``, the authors'
   ``method="origdist"``) or a rank-list distance (re-ranker ``ecn``, ``"rankdist"``),
   built from the weights ``w_i(j) = max(0, k + 1 - pos_i(j))`` (``pos_i(j)`` the 1-based
   position of ``j`` in ``rank(i)``) and the similarity ``S(i, j) = sum_l w_i(l) w_j(l)``.

Two versions of the authors' code (github.com/pse-ecn/expanded-cross-neighborhood):

* ``version="2020"`` (default; their "bug fix: fixes behavior for large scale open-ended
  retrieval", in both ``ecn.py`` and ``ECN_rerank.m``): the rank-list distance is
  ``-S(i, j)`` (no normalisation), and ``merge_dist`` puts the original distance
  ``d(p, g)`` wherever the ECN value is exactly 0. For ``rankdist`` that is every pair
  whose cross neighbourhoods share no top-``k`` neighbour (most pairs of a large
  gallery): they keep their appearance order, after every pair that overlaps (those are
  negative). For ``origdist`` it only touches pairs whose neighbourhoods are all at
  distance 0.
* ``version="2018"`` (their first release, Matlab ``get_rank_dist``): ``R(i, j) = 1 -
  (S(i, j) - min_l S(i, l)) / (max_l S(i, l) - min_l S(i, l))``, every row min-max
  normalised, values in ``[0, 1]``, no merge: every zero-overlap pair gets the same
  value 1 and is ordered by gallery index.

The authors' defaults, used here: ``t = 3``, ``q = 8``, ``k = 25``, ``rankdist``.

Implementation: one neighbour search
(:func:`reidcore.evaluation.neighbours.search_neighbours`, shared with k-reciprocal)
gives the rank lists; nothing ``N x N`` is built.

* rank-list distance: every row of ``w`` holds the same weights ``k .. 1``, so by
  Cauchy-Schwarz ``max_l S(i, l) = S(i, i) = sum_{w=1}^k w^2``, and ``min_l S(i, l) = 0``
  unless every image shares a top-``k`` neighbour with ``i`` (checked, and the minimum
  computed exactly, per row). With ``a_r = 1 / (max - min_r)``, ``b_r = 1 + min_r a_r``
  (2018; ``a_r = 1``, ``b_r = 0`` with the sign for 2020), ``d'(r, c) = b_r - a_r S(r, c)``,
  so ``2M ECN(p, g) = sum_{N(p)} b_r + sum_{N(g)} b_r - sum_{r in N(p)} a_r S(r, g) -
  sum_{r in N(g)} a_r S(r, p)``. ``S(r, .)`` is non-zero only on the images holding one of
  ``r``'s top-``k`` neighbours, so both sums run over reverse top-``k`` lists in a numba
  kernel, in exact integer and float64 arithmetic, for a block of queries at a time;
* original distance: ``2M ECN(p, g) = sum_{r in N(p)} d(r, g) + sum_{r in N(g)} d(p, r)``:
  per block of queries, the block's distance rows ``d(p, .)`` give the second sum and the
  distances ``d(R, gallery)`` of the images ``R`` in the block's neighbourhoods the first.

With ``streaming=True`` both re-rankers return
:class:`~reidcore.evaluation.streaming.DistanceRows` (blocks of queries on demand, for
:func:`~reidcore.evaluation.streaming.evaluate_rows`) instead of the ``(n_q, n_g)`` matrix.
"""

from __future__ import annotations

import operator

import numba
import numpy as np

from reidcore.evaluation.neighbours import DistanceBlocks, prepare_embeddings, search_neighbours
from reidcore.evaluation.streaming import DistanceRows

__all__ = ["METHODS", "VERSIONS", "ecn_orig_rerank", "ecn_rerank"]

#: the ``method`` values of the authors' code and the dense reference
METHODS = ("rankdist", "origdist")
#: the versions of the authors' code (see the module docstring)
VERSIONS = ("2020", "2018")


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


def _check_version(version: str) -> None:
    if version not in VERSIONS:
        raise ValueError(f"Unknown ECN version {version!r}; known: {', '.join(VERSIONS)}")


def _rank_lists(query, gallery, metric: str, kk: int, chunk_size: int, device, neighbours):
    """``(x (N, D) float32, n_q, (N, kk) self-first rank lists, DistanceBlocks)``."""
    x = prepare_embeddings(query, gallery, metric)
    n_q = len(query)
    _check_params(n_q, len(x) - n_q)
    if neighbours is None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        neighbours = search_neighbours(x[:n_q], x[n_q:], metric=metric, k=kk,
                                       chunk_size=chunk_size, device=device)
    neighbours.check(len(x), n_q, metric, kk)
    return x, n_q, neighbours.self_first(kk), DistanceBlocks(x, metric, device)


#: query rows of one distance block in :func:`_merge` (its buffer: this many gallery rows)
MERGE_ROWS = 64


def _merge(out: np.ndarray, blocks: DistanceBlocks, n_q: int, p0: int, p1: int) -> None:
    """``merge_dist`` of the authors' 2020 code: ``d(p, g)`` where ``out`` is 0, in
    chunks of :data:`MERGE_ROWS` query rows (a small reused distance buffer instead of one
    of the block's size)."""
    import torch

    gallery = blocks.part(slice(n_q, blocks.n))
    with torch.no_grad():
        for s in range(0, p1 - p0, MERGE_ROWS):
            e = min(s + MERGE_ROWS, p1 - p0)
            part = out[s:e]  # a view: written in place
            zero = part == 0
            if zero.any():
                d = blocks(blocks.part(slice(p0 + s, p0 + e)), gallery)
                np.copyto(part, d.cpu().numpy(), where=zero)


def _result(rows, n_q: int, n_g: int, streaming: bool, block_rows: int):
    out = DistanceRows((n_q, n_g), rows)
    return out if streaming else out.dense(block_rows)


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
                   n_q, p0, p1, block, out):
    """``out[p - p0, g] = (bsum[p] + bsum[n_q + g] - T1 - T2) / 2M`` for the queries
    ``p0 <= p < p1``, with
    ``T1 = sum_{r in N(p)} a_r S(r, g)`` and ``T2 = sum_{r in N(g)} a_r S(r, p)``."""
    n, k = nbr.shape
    n_g = n - n_q
    m = expanded.shape[1]
    inv = 1.0 / (2.0 * m)
    n_blocks = (p1 - p0 + block - 1) // block
    for bi in numba.prange(n_blocks):
        acc = np.zeros(n_g, np.float64)
        ep = np.zeros(n, np.float64)  # sum_{r in N(p)} a_r w_r(l), by l
        srow = np.zeros(n, np.int64)  # S(p, j), by j
        touched = np.empty(n, np.int64)
        for p in range(p0 + bi * block, min(p0 + (bi + 1) * block, p1)):
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
                out[p - p0, g] = (base + bsum[n_q + g] - acc[g]) * inv
                acc[g] = 0.0


def ecn_rerank(query: np.ndarray, gallery: np.ndarray, *, metric: str = "euclidean",
               t: int = 3, q: int = 8, k: int = 25, version: str = "2020",
               chunk_size: int = 1024, device: str | None = None, block: int = 16,
               neighbours=None, streaming: bool = False):
    """ECN re-ranking with the rank-list distance (the authors' default ``rankdist``),
    sparse, from embeddings (Sec. 3.2; definitions and versions in the module docstring).

    Args:
        query: ``(n_q, D)``, gallery: ``(n_g, D)`` embeddings (any real dtype; float32
            inside).
        metric: a :data:`reidcore.evaluation.METRICS` distance (``euclidean`` default,
            ``sqeuclidean``, ``cosine``, ``cityblock``) of the initial rank lists (and, in
            version 2020, of the pairs without overlap).
        t, q: neighbours in the expanded neighbourhood (defaults 3 and 8, the paper's).
        k: rank-list length of the rank-list distance (default 25, the authors').
        version: ``"2020"`` (default; the authors' fixed code: ``-S``, original distance
            where that is 0) or ``"2018"`` (min-max normalised rank-list distance).
        chunk_size: rows of the ``(chunk, N)`` float32 distance block of the neighbour
            search.
        device: torch device for the distance blocks (``None``: CPU).
        block: queries per numba task (scratch arrays are reused within a block).
        neighbours: a :class:`~reidcore.evaluation.neighbours.Neighbours` of the same
            embeddings and metric with at least ``max(k, t + 1, q + 1)`` neighbours
            (skips the search; share it with k-reciprocal).
        streaming: return :class:`~reidcore.evaluation.streaming.DistanceRows` instead.

    Returns:
        ``(n_q, n_g)`` float32 ECN distances (smaller = more similar; 2018: in ``[0, 1]``;
        2020: ``<= 0`` where the neighbourhoods overlap, else ``d(p, g)``).

    Raises:
        ValueError: unknown metric or version, embeddings that are not ``(n, D)`` with a
            common ``D``, empty query or gallery, ``t``, ``q``, ``k`` outside
            ``[1, N - 1]`` (``N = n_q + n_g``; the message names the value),
            ``chunk_size < 1``, non-finite or float32-overflowing embeddings, or
            ``neighbours`` of another problem.

    Memory: ``O(N (k + t q))`` for the rank lists and their reverse indices, per-thread
    ``O(N)`` scratch, and the output (or one block of rows when streaming); no ``N x N``
    array. Equals the dense reference to about 1e-7 (float64 inside), given the same rank
    lists.
    """
    _check_version(version)
    _check_params(len(query), len(gallery), t=t, q=q, k=k)
    if block < 1:
        raise ValueError(f"block must be at least 1, got {block}")
    kk = max(k, t + 1, q + 1)
    x, n_q, nbr, blocks = _rank_lists(query, gallery, metric, kk, chunk_size, device,
                                      neighbours)
    n = len(x)
    expanded = _expanded(nbr, t, q)
    top = np.ascontiguousarray(nbr[:, :k])
    w = np.arange(k, 0, -1, dtype=np.int64)  # weight of positions 1 .. k: k .. 1
    ptr, rows, slot = _reverse(top, n)
    # first gallery entry of every reverse list (rows ascending): after its query rows
    gstart = ptr[:-1] + np.bincount(top[:n_q].ravel(), minlength=n)
    if version == "2018":
        lo = _row_minima(top, w, ptr, rows, slot)
        hi = int((w * w).sum())  # S(r, r), the maximum of every row
        coef_a = 1.0 / (hi - lo).astype(np.float64)
        bsum = (1.0 + lo * coef_a)[expanded].sum(axis=1)
    else:
        coef_a, bsum = np.ones(n), np.zeros(n)
    gt_ptr, gt_rows, _ = _reverse(expanded[n_q:], n)

    def block_rows(p0: int, p1: int) -> np.ndarray:
        out = np.empty((p1 - p0, n - n_q), dtype=np.float32)
        _ecn_rank_rows(top, w, expanded, coef_a, bsum, ptr, rows, slot, gstart, gt_ptr,
                       gt_rows, n_q, p0, p1, int(block), out)
        if version == "2020":
            _merge(out, blocks, n_q, p0, p1)
        return out

    return _result(block_rows, n_q, n - n_q, streaming, 1024)


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
                    t: int = 3, q: int = 8, version: str = "2020", chunk_size: int = 1024,
                    device: str | None = None, block_queries: int | None = None,
                    neighbours=None,
                    streaming: bool = False):
    """ECN re-ranking on the original pairwise distance (the authors' ``origdist``),
    sparse, from embeddings (Sec. 3.2; definitions and versions in the module docstring).

    Args:
        query: ``(n_q, D)``, gallery: ``(n_g, D)`` embeddings (any real dtype; float32
            inside).
        metric: a :data:`reidcore.evaluation.METRICS` distance (``euclidean`` default,
            ``sqeuclidean``, ``cosine``, ``cityblock``), used for the rank lists and
            averaged by ECN (units: those of the metric).
        t, q: neighbours in the expanded neighbourhood (defaults 3 and 8, the paper's).
        version: ``"2020"`` (default: ``d(p, g)`` where the ECN value is exactly 0, the
            authors' ``merge_dist``) or ``"2018"``.
        chunk_size: rows of the neighbour search's distance block, and gallery columns of
            the ``d(R, gallery)`` blocks.
        device: torch device for the distance blocks (``None``: CPU).
        block_queries: queries per block (memory ``block_queries * N`` floats; ``None``:
            as many as fit in 256 MiB, at least 64).
        neighbours: a :class:`~reidcore.evaluation.neighbours.Neighbours` of the same
            embeddings and metric with at least ``max(t, q) + 1`` neighbours.
        streaming: return :class:`~reidcore.evaluation.streaming.DistanceRows` instead.

    Returns:
        ``(n_q, n_g)`` float32 ECN distances (smaller = more similar):
        ``ECN(p, g) = (sum_{r in N(p)} d(r, g) + sum_{r in N(g)} d(r, p)) / 2M``.

    Raises:
        ValueError: as :func:`ecn_rerank` (``k`` aside); ``block_queries < 1``.

    An image's distance to itself is taken as 0. Equals the dense reference to float32
    rounding of the distances (about 1e-7 relative), given the same rank lists.
    """
    import torch

    _check_version(version)
    _check_params(len(query), len(gallery), t=t, q=q)
    if block_queries is not None and block_queries < 1:
        raise ValueError(f"block_queries must be at least 1, got {block_queries}")
    x, n_q, nbr, blocks = _rank_lists(query, gallery, metric, max(t, q) + 1, chunk_size,
                                      device, neighbours)
    n = len(x)
    if block_queries is None:  # fewer blocks: fewer recomputed d(R, gallery) rows
        block_queries = max(64, (256 << 20) // (4 * n))
    n_g = n - n_q
    expanded = _expanded(nbr, t, q)
    g_csr = _count_csr(expanded[n_q:])
    everything = blocks.part(slice(0, n))
    inv = np.float32(1.0 / (2.0 * expanded.shape[1]))
    dev = blocks.xt.device

    def block_rows(p0: int, p1: int) -> np.ndarray:
        out = np.empty((p1 - p0, n_g), dtype=np.float32)
        with torch.no_grad():
            # sum_{r in N(g)} d(r, p) = sum_{r in N(g)} d(p, r), from the block's rows
            dq = blocks(blocks.part(slice(p0, p1)), everything)
            _zero_self(dq, np.arange(p0, p1), 0, n)
            dq = dq.cpu().numpy()
            _gather_sums(dq, *g_csr, out, 16, False)
            # sum_{r in N(p)} d(r, g) = sum_{r in N(p)} d(g, r) over the block's images R
            rows_r = np.unique(expanded[p0:p1])
            c_csr = _count_csr(expanded[p0:p1], rows_r)
            part_r = blocks.part(torch.from_numpy(rows_r).to(dev))
            for s in range(0, n_g, chunk_size):
                e = min(s + chunk_size, n_g)
                d = blocks(blocks.part(slice(n_q + s, n_q + e)), part_r)  # d(g, r)
                _zero_self(d.T, rows_r, n_q + s, n_q + e)
                _gather_sums(d.cpu().numpy(), *c_csr, out[:, s:e].T, 16, True)
        out *= inv
        if version == "2020":  # d(p, g) where ECN is 0, for the few rows that have a 0
            _merge(out, blocks, n_q, p0, p1)
        return out

    return _result(block_rows, n_q, n_g, streaming, block_queries)
