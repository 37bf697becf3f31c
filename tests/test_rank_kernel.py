"""The numba rank kernel against a plain NumPy reference: CMC, step/trapezoid AP, mINP,
every excluder (cuhk03 single-shot included), both averages; hand-computed APs; errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reidcore.errors import EvaluationError
from reidcore.evaluation import evaluate
from reidcore.evaluation.rank_kernel import shot_hash

M64 = (1 << 64) - 1


def _mix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & M64
    z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def py_shot_hash(seed: int, query: int, repeat: int, pid: int) -> int:
    h = _mix(seed & M64)
    for v in (query, repeat, pid):
        h = _mix(h ^ (v & M64))
    return h


def test_shot_hash_matches_its_documented_python_form():
    for args in [(0, 0, 0, 0), (1, 2, 3, -1), (12345, 3367, 9, 750), (-5, 1, 0, 42)]:
        assert int(shot_hash(*args)) == py_shot_hash(*args)


# --------------------------------------------------------------------------- reference


def ref_excluded(name, i, q_pid, q_cam, g_pids, g_cams):
    n_g = len(g_pids)
    if name == "none":
        return np.zeros(n_g, bool)
    if name in ("market1501", "cuhk03"):
        return (g_pids == -1) | ((g_pids == q_pid) & (g_cams == q_cam))
    if name == "diagonal":
        m = np.zeros(n_g, bool)
        m[i] = True
        return m
    raise AssertionError(name)


def matlab_ap(good: np.ndarray) -> float:
    """compute_AP.m over a ranking already stripped of junk; ``good`` is bool per rank."""
    ngood = good.sum()
    old_recall, old_precision, ap, intersect = 0.0, 1.0, 0.0, 0
    for j, g in enumerate(good):
        if g:
            intersect += 1
        recall = intersect / ngood
        precision = intersect / (j + 1)
        ap += (recall - old_recall) * ((old_precision + precision) / 2)
        old_recall, old_precision = recall, precision
        if intersect == ngood:
            break
    return ap


def reference(distmat, q_pids, g_pids, q_cams, g_cams, excluder, max_rank, average,
              repeats=10, seed=0):
    """One full stable sort per query (ties: lower gallery index first)."""
    n_q, n_g = distmat.shape
    cmc, aps, traps, inps, valid = np.zeros(max_rank), [], [], [], 0
    for i in range(n_q):
        order = np.lexsort((np.arange(n_g), distmat[i]))
        keep = ~ref_excluded(excluder, i, q_pids[i], q_cams[i], g_pids, g_cams)[order]
        ranked = order[keep]
        good = g_pids[ranked] == q_pids[i]
        if not good.any():
            continue
        valid += 1
        hits = np.flatnonzero(good)
        if excluder == "cuhk03":
            for t in range(repeats):
                drawn = []
                for pid in np.unique(g_pids[ranked]):
                    members = np.sort(ranked[g_pids[ranked] == pid])  # gallery-index order
                    drawn.append(members[py_shot_hash(seed, i, t, int(pid)) % len(members)])
                drawn = np.array(drawn)
                sub = ranked[np.isin(ranked, drawn)]  # drawn items in ranking order
                first = int(np.flatnonzero(g_pids[sub] == q_pids[i])[0])
                cmc[first:] += 1.0 / repeats
        elif hits[0] < max_rank:
            cmc[hits[0]:] += 1
        aps.append(np.mean(np.arange(1, len(hits) + 1) / (hits + 1.0)))
        traps.append(matlab_ap(good))
        inps.append(len(hits) / (hits[-1] + 1.0))
    if valid == 0:
        return None
    denom = valid if average == "valid" else n_q
    return (cmc / denom, sum(aps) / denom, sum(traps) / denom, sum(inps) / denom, valid)


EXCLUDER_NAMES = ["market1501", "diagonal", "none", "cuhk03"]


@st.composite
def problems(draw):
    excluder = draw(st.sampled_from(EXCLUDER_NAMES))
    n_q = draw(st.integers(1, 8))
    n_g = n_q if excluder == "diagonal" else draw(st.integers(1, 25))
    n_ids = draw(st.integers(1, 6))
    ints = st.integers
    levels = draw(st.integers(1, 6))  # few distinct distances: many ties
    distmat = np.array(draw(st.lists(st.lists(ints(0, levels), min_size=n_g, max_size=n_g),
                                     min_size=n_q, max_size=n_q)), dtype=float)
    distmat /= levels
    q_pids = np.array(draw(st.lists(ints(0, n_ids), min_size=n_q, max_size=n_q)))
    g_pids = np.array(draw(st.lists(ints(-1, n_ids), min_size=n_g, max_size=n_g)))
    q_cams = np.array(draw(st.lists(ints(0, 2), min_size=n_q, max_size=n_q)))
    g_cams = np.array(draw(st.lists(ints(0, 2), min_size=n_g, max_size=n_g)))
    max_rank = draw(ints(1, 10))
    average = draw(st.sampled_from(["valid", "all"]))
    seed = draw(ints(0, 3))
    return distmat, q_pids, g_pids, q_cams, g_cams, excluder, max_rank, average, seed


def check(problem, float32=False):
    distmat, q_pids, g_pids, q_cams, g_cams, excluder, max_rank, average, seed = problem
    if float32:
        distmat = distmat.astype(np.float32)
    expected = reference(distmat, q_pids, g_pids, q_cams, g_cams, excluder, max_rank, average,
                         repeats=3, seed=seed)
    results = {}
    for ap in ("step", "trapezoid"):
        if expected is None:
            with pytest.raises(EvaluationError):
                evaluate(distmat, q_pids, g_pids, q_cams, g_cams, excluder, max_rank, ap=ap,
                         average=average, repeats=3, seed=seed)
            return
        results[ap] = evaluate(distmat, q_pids, g_pids, q_cams, g_cams, excluder, max_rank,
                               ap=ap, average=average, repeats=3, seed=seed)
    cmc, m_step, m_trap, m_inp, valid = expected
    for ap, r in results.items():
        np.testing.assert_allclose(r.cmc, cmc, rtol=0, atol=1e-9)
        assert abs(r.mAP - (m_step if ap == "step" else m_trap)) <= 1e-9
        assert abs(r.mAP_step - m_step) <= 1e-9 and abs(r.mAP_trapezoid - m_trap) <= 1e-9
        assert abs(r.mINP - m_inp) <= 1e-9
        assert r.num_valid_queries == valid and r.num_skipped == len(q_pids) - valid
        assert r.ap == ap and r.average == average


@settings(max_examples=300, deadline=None)
@given(problems())
def test_kernel_matches_numpy_reference(problem):
    check(problem)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_kernel_matches_numpy_reference_float32(problem):
    check(problem, float32=True)


@pytest.mark.parametrize("excluder", EXCLUDER_NAMES)
def test_larger_random_problem_with_distractors_and_junk(excluder):
    rng = np.random.default_rng(7)
    n_q, n_g = (60, 60) if excluder == "diagonal" else (50, 400)
    q_pids = rng.integers(1, 20, n_q)
    g_pids = q_pids.copy() if excluder == "diagonal" else rng.integers(-1, 20, n_g)
    q_cams, g_cams = rng.integers(0, 4, n_q), rng.integers(0, 4, n_g)
    distmat = np.round(rng.random((n_q, n_g)), 2)
    for average in ("valid", "all"):
        check((distmat, q_pids, g_pids, q_cams, g_cams, excluder, 50, average, 1))


@pytest.mark.parametrize("excluder", EXCLUDER_NAMES)
def test_many_positives_take_the_binary_search_path(excluder):
    from reidcore.evaluation.rank_kernel import LINEAR_MAX

    rng = np.random.default_rng(11)
    n_q, n_g = (300, 300) if excluder == "diagonal" else (30, 500)
    q_pids = rng.integers(1, 4, n_q)
    g_pids = q_pids.copy() if excluder == "diagonal" else rng.integers(-1, 4, n_g)
    assert (g_pids == 1).sum() > 2 * LINEAR_MAX
    q_cams, g_cams = rng.integers(0, 3, n_q), rng.integers(0, 3, n_g)
    distmat = np.round(rng.random((n_q, n_g)), 2)
    distmat[0, :] = 0.5  # a row of ties
    check((distmat, q_pids, g_pids, q_cams, g_cams, excluder, 20, "valid", 2))


# --------------------------------------------------------------------------- by hand


def test_hand_computed_step_and_trapezoid_ap():
    # ranking: hit, miss, hit, miss, miss, hit (3 positives)
    #   step: (1/1 + 2/3 + 3/6) / 3 = 13/18
    #   trapezoid (compute_AP.m): hit at rank 1: (1 + 1)/2; hit at rank 3: old precision
    #   1/2, precision 2/3; hit at rank 6: old 2/5, precision 3/6
    #   = ((1 + 1)/2 + (1/2 + 2/3)/2 + (2/5 + 1/2)/2) / 3
    #   INP = 3 / 6
    d = [[0.0, 0.1, 0.2, 0.3, 0.4, 0.5]]
    g_pids = [1, 2, 1, 3, 3, 1]
    kw = dict(excluder="none", max_rank=6)
    step = evaluate(np.array(d), np.array([1]), np.array(g_pids), np.array([0]),
                    np.zeros(6, int), **kw)
    trap = evaluate(np.array(d), np.array([1]), np.array(g_pids), np.array([0]),
                    np.zeros(6, int), ap="trapezoid", **kw)
    assert step.mAP == pytest.approx(13 / 18, abs=1e-12)
    expected = ((1 + 1) / 2 + (1 / 2 + 2 / 3) / 2 + (2 / 5 + 1 / 2) / 2) / 3
    assert trap.mAP == pytest.approx(expected, abs=1e-12)
    assert trap.mAP < step.mAP
    assert step.mINP == pytest.approx(0.5) and trap.mINP == pytest.approx(0.5)
    assert trap.mAP_step == step.mAP


def test_hand_computed_trapezoid_with_junk_skipped():
    # market1501: junk (pid -1) at rank 2 is skipped, not counted
    # ranking after exclusion: miss (pid 2), hit -> step 1/2; trapezoid: old precision 0,
    # precision 1/2 -> (0 + 1/2) / 2 = 1/4
    d = np.array([[0.1, 0.2, 0.3]])
    r = evaluate(d, np.array([1]), np.array([2, -1, 1]), np.array([0]), np.array([1, 1, 1]),
                 ap="trapezoid", max_rank=3)
    assert r.mAP == pytest.approx(0.25) and r.mAP_step == pytest.approx(0.5)
    np.testing.assert_allclose(r.cmc, [0, 1, 1])


def test_average_all_uses_every_query_as_denominator():
    d = np.array([[0.1, 0.2], [0.1, 0.2]])
    args = (d, np.array([1, 9]), np.array([1, 2]), np.array([0, 0]), np.array([1, 1]))
    valid = evaluate(*args, max_rank=2)
    every = evaluate(*args, max_rank=2, average="all")
    assert valid.mAP == 1.0 and every.mAP == 0.5
    assert every.num_skipped == 1 and every.mINP == 0.5
    np.testing.assert_allclose(every.cmc, [0.5, 0.5])


def test_cuhk03_single_shot_is_seeded_and_averaged():
    rng = np.random.default_rng(3)
    g_pids = np.repeat(np.arange(10), 5)
    g_cams = np.tile([0, 1, 1, 1, 1], 10)
    q_pids, q_cams = np.arange(10), np.zeros(10, int)
    d = rng.random((10, 50))
    a = evaluate(d, q_pids, g_pids, q_cams, g_cams, excluder="cuhk03", seed=5)
    b = evaluate(d, q_pids, g_pids, q_cams, g_cams, excluder="cuhk03", seed=5)
    assert a == b
    multi = evaluate(d, q_pids, g_pids, q_cams, g_cams, excluder="market1501")
    assert a.mAP == multi.mAP  # AP is over the whole kept gallery
    assert a.cmc[-1] == 1.0
    # only 10 identities: single-shot rank is at most 9
    assert a.rank(10) == 1.0


# --------------------------------------------------------------------------- errors


def test_error_single_camera():
    d = np.random.default_rng(0).random((3, 6))
    with pytest.raises(EvaluationError, match="single-camera"):
        evaluate(d, np.array([1, 2, 3]), np.array([1, 2, 3] * 2), np.zeros(3, int),
                 np.zeros(6, int))


def test_error_empty_gallery():
    with pytest.raises(EvaluationError, match="gallery is empty"):
        evaluate(np.zeros((2, 0)), np.array([1, 2]), np.array([], int), np.zeros(2, int),
                 np.array([], int))
    with pytest.raises(EvaluationError, match="query set is empty"):
        evaluate(np.zeros((0, 2)), np.array([], int), np.array([1, 2]), np.array([], int),
                 np.zeros(2, int))


@pytest.mark.parametrize("where", [(0, 0), (1, 2), (1, 1)])
def test_error_nan_distance(where):
    d = np.random.default_rng(0).random((2, 3)).astype(np.float32)
    d[where] = np.nan
    with pytest.raises(ValueError, match="NaN.*first row"):
        evaluate(d, np.array([1, 2]), np.array([1, 2, 9]), np.zeros(2, int), np.ones(3, int))


def test_error_shape_mismatch():
    d = np.zeros((2, 3))
    with pytest.raises(ValueError, match="g_pids.*length 3"):
        evaluate(d, np.array([1, 2]), np.array([1, 2]), np.zeros(2, int), np.ones(3, int))
    with pytest.raises(ValueError, match="q_camids.*length 2"):
        evaluate(d, np.array([1, 2]), np.array([1, 2, 3]), np.zeros(3, int), np.ones(3, int))
    with pytest.raises(ValueError, match="2-D"):
        evaluate(np.zeros(3), np.array([1]), np.array([1, 2, 3]), np.zeros(1, int),
                 np.ones(3, int))


def test_error_bad_options():
    d = np.zeros((1, 1))
    args = (d, np.array([1]), np.array([1]), np.zeros(1, int), np.ones(1, int))
    with pytest.raises(ValueError, match="ap must be one of step, trapezoid"):
        evaluate(*args, ap="11point")
    with pytest.raises(ValueError, match="average must be"):
        evaluate(*args, average="mean")
