"""Tracklet pooling (mean / max) and the MARS-style video evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from reidcore.evaluation import evaluate, pairwise_distances
from reidcore.evaluation.evaluate_embeddings import evaluate_video
from reidcore.evaluation.video import pool_tracklets


def test_mean_and_max_pooling_with_interleaved_frames():
    x = np.array([[1, 0], [3, 2], [10, 10], [5, -2], [0, 4]], dtype=np.float32)
    t = np.array(["b", "a", "c", "b", "a"])
    mean = pool_tracklets(x, t, pids=[2, 1, 3, 2, 1], camids=[0, 1, 1, 0, 1])
    np.testing.assert_array_equal(mean.tracklet_ids, ["a", "b", "c"])
    np.testing.assert_allclose(mean.embs, [[1.5, 3], [3, -1], [10, 10]])
    np.testing.assert_array_equal(mean.pids, [1, 2, 3])
    np.testing.assert_array_equal(mean.camids, [1, 0, 1])
    np.testing.assert_array_equal(mean.num_frames, [2, 2, 1])
    mx = pool_tracklets(x, t, method="max")
    np.testing.assert_allclose(mx.embs, [[3, 4], [5, 0], [10, 10]])
    assert mx.pids is None and mx.embs.dtype == np.float32


def test_pooling_errors():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="method"):
        pool_tracklets(x, [1, 1, 2], method="median")
    with pytest.raises(ValueError, match="tracklet_ids must have shape"):
        pool_tracklets(x, [1, 2])
    with pytest.raises(ValueError, match="tracklet 1 has frames of different pids"):
        pool_tracklets(x, [1, 1, 2], pids=[5, 6, 7])
    with pytest.raises(ValueError, match="frames, D"):
        pool_tracklets(np.zeros(3), [1, 1, 2])
    with pytest.raises(ValueError, match="no frames"):
        pool_tracklets(np.zeros((0, 2)), [])


def test_video_evaluation_equals_image_evaluation_of_pooled_features():
    rng = np.random.default_rng(0)
    n_ids, dim = 8, 6
    centres = rng.normal(size=(n_ids + 1, dim)) * 2

    def frames(n_tracklets, offset):
        pids = rng.integers(1, n_ids + 1, n_tracklets)
        cams = rng.integers(0, 3, n_tracklets)
        lengths = rng.integers(1, 6, n_tracklets)
        tid = np.repeat(np.arange(n_tracklets) + offset, lengths)
        f = centres[np.repeat(pids, lengths)] + rng.normal(size=(lengths.sum(), dim))
        perm = rng.permutation(len(tid))
        return f[perm], tid[perm], np.repeat(pids, lengths)[perm], np.repeat(cams, lengths)[perm]

    qf, qt, qp, qc = frames(12, 0)
    gf, gt, gp, gc = frames(40, 1000)
    for pooling in ("mean", "max"):
        r = evaluate_video(qf, qt, qp, qc, gf, gt, gp, gc, pooling=pooling, ap="trapezoid")
        q, g = pool_tracklets(qf, qt, qp, qc, pooling), pool_tracklets(gf, gt, gp, gc, pooling)
        expected = evaluate(pairwise_distances(q.embs, g.embs), q.pids, g.pids, q.camids,
                            g.camids, ap="trapezoid")
        assert r == expected and r.num_queries == 12
