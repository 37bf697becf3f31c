"""evaluate(): CMC, mAP, the Market-1501 / diagonal / none protocols, errors; format_table."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reidcore.errors import EvaluationError, UnknownNameError
from reidcore.evaluation import (
    EXCLUDERS,
    EvalResult,
    evaluate,
    exclude_diagonal,
    exclude_market1501,
    exclude_none,
    format_table,
    pairwise_distances,
)


def ev(distmat, q_pids, g_pids, q_camids, g_camids, **kw):
    return evaluate(np.asarray(distmat, dtype=float), np.asarray(q_pids), np.asarray(g_pids),
                    np.asarray(q_camids), np.asarray(g_camids), **kw)


# --------------------------------------------------------------------------- hand-computed


def test_perfect_ranking():
    # every query's own identity is closest; other cameras so nothing is excluded
    d = [[0.1, 0.9, 0.2, 0.8],
         [0.9, 0.1, 0.8, 0.2]]
    r = ev(d, [1, 2], [1, 2, 1, 2], [0, 0], [1, 1, 2, 2])
    assert r.rank(1) == 1.0
    assert r.mAP == 1.0
    np.testing.assert_array_equal(r.cmc, np.ones(50))
    assert (r.num_queries, r.num_valid_queries, r.num_skipped) == (2, 2, 0)


def test_known_average_precision():
    # query 0's ranking: hit, miss, hit, miss, miss, hit
    #   AP = (1/1 + 2/3 + 3/6) / 3 = 13/18, first hit at rank 1
    # query 1's ranking: miss, miss, hit, miss, miss, miss
    #   AP = 1/3, first hit at rank 3
    g_pids = [1, 2, 1, 3, 3, 1]
    d = [[0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
         [0.0, 0.2, 0.5, 0.1, 0.3, 0.4]]
    r = ev(d, [1, 2], g_pids, [0, 0], [1] * 6, max_rank=6)
    assert r.mAP == pytest.approx((13 / 18 + 1 / 3) / 2)
    np.testing.assert_allclose(r.cmc, [0.5, 0.5, 1.0, 1.0, 1.0, 1.0])


def test_market1501_excludes_junk_and_same_camera_matches():
    # query pid 1 from camera 0; by distance the gallery is
    #   pid 1 cam 0 (same camera) < pid -1 (junk) < pid 2 < pid 1 cam 1
    d = [[0.05, 0.1, 0.3, 0.4]]
    g_pids, g_cams = [1, -1, 2, 1], [0, 1, 1, 1]
    market = ev(d, [1], g_pids, [0], g_cams, excluder="market1501", max_rank=4)
    # left: pid 2, pid 1 cam 1
    assert market.mAP == pytest.approx(0.5)
    np.testing.assert_allclose(market.cmc, [0, 1, 1, 1])
    none = ev(d, [1], g_pids, [0], g_cams, excluder="none", max_rank=4)
    # hits at ranks 1 and 4: AP = (1 + 2/4) / 2
    assert none.mAP == pytest.approx(0.75)
    np.testing.assert_allclose(none.cmc, [1, 1, 1, 1])


def test_same_pid_other_camera_and_other_pid_same_camera_are_kept():
    mask = exclude_market1501(5, 2, np.array([5, 5, 7, 7, -1, 0]), np.array([2, 3, 2, 3, 3, 2]), 0)
    np.testing.assert_array_equal(mask, [True, False, False, False, True, False])


def test_distractors_pid_0_count_as_wrong_matches():
    d = [[0.1, 0.2]]
    r = ev(d, [1], [0, 1], [0], [1, 1], max_rank=2)
    assert r.rank(1) == 0.0 and r.rank(2) == 1.0
    assert r.mAP == pytest.approx(0.5)


def test_queries_without_match_are_skipped_and_counted():
    # query pid 3 is not in the gallery, query pid 4 only from its own camera
    d = [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3]]
    r = ev(d, [1, 3, 4], [2, 1, 4], [0, 0, 0], [1, 1, 0], max_rank=3)
    assert (r.num_queries, r.num_valid_queries, r.num_skipped) == (3, 1, 2)
    assert r.mAP == pytest.approx(0.5)
    np.testing.assert_allclose(r.cmc, [0, 1, 1])


def test_single_camera_dataset_raises_with_a_hint():
    d = np.random.default_rng(0).random((3, 6))
    with pytest.raises(EvaluationError, match="single-camera.*--excluder none"):
        ev(d, [1, 2, 3], [1, 2, 3, 1, 2, 3], [0, 0, 0], [0] * 6)
    # the same data evaluate fine without exclusion
    assert ev(d, [1, 2, 3], [1, 2, 3, 1, 2, 3], [0, 0, 0], [0] * 6, excluder="none").mAP > 0


def test_disjoint_identities_raise():
    with pytest.raises(EvaluationError, match="none of the 2 queries"):
        ev([[0.1, 0.2], [0.3, 0.4]], [1, 2], [3, 4], [0, 0], [1, 1])


def test_diagonal_protocol_ignores_only_self():
    x = np.array([[0.0], [0.1], [5.0], [5.2], [9.0]])
    pids = np.array([1, 1, 2, 2, 3])
    cams = np.zeros(5, dtype=int)  # single camera: fine for the diagonal protocol
    r = evaluate(pairwise_distances(x, x), pids, pids, cams, cams, excluder="diagonal",
                 max_rank=4)
    # pid 3 has no other image: skipped; the other four find their pair at rank 1
    assert (r.num_valid_queries, r.num_skipped) == (4, 1)
    assert r.mAP == 1.0 and r.rank(1) == 1.0
    np.testing.assert_array_equal(exclude_diagonal(1, 0, pids, cams, 2),
                                  [False, False, True, False, False])


def test_diagonal_needs_square_distmat():
    with pytest.raises(ValueError, match="diagonal"):
        ev([[0.1, 0.2]], [1], [1, 1], [0], [0, 0], excluder="diagonal")
    with pytest.raises(ValueError, match="query index 3"):
        exclude_diagonal(1, 0, np.array([1, 2]), np.array([0, 0]), 3)


def test_none_protocol_mask():
    assert not exclude_none(1, 0, np.array([1, -1]), np.array([0, 0]), 0).any()
    assert set(EXCLUDERS) >= {"market1501", "diagonal", "none"}


def test_ties_are_broken_by_gallery_index():
    # all distances equal: ranking is gallery order
    r = ev([[1.0, 1.0, 1.0]], [1], [2, 1, 1], [0], [1, 1, 1], max_rank=3)
    assert r.mAP == pytest.approx((1 / 2 + 2 / 3) / 2)
    np.testing.assert_allclose(r.cmc, [0, 1, 1])
    r = ev([[1.0, 1.0, 1.0]], [1], [1, 2, 1], [0], [1, 1, 1], max_rank=3)
    np.testing.assert_allclose(r.cmc, [1, 1, 1])


def test_match_beyond_max_rank_is_not_counted_in_cmc_but_in_map():
    r = ev([[0.1, 0.2, 0.3]], [1], [2, 3, 1], [0], [1, 1, 1], max_rank=2)
    np.testing.assert_array_equal(r.cmc, [0, 0])
    assert r.mAP == pytest.approx(1 / 3)
    assert "rank5" not in r.to_dict() and "rank1" in r.to_dict()


def test_custom_excluder_callable():
    def exclude_first(q_pid, q_camid, g_pids, g_camids, q_index):
        mask = np.zeros(len(g_pids), dtype=bool)
        mask[0] = True
        return mask

    r = ev([[0.1, 0.2]], [1], [1, 1], [0], [0, 0], excluder=exclude_first, max_rank=2)
    assert r.excluder == "exclude_first" and r.rank(1) == 1.0

    with pytest.raises(ValueError, match="mask of shape"):
        ev([[0.1, 0.2]], [1], [1, 1], [0], [0, 0], excluder=lambda *a: np.zeros(3, bool))


# --------------------------------------------------------------------------- results


def test_to_dict_is_plain_python():
    r = ev([[0.1, 0.9], [0.9, 0.1]], [1, 2], [1, 2], [0, 0], [1, 1])
    out = r.to_dict()
    assert list(out) == ["rank1", "rank5", "rank10", "rank20", "mAP", "mINP", "num_queries",
                         "num_valid_queries", "num_skipped", "excluder", "ap", "average",
                         "mAP_step", "mAP_trapezoid"]
    for key in ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP", "mAP_step",
                "mAP_trapezoid"):
        assert type(out[key]) is float and 0.0 <= out[key] <= 1.0
    for key in ("num_queries", "num_valid_queries", "num_skipped"):
        assert type(out[key]) is int
    assert out["excluder"] == "market1501"


def test_result_is_frozen_and_comparable():
    r = ev([[0.1, 0.9], [0.9, 0.1]], [1, 2], [1, 2], [0, 0], [1, 1])
    assert isinstance(r, EvalResult)
    assert r == ev([[0.1, 0.9], [0.9, 0.1]], [1, 2], [1, 2], [0, 0], [1, 1])
    assert r.cmc.dtype == np.float64 and r.cmc.shape == (50,)
    with pytest.raises(AttributeError):
        r.mAP = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        r.cmc[0] = 0.0
    with pytest.raises(ValueError, match="outside"):
        r.rank(51)


def test_format_table():
    d = [[0.0, 0.1, 0.2, 0.3, 0.4, 0.5], [0.0, 0.2, 0.5, 0.1, 0.3, 0.4], [0.1] * 6]
    r = ev(d, [1, 2, 9], [1, 2, 1, 3, 3, 1], [0, 0, 0], [1] * 6)
    text = format_table(r)
    assert "market1501" in text
    assert "rank-1" in text and " 50.0%" in text  # rank-1
    assert "rank-20" in text and "100.0%" in text
    assert f"{100 * (13 / 18 + 1 / 3) / 2:.1f}%" in text  # mAP 52.8%
    assert "2 valid, 1 skipped" in text


# --------------------------------------------------------------------------- validation


def test_lengths_must_agree_and_errors_name_the_array():
    d = np.zeros((2, 3))
    ok = dict(q_pids=[1, 2], g_pids=[1, 2, 3], q_camids=[0, 0], g_camids=[1, 1, 1])
    for name, bad in (("q_pids", [1]), ("g_pids", [1, 2]), ("q_camids", [0, 0, 0]),
                      ("g_camids", [1])):
        args = {**ok, name: bad}
        with pytest.raises(ValueError, match=name):
            evaluate(d, **{k: np.asarray(v) for k, v in args.items()})


def test_bad_distmat_and_max_rank():
    with pytest.raises(ValueError, match="2-D"):
        ev([0.1, 0.2], [1], [1, 1], [0], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        ev([[np.nan, 0.2]], [1], [1, 1], [0], [1, 1])
    with pytest.raises(ValueError, match="max_rank"):
        ev([[0.1, 0.2]], [1], [1, 1], [0], [1, 1], max_rank=0)
    with pytest.raises(EvaluationError):
        ev(np.zeros((0, 2)), [], [1, 1], [], [1, 1])


def test_unknown_excluder():
    with pytest.raises(UnknownNameError, match="market1501"):
        ev([[0.1]], [1], [1], [0], [1], excluder="market")


# --------------------------------------------------------------------------- reference


def reference(distmat, q_pids, g_pids, q_camids, g_camids, excluder, max_rank):
    """Brute force: sort (distance, index) pairs, AP from the precision/recall steps."""
    cmc_counts, aps = np.zeros(max_rank), []
    for i in range(len(q_pids)):
        ranking = []
        for _dist, j in sorted((float(distmat[i, j]), j) for j in range(len(g_pids))):
            if excluder == "market1501" and (
                g_pids[j] == -1 or (g_pids[j] == q_pids[i] and g_camids[j] == q_camids[i])
            ):
                continue
            if excluder == "diagonal" and j == i:
                continue
            ranking.append(g_pids[j] == q_pids[i])
        n_pos = sum(ranking)
        if n_pos == 0:
            continue
        first = ranking.index(True)
        for k in range(first, max_rank):
            cmc_counts[k] += 1
        ap, hits, prev_recall = 0.0, 0, 0.0
        for k, hit in enumerate(ranking, start=1):
            hits += hit
            recall, precision = hits / n_pos, hits / k
            ap += (recall - prev_recall) * precision
            prev_recall = recall
        aps.append(ap)
    if not aps:
        return None
    return cmc_counts / len(aps), float(np.mean(aps)), len(aps)


@st.composite
def problems(draw):
    n_q = draw(st.integers(1, 6))
    n_g = draw(st.integers(1, 12))
    excluder = draw(st.sampled_from(["market1501", "diagonal", "none"]))
    if excluder == "diagonal":
        n_g = n_q
    ints = st.integers
    distmat = np.array(draw(st.lists(st.lists(ints(0, 3), min_size=n_g, max_size=n_g),
                                     min_size=n_q, max_size=n_q)), dtype=float)
    q_pids = np.array(draw(st.lists(ints(0, 3), min_size=n_q, max_size=n_q)))
    g_pids = np.array(draw(st.lists(ints(-1, 3), min_size=n_g, max_size=n_g)))
    q_cams = np.array(draw(st.lists(ints(0, 2), min_size=n_q, max_size=n_q)))
    g_cams = np.array(draw(st.lists(ints(0, 2), min_size=n_g, max_size=n_g)))
    max_rank = draw(ints(1, 8))
    return distmat, q_pids, g_pids, q_cams, g_cams, excluder, max_rank


@settings(max_examples=300, deadline=None)
@given(problems())
def test_matches_brute_force_reference_with_ties(problem):
    expected = reference(*problem)
    if expected is None:
        with pytest.raises(EvaluationError):
            evaluate(*problem)
        return
    cmc, mAP, num_valid = expected
    r = evaluate(*problem)
    np.testing.assert_allclose(r.cmc, cmc, atol=1e-12)
    assert r.mAP == pytest.approx(mAP, abs=1e-12)
    assert r.num_valid_queries == num_valid
    assert r.num_skipped == len(problem[1]) - num_valid


def test_matches_brute_force_reference_on_random_embeddings():
    rng = np.random.default_rng(42)
    n_q, n_g = 40, 120
    q_pids, g_pids = rng.integers(0, 15, n_q), rng.integers(-1, 15, n_g)
    q_cams, g_cams = rng.integers(0, 4, n_q), rng.integers(0, 4, n_g)
    distmat = pairwise_distances(rng.normal(size=(n_q, 8)), rng.normal(size=(n_g, 8)))
    distmat = np.round(distmat, 1)  # plenty of ties
    for excluder in ("market1501", "none"):
        cmc, mAP, num_valid = reference(distmat, q_pids, g_pids, q_cams, g_cams, excluder, 50)
        r = evaluate(distmat, q_pids, g_pids, q_cams, g_cams, excluder=excluder)
        np.testing.assert_allclose(r.cmc, cmc, atol=1e-12)
        assert r.mAP == pytest.approx(mAP, abs=1e-12)
        assert r.num_valid_queries == num_valid
