"""k-reciprocal re-ranking: sparse/chunked against the dense reference, errors, registry."""

from __future__ import annotations

import numpy as np
import pytest
from rerank_reference import k_reciprocal_dense

from reidcore.evaluation import evaluate, pairwise_distances
from reidcore.evaluation.rerank_kreciprocal import k_reciprocal_rerank


def clustered(n_q, n_g, dim=16, ids=30, seed=0, noise=0.7):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids, dim))
    q_pids, g_pids = rng.integers(0, ids, n_q), rng.integers(0, ids, n_g)
    q = (centres[q_pids] + noise * rng.normal(size=(n_q, dim))).astype(np.float32)
    g = (centres[g_pids] + noise * rng.normal(size=(n_g, dim))).astype(np.float32)
    return q, g, q_pids, g_pids


def dense(q, g, metric="euclidean", **kw):
    return k_reciprocal_dense(pairwise_distances(q, g, metric), pairwise_distances(q, q, metric),
                              pairwise_distances(g, g, metric), **kw)


@pytest.mark.parametrize(("n_q", "n_g", "kw", "chunk"), [
    (40, 160, {}, 37),
    (120, 500, {}, 256),
    (30, 90, {"k1": 5, "k2": 1, "lambda_value": 0.0}, 11),
    (25, 75, {"k1": 8, "k2": 3, "lambda_value": 1.0}, 1000),
])
def test_sparse_matches_dense(n_q, n_g, kw, chunk):
    q, g, _, _ = clustered(n_q, n_g, seed=n_q)
    expected = dense(q, g, **kw)
    got = k_reciprocal_rerank(q, g, chunk_size=chunk, **kw)
    assert got.shape == (n_q, n_g) and got.dtype == np.float32
    assert np.abs(got - expected).max() <= 1e-5


def test_sparse_matches_dense_cosine():
    q, g, _, _ = clustered(50, 150, seed=3)
    assert np.abs(k_reciprocal_rerank(q, g, metric="cosine") - dense(q, g, "cosine")).max() <= 1e-5


def test_lambda_one_is_the_normalised_squared_distance():
    q, g, _, _ = clustered(20, 60, seed=1)
    x = np.concatenate([q, g])
    full = pairwise_distances(x, x) ** 2
    expected = (full / full.max(axis=1, keepdims=True))[:20, 20:]
    np.testing.assert_allclose(k_reciprocal_rerank(q, g, lambda_value=1.0), expected, atol=1e-6)


def test_reranking_helps_on_clustered_data():
    q, g, q_pids, g_pids = clustered(60, 300, ids=20, seed=5, noise=1.0)
    q_cams, g_cams = np.zeros(60, int), np.ones(300, int)
    before = evaluate(pairwise_distances(q, g), q_pids, g_pids, q_cams, g_cams)
    after = evaluate(k_reciprocal_rerank(q, g), q_pids, g_pids, q_cams, g_cams)
    assert after.mAP > before.mAP


def test_errors():
    q, g, _, _ = clustered(5, 10)
    with pytest.raises(ValueError, match="more than k1 \\+ 1 = 21 images"):
        k_reciprocal_rerank(q, g)
    with pytest.raises(ValueError, match="k1 and k2"):
        k_reciprocal_rerank(q, g, k1=0)
    with pytest.raises(ValueError, match="lambda_value"):
        k_reciprocal_rerank(q, g, k1=3, lambda_value=2.0)
    with pytest.raises(ValueError, match="same D"):
        k_reciprocal_rerank(q, g[:, :3], k1=3)
    with pytest.raises(ValueError, match="shapes disagree"):
        k_reciprocal_dense(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 2)))
    bad = q.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        k_reciprocal_rerank(bad, g, k1=3)


def test_registered_as_builtin_reranker():
    from reidcore import plugins
    from reidcore.registry import registry

    plugins.reset()
    entry = registry("reranker").entry("k-reciprocal")
    assert entry.plugin == "reidcore" and entry.resolve() is k_reciprocal_rerank


def test_sparse_matches_dense_with_duplicate_embeddings_and_small_margin():
    from reidcore.evaluation.neighbours import nearest as _topk_rows

    q, g, _, _ = clustered(30, 120, seed=9)
    g[60:] = g[:60]  # every gallery embedding twice: exact ties
    q[10:20] = g[:10]
    assert np.abs(k_reciprocal_rerank(q, g) - dense(q, g)).max() <= 1e-5
    import torch

    d = torch.tensor([[3.0, 1.0, 1.0, 1.0, 1.0, 0.5, 1.0]])
    # a tie run past the topk candidates falls back to a full stable sort
    np.testing.assert_array_equal(_topk_rows(d, 3, margin=1), [[5, 1, 2]])
    np.testing.assert_array_equal(_topk_rows(d, 2, margin=0), [[5, 1]])


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "cityblock"])
def test_streamed_rows_and_shared_neighbours_match_the_matrix(metric):
    from reidcore.evaluation.neighbours import search_neighbours

    q, g, _, _ = clustered(35, 140, seed=11)
    whole = k_reciprocal_rerank(q, g, metric=metric, k1=6, k2=3)
    assert np.abs(whole - dense(q, g, metric, k1=6, k2=3)).max() <= 1e-5
    nb = search_neighbours(q, g, metric=metric, k=26, chunk_size=50)
    rows = k_reciprocal_rerank(q, g, metric=metric, k1=6, k2=3, neighbours=nb, streaming=True)
    assert rows.shape == (35, 140)
    np.testing.assert_allclose(rows.dense(block_size=8), whole, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rows.rows(10, 13), whole[10:13], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="35 queries, metric"):
        k_reciprocal_rerank(q[:30], g, metric=metric, neighbours=nb)
    with pytest.raises(ValueError, match="search with k >= 31"):
        k_reciprocal_rerank(q, g, metric=metric, k1=30, neighbours=nb)
