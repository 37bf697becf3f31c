"""Per-sample seeded augmentation: the same random crop, flip and erasing whatever the workers.

The trainer's sampler (:class:`reidcore.data.samplers.SeededBatchSampler`) hands every image a
seed derived from ``(seed, iteration, position in the global batch)``; :class:`SeededDataset`
loads the image with torch's, Python's and numpy's global generators seeded from it and then
restores them. The augmentation of a batch therefore depends on nothing but the seed and the
iteration: ``--workers 0`` and ``--workers N`` give the same batches, a resumed run the same
batches as an uninterrupted one, and the main process's global RNG (dropout, a loss's own
sampling) is left exactly as it was.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


@contextlib.contextmanager
def seeded_rngs(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator, ``random`` and ``numpy.random`` from ``seed``; restore on exit.

    ``seed`` is an int in ``[0, 2**63)``. Only the CPU generator is touched (the CUDA ones are
    not: augmentation runs on the CPU), so ``torch.manual_seed``'s side effect of re-seeding
    every GPU is avoided.
    """
    torch_state = torch.get_rng_state()
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch.default_generator.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        random.setstate(py_state)
        np.random.set_state(np_state)


class SeededDataset(torch.utils.data.Dataset):
    """Wraps a training dataset: ``dataset[(index, seed)]`` is ``base[index]`` drawn under ``seed``.

    Args:
        base: a map-style dataset of ``(inputs, label, index)`` (see
            :meth:`reidcore.recipe.Recipe.train_dataset`).

    A plain ``int`` key is passed through unseeded (any RNG state), so the wrapper can stand
    in for ``base`` anywhere.
    """

    def __init__(self, base: Any):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        if isinstance(key, tuple):
            index, seed = key
            with seeded_rngs(seed):
                return self.base[index]
        return self.base[key]
