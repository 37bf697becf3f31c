"""The dense k-reciprocal reference of the tests and ``benchmarks/bench_rerank.py``: the
steps of Zhong et al., CVPR 2017 (and the authors' code) on ``N x N`` arrays."""

from __future__ import annotations

import numpy as np

from reidcore.evaluation.rerank_kreciprocal import _check_params


def _reciprocal(rank: np.ndarray, i: int, k: int) -> np.ndarray:
    fwd = rank[i, :k + 1]
    back = rank[fwd, :k + 1]
    return fwd[(back == i).any(axis=1)]


def k_reciprocal_dense(q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, k1: int = 20,
                       k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """Dense k-reciprocal re-ranking from distance matrices (the test reference).

    Args:
        q_g: ``(n_q, n_g)``, q_q: ``(n_q, n_q)``, g_g: ``(n_g, n_g)`` distances
            (e.g. Euclidean; they are squared as in the authors' code).
        k1, k2, lambda_value: the paper's parameters (defaults 20, 6, 0.3).

    Returns:
        ``(n_q, n_g)`` float32 re-ranked distances.

    Raises:
        ValueError: bad parameters, fewer than ``k1 + 2`` images, or shapes that disagree.

    Memory is ``O((n_q + n_g)^2)``:
    :func:`reidcore.evaluation.rerank_kreciprocal.k_reciprocal_rerank` gives the same
    values for real galleries.
    """
    q_g, q_q, g_g = (np.asarray(a, dtype=np.float32) for a in (q_g, q_q, g_g))
    n_q, n_g = q_g.shape
    if q_q.shape != (n_q, n_q) or g_g.shape != (n_g, n_g):
        raise ValueError(f"shapes disagree: q_g {q_g.shape}, q_q {q_q.shape}, g_g {g_g.shape}")
    n = n_q + n_g
    _check_params(k1, k2, lambda_value, n)
    full = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float32)
    full = full * full
    d = (full / full.max(axis=0)).T.astype(np.float32)  # as the authors: column maxima
    rank = np.argsort(d, axis=1, kind="stable")
    half = int(np.around(k1 / 2.0))
    V = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        r = _reciprocal(rank, i, k1)
        expansion = [r]
        for c in r:
            rc = _reciprocal(rank, c, half)
            if len(np.intersect1d(rc, r)) > 2.0 / 3.0 * len(rc):
                expansion.append(rc)
        idx = np.unique(np.concatenate(expansion))
        w = np.exp(-d[i, idx].astype(np.float64))
        V[i, idx] = (w / w.sum()).astype(np.float32)
    if k2 != 1:
        V = np.stack([V[rank[i, :k2]].sum(axis=0, dtype=np.float32) / np.float32(k2)
                      for i in range(n)])
    out = np.empty((n_q, n_g), dtype=np.float32)
    for i in range(n_q):
        m = np.minimum(V[i][None, :], V).sum(axis=1, dtype=np.float32)
        jac = 1.0 - m / (2.0 - m)
        out[i] = (jac[n_q:] * (1 - lambda_value) + d[i, n_q:] * lambda_value)
    return out
