from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reidcore.data.samplers import PKSampler


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=80), st.integers(1, 5), st.integers(1, 5),
       st.integers(0, 1000))
def test_pk_batches_have_p_ids_times_k_images(labels, p, k, it):
    labels = np.array(labels)
    if len(set(labels.tolist())) < p:
        with pytest.raises(ValueError, match="lower --batch-p"):
            PKSampler(labels, p, k)
        return
    batch = PKSampler(labels, p, k, seed=3).batch(it)
    assert len(batch) == p * k
    counts = Counter(labels[batch].tolist())
    assert len(counts) == p and set(counts.values()) == {k}
    for pid in counts:  # without replacement when the identity has at least K images
        idx = [i for i in batch if labels[i] == pid]
        if (labels == pid).sum() >= k:
            assert len(set(idx)) == k


def test_deterministic_and_resumable():
    labels = np.repeat(np.arange(20), 5)
    a = PKSampler(labels, 4, 3, seed=1)
    first = [next(iter(a)) for _ in range(1)]
    it = iter(PKSampler(labels, 4, 3, seed=1))
    seq = [next(it) for _ in range(10)]
    assert seq[0] == first[0]
    resumed = iter(PKSampler(labels, 4, 3, seed=1, start_iteration=6))
    assert [next(resumed) for _ in range(4)] == seq[6:]
    assert PKSampler(labels, 4, 3, seed=2).batch(0) != seq[0]


def test_identities_are_covered_evenly():
    labels = np.repeat(np.arange(10), 4)
    s = PKSampler(labels, 5, 4, seed=0)
    seen = Counter(labels[i] for t in range(400) for i in s.batch(t)[::4])
    assert len(seen) == 10 and max(seen.values()) / min(seen.values()) < 1.3
