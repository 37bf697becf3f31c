"""The dense ECN reference of the tests and ``benchmarks/bench_ecn.py``: every step of the
authors' code on ``N x N`` arrays (memory ``O(N^2)``), in both versions of that code."""

from __future__ import annotations

import numpy as np
from reid_pse.ecn import METHODS, _check_params, _check_version


def ecn_dense(q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, *, t: int = 3, q: int = 8,
              k: int = 25, method: str = "rankdist", version: str = "2020") -> np.ndarray:
    """Dense ECN re-ranking from distance matrices (the test reference), Sec. 3.2, following
    the authors' code (github.com/pse-ecn/expanded-cross-neighborhood) step by step.

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
        version: ``"2020"`` (the authors' fixed code: rank-list distance ``-S``, and
            ``merge_dist``: the original distance where the ECN value is 0) or ``"2018"``
            (min-max normalised rank-list distance ``1 - R``, no merge).

    Returns:
        ``(n_q, n_g)`` float32 ECN distances (smaller = more similar); 2018 ``rankdist``
        values lie in ``[0, 1]``.

    Raises:
        ValueError: shapes that disagree, an unknown ``method``, empty query or gallery,
            or ``t``, ``q``, ``k`` (``rankdist`` only) outside ``[1, N - 1]``
            (``N = n_q + n_g``; the message names the value).

    Memory is ``O(N^2)``: :func:`reid_pse.ecn.ecn_rerank` and
    :func:`reid_pse.ecn.ecn_orig_rerank` give the same values for real galleries.
    """
    q_g, q_q, g_g = (np.asarray(a, dtype=np.float64) for a in (q_g, q_q, g_g))
    if q_g.ndim != 2:
        raise ValueError(f"q_g must be 2-D (n_q, n_g), got shape {q_g.shape}")
    n_q, n_g = q_g.shape
    if q_q.shape != (n_q, n_q) or g_g.shape != (n_g, n_g):
        raise ValueError(f"shapes disagree: q_g {q_g.shape}, q_q {q_q.shape}, g_g {g_g.shape}")
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; known: {', '.join(METHODS)}")
    _check_version(version)
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
        if version == "2018":  # Matlab get_rank_dist with min_max_norm
            lo = s.min(axis=1, keepdims=True)
            hi = s.max(axis=1, keepdims=True)
            dist = 1.0 - (s - lo) / (hi - lo)
        else:  # 2020: -S, "use -full() to skip norm and 1-R step"
            dist = -s
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
        ecn = (from_p + from_g) / (2 * m)
        if version == "2020":  # merge_dist: the original distance where ECN is 0
            ecn = np.where(ecn != 0, ecn, full[p, n_q:])
        out[p] = ecn
    return out
