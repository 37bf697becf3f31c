"""Streaming evaluation (reidcore.evaluation.streaming): the same EvalResult as the dense
path on random problems, with ties and every excluder, for plain distances and the
streamed k-reciprocal re-ranking."""

from __future__ import annotations

import numpy as np
import pytest

from reidcore.evaluation import evaluate, pairwise_distances
from reidcore.evaluation.rerank_kreciprocal import k_reciprocal_rerank
from reidcore.evaluation.streaming import (
    DistanceRows,
    embedding_rows,
    evaluate_from_embeddings,
    evaluate_rows,
    supports_streaming,
)


def same_camera_as_query(q_pid, q_camid, g_pids, g_camids, i):
    """A custom excluder (kernel code ``mask``): every gallery item of the query's camera."""
    return g_camids == q_camid


def problem(seed, n_q, n_g, integer):
    rng = np.random.default_rng(seed)
    ids = int(rng.integers(3, 12))
    if integer:  # small integer coordinates: exact distances and many ties
        q = rng.integers(0, 3, (n_q, 3)).astype(np.float32)
        g = rng.integers(0, 3, (n_g, 3)).astype(np.float32)
    else:
        centres = rng.normal(size=(ids, 8))
        q = (centres[rng.integers(0, ids, n_q)] + rng.normal(size=(n_q, 8))).astype(np.float32)
        g = (centres[rng.integers(0, ids, n_g)] + rng.normal(size=(n_g, 8))).astype(np.float32)
    q_pids, g_pids = rng.integers(-1, ids, n_q), rng.integers(-1, ids, n_g)
    q_cams, g_cams = rng.integers(0, 3, n_q), rng.integers(0, 3, n_g)
    return q, g, q_pids, g_pids, q_cams, g_cams


def assert_same(a, b):
    """Equal up to the order of float summation (the per-query numbers are equal)."""
    da, db = a.to_dict(), b.to_dict()
    assert da.keys() == db.keys()
    for key, value in db.items():
        if isinstance(value, float):
            assert da[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
        else:
            assert da[key] == value, key
    np.testing.assert_allclose(a.cmc, b.cmc, rtol=0, atol=1e-12)


@pytest.mark.parametrize("excluder", ["market1501", "none", "cuhk03", "diagonal",
                                      same_camera_as_query])
@pytest.mark.parametrize("metric", ["euclidean", "cosine", "cityblock"])
@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_equals_dense(excluder, metric, seed):
    n_q = 40 + seed * 13
    n_g = n_q if excluder == "diagonal" else 170 + seed * 31
    for integer in (True, False):
        q, g, q_pids, g_pids, q_cams, g_cams = problem(seed, n_q, n_g, integer)
        if excluder == "diagonal":
            g, g_pids, g_cams = q, q_pids, q_cams
        for ap, average in (("step", "valid"), ("trapezoid", "all")):
            kw = dict(excluder=excluder, max_rank=20, ap=ap, average=average, repeats=4,
                      seed=seed)
            expected = evaluate(pairwise_distances(q, g, metric, device="cpu"), q_pids,
                                g_pids, q_cams, g_cams, **kw)
            for block in (1, 7, 1000):
                if integer and metric == "cosine":
                    # cosines of integer vectors are not exact: the float32 rounding of a
                    # block depends on its shape, and exact ties may break; the reference
                    # is then the dense evaluation of the same rows
                    rows = embedding_rows(q, g, metric)
                    whole = np.concatenate([rows.rows(s, min(s + block, n_q))
                                            for s in range(0, n_q, block)])
                    expected = evaluate(whole, q_pids, g_pids, q_cams, g_cams, **kw)
                got = evaluate_from_embeddings(q, g, q_pids, g_pids, q_cams, g_cams,
                                               metric=metric, block_size=block, **kw)
                assert_same(got, expected)


def test_a_block_is_released_before_the_next_is_computed():
    """Only one block of rows is alive at a time (the ranker drops its reference before
    asking for the next block), so peak memory holds one block, not two."""
    import weakref

    q, g, q_pids, g_pids, q_cams, g_cams = problem(4, 20, 50, False)
    rows = embedding_rows(q, g)
    previous = []

    def source(s, e):
        if previous:
            assert previous[-1]() is None, f"block before rows {s}..{e - 1} still alive"
        block = rows.rows(s, e)
        previous.append(weakref.ref(block))
        return block

    got = evaluate_rows(DistanceRows(rows.shape, source), q_pids, g_pids, q_cams, g_cams,
                        block_size=6)
    assert len(previous) == 4
    assert_same(got, evaluate_rows(rows, q_pids, g_pids, q_cams, g_cams, block_size=6))


def test_rows_are_checked_and_errors_match_the_dense_path():
    q, g, q_pids, g_pids, q_cams, g_cams = problem(3, 10, 30, False)
    bad = DistanceRows((10, 30), lambda s, e: np.zeros((e - s, 29), np.float32))
    with pytest.raises(ValueError, match="have shape"):
        evaluate_rows(bad, q_pids, g_pids, q_cams, g_cams)
    nan = DistanceRows((10, 30), lambda s, e: np.full((e - s, 30), np.nan, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        evaluate_rows(nan, q_pids, g_pids, q_cams, g_cams, excluder="none")
    with pytest.raises(ValueError, match="block_size"):
        evaluate_from_embeddings(q, g, q_pids, g_pids, q_cams, g_cams, block_size=0)
    with pytest.raises(ValueError, match="q_pids must be a 1-D array of length 10"):
        evaluate_from_embeddings(q, g, q_pids[:3], g_pids, q_cams, g_cams)
    with pytest.raises(ValueError, match="Unknown metric"):
        evaluate_from_embeddings(q, g, q_pids, g_pids, q_cams, g_cams, metric="hamming")
    with pytest.raises(ValueError, match="differ in dimension"):
        evaluate_from_embeddings(q, g[:, :3], q_pids, g_pids, q_cams, g_cams)


@pytest.mark.parametrize("excluder", ["market1501", "cuhk03"])
def test_streamed_k_reciprocal_equals_dense(excluder):
    q, g, q_pids, g_pids, q_cams, g_cams = problem(5, 45, 160, False)
    assert supports_streaming(k_reciprocal_rerank)
    kw = dict(excluder=excluder, repeats=3)
    options = dict(k1=8, k2=3)
    expected = evaluate(k_reciprocal_rerank(q, g, **options), q_pids, g_pids, q_cams, g_cams,
                        **kw)
    for block in (4, 64):
        got = evaluate_from_embeddings(q, g, q_pids, g_pids, q_cams, g_cams, block_size=block,
                                       reranker=k_reciprocal_rerank, rerank_options=options,
                                       **kw)
        assert got.mAP == pytest.approx(expected.mAP, abs=1e-9)
        np.testing.assert_allclose(got.cmc, expected.cmc, atol=1e-12)


def test_a_reranker_without_streaming_is_evaluated_whole():
    q, g, q_pids, g_pids, q_cams, g_cams = problem(6, 20, 60, False)

    def plain(query, gallery, *, metric):
        return pairwise_distances(query, gallery, metric, device="cpu") * 2.0

    assert not supports_streaming(plain)
    got = evaluate_from_embeddings(q, g, q_pids, g_pids, q_cams, g_cams, reranker=plain)
    assert_same(got, evaluate(pairwise_distances(q, g, device="cpu"), q_pids, g_pids, q_cams,
                              g_cams))
