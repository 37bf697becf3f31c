"""P×K identity sampling (Hermans et al. 2017, Sec. 3: P identities × K images per batch)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


class PKSampler:
    """Infinite batch sampler: each batch holds ``batch_p`` identities × ``batch_k`` images.

    Identities are drawn without replacement within a batch; images of an identity
    without replacement when it has at least K, otherwise with replacement (so every
    identity fills its K slots). Batch ``t`` depends only on ``(seed, t)``, so a run
    resumed at iteration ``t`` sees exactly the batches an uninterrupted run would.

    Args:
        labels: training identity label per sample, length N (any ints).
        batch_p: identities per batch (P).
        batch_k: images per identity (K).
        seed: random seed.
        start_iteration: index of the first batch to yield.

    Yields:
        lists of ``batch_p * batch_k`` sample indices, grouped by identity.

    Raises:
        ValueError: fewer distinct identities than ``batch_p``, or P, K < 1.
    """

    def __init__(self, labels: Sequence[int], batch_p: int, batch_k: int, seed: int = 0,
                 start_iteration: int = 0):
        if batch_p < 1 or batch_k < 1:
            raise ValueError(f"batch_p and batch_k must be >= 1, got P={batch_p}, K={batch_k}")
        labels = np.asarray(labels)
        self.pids, inverse = np.unique(labels, return_inverse=True)
        if len(self.pids) < batch_p:
            raise ValueError(
                f"P×K sampling needs at least batch_p={batch_p} identities, the training set "
                f"has {len(self.pids)}; lower --batch-p"
            )
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse))
        self.index_of = np.split(order, bounds[:-1])  # per identity: its sample indices
        self.batch_p, self.batch_k, self.seed = batch_p, batch_k, seed
        self.iteration = start_iteration

    @property
    def batch_size(self) -> int:
        return self.batch_p * self.batch_k

    def batch(self, iteration: int) -> list[int]:
        """The indices of batch number ``iteration``."""
        rng = np.random.default_rng([self.seed, iteration])
        chosen = rng.choice(len(self.pids), size=self.batch_p, replace=False)
        out: list[int] = []
        for c in chosen:
            pool = self.index_of[c]
            replace = len(pool) < self.batch_k
            out.extend(int(i) for i in rng.choice(pool, size=self.batch_k, replace=replace))
        return out

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            yield self.batch(self.iteration)
            self.iteration += 1
