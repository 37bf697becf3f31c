"""pairwise_distances against scipy's cdist, chunking, devices and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from reidcore.evaluation import METRICS, pairwise_distances


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(37, 16)), rng.normal(size=(53, 16))


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_matches_scipy_cdist(data, metric):
    q, g = data
    d = pairwise_distances(q, g, metric=metric)
    assert d.shape == (37, 53)
    assert d.dtype == np.float32
    np.testing.assert_allclose(d, cdist(q, g, metric=metric), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_chunking_gives_same_result(data, metric):
    q, g = data
    full = pairwise_distances(q, g, metric=metric, chunk_size=4096)
    for chunk in (1, 5, 36, 37):
        np.testing.assert_allclose(
            pairwise_distances(q, g, metric=metric, chunk_size=chunk), full, rtol=1e-6, atol=1e-6
        )


def test_accepts_tensors_and_other_dtypes(data):
    q, g = data
    expected = pairwise_distances(q, g)
    from_tensors = pairwise_distances(torch.from_numpy(q), torch.from_numpy(g).float())
    np.testing.assert_allclose(from_tensors, expected, rtol=1e-6)
    from_float16 = pairwise_distances(q.astype(np.float16), g.astype(np.float16))
    assert from_float16.dtype == np.float32


def test_explicit_cpu_device(data):
    q, g = data
    np.testing.assert_array_equal(
        pairwise_distances(q, g, device="cpu"), pairwise_distances(q, g, device=None)
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("metric", sorted(METRICS))
def test_cuda_matches_scipy(data, metric):
    q, g = data
    d = pairwise_distances(q, g, metric=metric, device="cuda", chunk_size=10)
    np.testing.assert_allclose(d, cdist(q, g, metric=metric), rtol=1e-4, atol=1e-4)


def test_self_distance_is_near_zero_and_never_negative():
    x = np.random.default_rng(1).normal(size=(20, 8)) * 10
    for metric in ("euclidean", "sqeuclidean"):
        d = pairwise_distances(x, x, metric=metric)
        assert (d >= 0).all()
        assert np.abs(np.diag(d)).max() < 1e-2


def test_cosine_of_zero_vector_is_one():
    d = pairwise_distances(np.zeros((1, 3)), np.array([[1.0, 0, 0], [0, 0, 0]]), "cosine")
    np.testing.assert_array_equal(d, [[1.0, 1.0]])


def test_empty_inputs():
    g = np.ones((4, 3))
    assert pairwise_distances(np.ones((0, 3)), g).shape == (0, 4)
    for metric in METRICS:
        assert pairwise_distances(g, np.ones((0, 3)), metric).shape == (4, 0)


def test_unknown_metric_lists_known_ones(data):
    q, g = data
    with pytest.raises(ValueError, match="Unknown metric 'chebyshev'") as exc:
        pairwise_distances(q, g, metric="chebyshev")
    for name in METRICS:
        assert name in str(exc.value)


def test_dimension_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        pairwise_distances(np.ones((2, 3)), np.ones((4, 5)))


def test_not_a_matrix():
    with pytest.raises(ValueError, match="query must be a 2-D"):
        pairwise_distances(np.ones(3), np.ones((4, 3)))
    with pytest.raises(ValueError, match="gallery must be a 2-D"):
        pairwise_distances(np.ones((2, 3)), np.ones((4, 3, 1)))


def test_bad_chunk_size(data):
    with pytest.raises(ValueError, match="chunk_size"):
        pairwise_distances(*data, chunk_size=0)
