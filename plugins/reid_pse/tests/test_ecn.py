"""ECN re-ranking (Sarfraz et al., CVPR 2018, Sec. 3.2): the sparse re-rankers against the
dense reference (both versions of the authors' code, both methods, dense and streamed) and
hand-checked cases, including the authors' 2020 open-ended fix; parameter errors; the
registry and ``python -m reidcore evaluate --rerank ecn``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from reid_pse.ecn import ecn_orig_rerank, ecn_rerank

from reidcore.evaluation import pairwise_distances

sys.path.insert(0, str(Path(__file__).parent))
from ecn_reference import ecn_dense  # noqa: E402


def dense(query, gallery, metric, **kw):
    """The dense reference on ``pairwise_distances`` of the same embeddings."""
    d = [pairwise_distances(a, b, metric=metric, device="cpu")
         for a, b in ((query, gallery), (query, query), (gallery, gallery))]
    return ecn_dense(*d, **kw)


def check_both(q, g, metric, t, q_nb, k, chunk_size):
    """Both methods and both versions: fast == dense reference, and the streamed rows
    (small blocks) == the whole matrix."""
    for version in ("2020", "2018"):
        fast = ecn_rerank(q, g, metric=metric, t=t, q=q_nb, k=k, chunk_size=chunk_size,
                          version=version)
        ref = dense(q, g, metric, t=t, q=q_nb, k=k, version=version)
        assert fast.dtype == np.float32 and fast.shape == (len(q), len(g))
        np.testing.assert_allclose(fast, ref, rtol=1e-6, atol=1e-5)
        if version == "2018":
            assert fast.min() >= -1e-6 and fast.max() <= 1 + 1e-6
        rows = ecn_rerank(q, g, metric=metric, t=t, q=q_nb, k=k, chunk_size=chunk_size,
                          version=version, streaming=True)
        np.testing.assert_allclose(rows.dense(block_size=7), fast, rtol=1e-6, atol=1e-6)
        fast = ecn_orig_rerank(q, g, metric=metric, t=t, q=q_nb, chunk_size=chunk_size,
                               version=version, block_queries=11)
        ref = dense(q, g, metric, t=t, q=q_nb, method="origdist", version=version)
        assert fast.dtype == np.float32 and fast.shape == (len(q), len(g))
        np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5)
        rows = ecn_orig_rerank(q, g, metric=metric, t=t, q=q_nb, chunk_size=chunk_size,
                               version=version, block_queries=11, streaming=True)
        np.testing.assert_allclose(rows.dense(block_size=5), fast, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------- hand-checked


def test_hand_checked_four_points():
    # 1-D: query A = 0, gallery B = 1, C = 3, D = 7 (Euclidean distances are exact).
    # rank lists (self first): A: A B C D, B: B A C D, C: C B A D, D: D C B A
    # t = q = 1, M = 2: N(A) = [B, A], N(B) = [A, B], N(C) = [B, A], N(D) = [C, B]
    q = np.array([[0.0]], np.float32)
    g = np.array([[1.0], [3.0], [7.0]], np.float32)
    # original distance: 4 ECN(A, B) = d(B,B) + d(A,B) + d(A,A) + d(B,A) = 0 + 1 + 0 + 1
    # 4 ECN(A, C) = d(B,C) + d(A,C) + d(B,A) + d(A,A) = 2 + 3 + 1 + 0
    # 4 ECN(A, D) = d(B,D) + d(A,D) + d(C,A) + d(B,A) = 6 + 7 + 3 + 1
    expected_orig = np.array([[2 / 4, 6 / 4, 17 / 4]], np.float32)
    for version in ("2018", "2020"):  # no ECN value is 0: the versions agree
        np.testing.assert_allclose(ecn_orig_rerank(q, g, t=1, q=1, version=version),
                                   expected_orig, atol=1e-6)
    # rank lists of length k = 2: weights A: (A 2, B 1), B: (B 2, A 1), C: (C 2, B 1),
    # D: (D 2, C 1); S = w w^T rows A: 5 4 1 0, B: 4 5 2 0, C: 1 2 5 2, D: 0 0 2 5;
    # min-max per row (C's minimum is 1): R(A, .) = 0 .2 .8 1, R(B, .) = .2 0 .6 1,
    # R(C, .) = 1 .75 0 .75, R(D, .) = 1 1 .6 0
    # 4 ECN(A, B) = R(B,B) + R(A,B) + R(A,A) + R(B,A) = 0 + .2 + 0 + .2
    # 4 ECN(A, C) = R(B,C) + R(A,C) + R(B,A) + R(A,A) = .6 + .8 + .2 + 0
    # 4 ECN(A, D) = R(B,D) + R(A,D) + R(C,A) + R(B,A) = 1 + 1 + 1 + .2
    expected_rank = np.array([[0.4 / 4, 1.6 / 4, 3.2 / 4]], np.float32)
    np.testing.assert_allclose(ecn_rerank(q, g, t=1, q=1, k=2, version="2018"), expected_rank,
                               atol=1e-6)
    np.testing.assert_allclose(dense(q, g, "euclidean", t=1, q=1, k=2, version="2018"),
                               expected_rank, atol=1e-6)
    np.testing.assert_allclose(dense(q, g, "euclidean", t=1, q=1, method="origdist"),
                               expected_orig, atol=1e-6)
    # 2020: -S, and the original distance where the sum is 0:
    # 4 ECN(A, B) = -(S(B,B) + S(A,B) + S(A,A) + S(B,A)) = -(5 + 4 + 5 + 4)
    # 4 ECN(A, C) = -(S(B,C) + S(A,C) + S(B,A) + S(A,A)) = -(2 + 1 + 4 + 5)
    # 4 ECN(A, D) = -(S(B,D) + S(A,D) + S(C,A) + S(B,A)) = -(0 + 0 + 1 + 4)
    expected_2020 = np.array([[-18 / 4, -12 / 4, -5 / 4]], np.float32)
    np.testing.assert_allclose(ecn_rerank(q, g, t=1, q=1, k=2), expected_2020, atol=1e-6)
    np.testing.assert_allclose(dense(q, g, "euclidean", t=1, q=1, k=2), expected_2020,
                               atol=1e-6)


def test_open_ended_match_without_shared_neighbours_ranks_by_original_distance():
    # The authors' 2020 fix (merge_dist). 1-D, t = q = 1, k = 2: query P = 0 with its
    # nearest neighbour 0.4 (the only gallery image whose neighbourhood overlaps P's);
    # three far pairs (20/20.4, 41/40.7, 3.0/2.9), each image the other's nearest
    # neighbour, so none shares a top-2 neighbour with P. The true match is 2.9 (last
    # gallery index): the 2018 code gives every non-overlapping pair the value 1 and ranks
    # it last (by index), the 2020 code ranks it by its distance, second.
    q = np.array([[0.0]], np.float32)
    g = np.array([[20.0], [20.4], [0.4], [41.0], [40.7], [3.0], [2.9]], np.float32)
    d = pairwise_distances(q, g, device="cpu")[0]
    old = ecn_rerank(q, g, t=1, q=1, k=2, version="2018")[0]
    new = ecn_rerank(q, g, t=1, q=1, k=2)[0]
    np.testing.assert_allclose(new, dense(q, g, "euclidean", t=1, q=1, k=2)[0], atol=1e-6)
    overlap = new < 0
    zero = ~overlap
    # the pairs without overlap: the 2018 code gives them all one value (1), so their order
    # is the gallery index; 2020 gives them their original distance
    np.testing.assert_array_equal(old[zero], np.ones(zero.sum(), np.float32))
    np.testing.assert_allclose(new[zero], d[zero], rtol=1e-6)
    assert overlap.any() and zero.sum() >= 3
    # every overlapping pair still ranks before every pair without overlap
    assert new[overlap].max() < new[zero].min()
    # the true match (index 6, at 2.9) shares nothing with P but is nearer than the
    # distractors without overlap: it now ranks before them, not after them by index
    order_new = np.argsort(new, kind="stable")
    order_old = np.argsort(old, kind="stable")
    zero_idx = np.flatnonzero(zero)
    assert 6 in zero_idx
    nearer_than_match = [j for j in zero_idx if d[j] < d[6]]
    assert list(order_new).index(6) == overlap.sum() + len(nearer_than_match)
    assert list(order_old).index(6) > list(order_new).index(6)


# ---------------------------------------------------------------------------- fast == dense


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "sqeuclidean", "cityblock"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_matches_dense_on_random_embeddings(metric, seed):
    rng = np.random.default_rng(seed)
    n_q, n_g, dim = int(rng.integers(5, 40)), int(rng.integers(20, 160)), int(rng.integers(2, 16))
    centres = rng.normal(size=(8, dim))
    q = (centres[rng.integers(0, 8, n_q)] + 0.5 * rng.normal(size=(n_q, dim))).astype(np.float32)
    g = (centres[rng.integers(0, 8, n_g)] + 0.5 * rng.normal(size=(n_g, dim))).astype(np.float32)
    n = n_q + n_g
    t, q_nb, k = int(rng.integers(1, 6)), int(rng.integers(1, 12)), int(rng.integers(1, 40))
    check_both(q, g, metric, t, q_nb, min(k, n - 1), chunk_size=int(rng.integers(7, 64)))


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cityblock"])
@pytest.mark.parametrize("seed", [0, 1])
def test_fast_matches_dense_with_ties(metric, seed):
    # coordinates in {0, 1, 2}: exact distances, many ties and duplicates (tie runs longer
    # than the top-k candidates, so some rows are sorted in full)
    rng = np.random.default_rng(10 + seed)
    q = rng.integers(0, 3, (25, 3)).astype(np.float32)
    g = rng.integers(0, 3, (90, 3)).astype(np.float32)
    for t, q_nb, k in [(1, 1, 3), (3, 8, 25), (2, 5, 114)]:
        check_both(q, g, metric, t, q_nb, k, chunk_size=16)


def test_fast_matches_dense_with_cosine_ties():
    # vectors in {-1, 1}^4 and +-e_i: exact unit vectors (norms 2 and 1), exact cosines
    rng = np.random.default_rng(3)
    pool = np.concatenate([np.array(np.meshgrid(*[[-1, 1]] * 4)).reshape(4, -1).T,
                           np.eye(4), -np.eye(4)]).astype(np.float32)
    q = pool[rng.integers(0, len(pool), 20)]
    g = pool[rng.integers(0, len(pool), 70)]
    for t, q_nb, k in [(1, 2, 4), (3, 8, 25)]:
        check_both(q, g, "cosine", t, q_nb, k, chunk_size=32)


def test_small_set_where_rows_share_neighbours_with_every_image():
    # k = N - 1: every pair of rank lists overlaps, so the row minima of S are not 0
    rng = np.random.default_rng(4)
    q = rng.normal(size=(3, 4)).astype(np.float32)
    g = rng.normal(size=(5, 4)).astype(np.float32)
    check_both(q, g, "euclidean", 2, 3, 7, chunk_size=3)


def test_duplicates_of_a_query_rank_first_by_index():
    # the image itself comes first even when a duplicate (lower index) is at distance 0
    q = np.array([[0.0, 0.0], [5.0, 5.0]], np.float32)
    g = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [5.0, 6.0], [9.0, 9.0]], np.float32)
    check_both(q, g, "euclidean", 2, 2, 3, chunk_size=4)


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("params, pattern", [
    (dict(t=0), "t=0"), (dict(q=0), "q=0"), (dict(k=0), "k=0"), (dict(t=-2), "t=-2"),
    (dict(k=12), r"k=12"), (dict(t=12), r"\[1, 11\]"), (dict(q=40), "q=40"),
    (dict(k=2.5), "k=2.5"), (dict(t=True), "t=True"),
])
def test_bad_parameters_name_the_value(params, pattern):
    q = np.zeros((4, 3), np.float32)
    g = np.arange(24, dtype=np.float32).reshape(8, 3)
    with pytest.raises(ValueError, match=pattern):
        ecn_rerank(q, g, **params)
    if "k" not in params:
        with pytest.raises(ValueError, match=pattern):
            ecn_orig_rerank(q, g, **params)
    d = [pairwise_distances(a, b, device="cpu") for a, b in ((q, g), (q, q), (g, g))]
    with pytest.raises(ValueError, match=pattern):
        ecn_dense(*d, **params)


def test_parameters_at_the_limit_are_accepted():
    q = np.array([[0.0], [10.0]], np.float32)
    g = np.array([[1.0], [3.0], [7.0]], np.float32)
    for fn in (ecn_rerank, ecn_orig_rerank):
        out = fn(q, g, t=4, q=4, **({"k": 4} if fn is ecn_rerank else {}))
        assert out.shape == (2, 3) and np.isfinite(out).all()


def test_bad_inputs():
    q = np.zeros((3, 4), np.float32)
    g = np.ones((6, 4), np.float32)
    for fn, kw in ((ecn_rerank, {"k": 2}), (ecn_orig_rerank, {})):
        kw = {"t": 1, "q": 1, **kw}
        with pytest.raises(ValueError, match="Unknown metric 'hamming'"):
            fn(q, g, metric="hamming", **kw)
        with pytest.raises(ValueError, match=r"\(3, 4\) and \(6, 5\)"):
            fn(q, np.ones((6, 5), np.float32), **kw)
        with pytest.raises(ValueError, match="non-finite"):
            fn(q, np.full((6, 4), np.nan, np.float32), **kw)
        with pytest.raises(ValueError, match="too large"):
            fn(q, np.full((6, 4), 1e30, np.float32), **kw)
        with pytest.raises(ValueError, match="0 queries"):
            fn(q[:0], g, **kw)
        with pytest.raises(ValueError, match="chunk_size"):
            fn(q, g, chunk_size=0, **kw)
    with pytest.raises(ValueError, match="method"):
        ecn_dense(np.zeros((1, 2)), np.zeros((1, 1)), np.zeros((2, 2)), t=1, q=1, k=1,
                  method="jaccard")
    with pytest.raises(ValueError, match="shapes disagree"):
        ecn_dense(np.zeros((1, 2)), np.zeros((1, 1)), np.zeros((3, 3)), t=1, q=1, k=1)
    for fn in (ecn_rerank, ecn_orig_rerank):
        with pytest.raises(ValueError, match="Unknown ECN version '2019'"):
            fn(q, g, t=1, q=1, version="2019")


# ---------------------------------------------------------------------------- registry, CLI


def test_registered_rerankers():
    from reidcore.registry import registry

    reg = registry("reranker")
    assert reg.get("ecn") is ecn_rerank
    assert reg.get("ecn-orig") is ecn_orig_rerank


def test_evaluate_cli_with_ecn(tmp_path, capsys):
    from reidcore.cli import main

    rng = np.random.default_rng(0)
    n_ids, dim = 10, 8
    centres = rng.normal(size=(n_ids + 1, dim)) * 3
    q_pids = np.repeat(np.arange(1, n_ids + 1), 2)
    g_pids = np.repeat(np.arange(1, n_ids + 1), 4)
    q_cams, g_cams = np.tile([1, 2], n_ids), np.tile([1, 2, 3, 4], n_ids)
    q = (centres[q_pids] + rng.normal(size=(len(q_pids), dim))).astype(np.float32)
    g = (centres[g_pids] + rng.normal(size=(len(g_pids), dim))).astype(np.float32)
    paths = {}
    for part, embs, pids, cams in (("query", q, q_pids, q_cams), ("gallery", g, g_pids, g_cams)):
        h5 = tmp_path / f"{part}.h5"
        with h5py.File(h5, "w") as f:
            f.create_dataset("embs", data=embs)
        csv = tmp_path / f"{part}.csv"
        csv.write_text("".join(f"{p:04d},{p:04d}_c{c}s1_{i:06d}_00.jpg\n"
                               for i, (p, c) in enumerate(zip(pids, cams, strict=True))))
        paths[part] = (h5, csv)
    for name in ("ecn", "ecn-orig"):
        out = tmp_path / f"{name}.json"
        assert main(["evaluate", "--query-embeddings", str(paths["query"][0]),
                     "--gallery-embeddings", str(paths["gallery"][0]),
                     "--query-dataset", str(paths["query"][1]),
                     "--gallery-dataset", str(paths["gallery"][1]),
                     "--rerank", name, "--output", str(out)]) == 0
        assert "reranked" in capsys.readouterr().out
        report = json.loads(out.read_text())
        assert report["reranked"]["reranker"] == name
        assert 0.5 <= report["reranked"]["mAP"] <= 1.0


# ---------------------------------------------------------------------------- streaming


def test_streamed_evaluation_and_shared_neighbours_equal_the_matrix():
    from reidcore.evaluation import evaluate, evaluate_from_embeddings, search_neighbours
    from reidcore.evaluation.rerank_kreciprocal import k_reciprocal_rerank

    rng = np.random.default_rng(7)
    centres = rng.normal(size=(12, 8))
    q_pids, g_pids = rng.integers(0, 12, 40), rng.integers(0, 12, 150)
    q = (centres[q_pids] + 0.8 * rng.normal(size=(40, 8))).astype(np.float32)
    g = (centres[g_pids] + 0.8 * rng.normal(size=(150, 8))).astype(np.float32)
    q_cams, g_cams = rng.integers(0, 2, 40), rng.integers(0, 2, 150)
    # one neighbour search serves both re-rankers
    nb = search_neighbours(q, g, metric="euclidean", k=26)
    for fn in (ecn_rerank, ecn_orig_rerank, k_reciprocal_rerank):
        whole = fn(q, g)
        np.testing.assert_allclose(fn(q, g, neighbours=nb), whole, rtol=1e-6, atol=1e-6)
        expected = evaluate(whole, q_pids, g_pids, q_cams, g_cams)
        got = evaluate_from_embeddings(q, g, q_pids, g_pids, q_cams, g_cams, block_size=9,
                                       reranker=fn, rerank_options={"neighbours": nb})
        assert got.mAP == pytest.approx(expected.mAP, abs=1e-9)
        np.testing.assert_allclose(got.cmc, expected.cmc, atol=1e-12)
