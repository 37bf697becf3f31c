"""P×K identity sampling (Hermans et al. 2017, Sec. 3: P identities × K images per batch)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

_AUGMENT_STREAM = 0x5EED  # keeps the augmentation seeds apart from the sampler's own stream


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


def shard_range(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """The contiguous part ``[start, stop)`` of ``n`` items that ``rank`` of ``world_size`` owns.

    The first ``n % world_size`` ranks get one item more than the others, so the parts
    differ by at most one, follow each other in rank order and cover ``0..n`` exactly.

    Raises:
        ValueError: ``world_size < 1``, ``rank`` outside ``0..world_size-1`` or ``n < 0``.
    """
    if world_size < 1 or not 0 <= rank < world_size or n < 0:
        raise ValueError(f"shard_range needs n >= 0 and 0 <= rank < world_size, got n={n}, "
                         f"rank={rank}, world_size={world_size}")
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class DistributedPKSampler(PKSampler):
    """The P×K sampler of one rank of a data-parallel job (DDP through ``torchrun``).

    The *global* batch ``t`` is exactly :meth:`PKSampler.batch` ``(t)`` (P identities × K
    images, defined by ``(seed, t)`` alone, whatever the number of ranks). Rank ``r``
    receives the images of identities ``shard_range(P, r, world_size)`` of that batch:
    ranks hold disjoint identities, all K images of an identity stay on one rank, and the
    ranks' parts, concatenated in rank order, are the global batch. When P is not divisible
    by the number of ranks the first ``P % world_size`` ranks get one identity more
    (:attr:`local_sizes` lists each rank's images); the trainer weights each rank's loss by
    its share so that the gradient is still the mean over the global batch. A resumed run
    may use another number of ranks: it continues with the same global batches.

    Args:
        labels, batch_p, batch_k, seed, start_iteration: as :class:`PKSampler` (global P, K).
        rank: this process's rank, ``0 <= rank < world_size``.
        world_size: number of data-parallel processes.

    Yields:
        lists of this rank's sample indices (``local_sizes[rank]`` of them), grouped by
        identity.

    Raises:
        ValueError: ``batch_p < world_size`` (a rank would get no identity), a bad rank,
            or any :class:`PKSampler` error.
    """

    def __init__(self, labels: Sequence[int], batch_p: int, batch_k: int, seed: int = 0,
                 start_iteration: int = 0, rank: int = 0, world_size: int = 1):
        super().__init__(labels, batch_p, batch_k, seed=seed, start_iteration=start_iteration)
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1} (world size {world_size})")
        if batch_p < world_size:
            raise ValueError(f"--batch-p {batch_p} is smaller than the {world_size} processes: "
                             f"every rank needs at least one identity of the global P×K batch")
        self.rank, self.world_size = rank, world_size
        self.identity_ranges = [shard_range(batch_p, r, world_size) for r in range(world_size)]

    @property
    def local_sizes(self) -> list[int]:
        """Images per rank in every batch (sums to ``batch_p * batch_k``)."""
        return [(stop - start) * self.batch_k for start, stop in self.identity_ranges]

    def local_batch(self, iteration: int, rank: int | None = None) -> list[int]:
        """The indices ``rank`` (default: this sampler's) receives of global batch ``iteration``."""
        start, stop = self.identity_ranges[self.rank if rank is None else rank]
        return self.batch(iteration)[start * self.batch_k:stop * self.batch_k]

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            yield self.local_batch(self.iteration)
            self.iteration += 1


def batch_seeds(seed: int, iteration: int, size: int) -> list[int]:
    """The augmentation seeds of the ``size`` images of global P×K batch ``iteration``.

    Position ``i`` gets the ``i``-th 64-bit word of
    ``numpy.random.SeedSequence([seed, iteration, tag]).generate_state(size)``, shifted to
    63 bits: it depends on nothing else (not the number of DataLoader workers, ranks or
    earlier resumes), so a resumed or data-parallel run augments every image exactly as an
    uninterrupted single-process run does.
    """
    words = np.random.SeedSequence([seed, iteration, _AUGMENT_STREAM]).generate_state(
        size, np.uint64)
    return [int(w) for w in words >> np.uint64(1)]


class SeededBatchSampler:
    """A P×K sampler's batches as ``[(index, sample_seed), ...]`` for :class:`SeededDataset`.

    Wraps a :class:`PKSampler` (or :class:`DistributedPKSampler`: then ``position`` is the
    image's place in the *global* batch, so every rank draws the seeds a single process
    would). Iteration starts at the wrapped sampler's ``iteration`` and advances it.

    Attributes:
        sampler: the wrapped sampler.
        local_sizes: the wrapped sampler's ``local_sizes`` (DDP), else ``[batch_size]``.

    Yields:
        lists of ``(sample index, augmentation seed)`` pairs (``int``, ``int``).
    """

    def __init__(self, sampler: PKSampler):
        self.sampler = sampler

    @property
    def local_sizes(self) -> list[int]:
        return list(getattr(self.sampler, "local_sizes", [self.sampler.batch_size]))

    def seeded_batch(self, iteration: int) -> list[tuple[int, int]]:
        """Batch ``iteration`` (this rank's part under DDP) with each image's seed."""
        s = self.sampler
        if isinstance(s, DistributedPKSampler):
            offset = s.identity_ranges[s.rank][0] * s.batch_k
            indices = s.local_batch(iteration)
        else:
            offset, indices = 0, s.batch(iteration)
        seeds = batch_seeds(s.seed, iteration, s.batch_size)[offset:offset + len(indices)]
        return list(zip(indices, seeds, strict=True))

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        while True:
            yield self.seeded_batch(self.sampler.iteration)
            self.sampler.iteration += 1
