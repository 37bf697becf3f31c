"""Embedding extraction with triplet-reid's test-time augmentation (flip, crops, aggregators)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from reidcore.data.dataset import ImageDataset
from reidcore.data.records import Sample
from reidcore.data.samplers import shard_range
from reidcore.data.transforms import to_normalized
from reidcore.engine import distributed
from reidcore.engine.device import autocast

CROPS = ("none", "center", "five")
AGGREGATORS = ("mean", "normalized_mean")
PRE_CROP_SCALE = 1.125  # triplet-reid: 288×144 pre-crop for a 256×128 input


def _mirror(x: torch.Tensor) -> torch.Tensor:
    return torch.flip(x, dims=[-1])


def views(batch: torch.Tensor, height: int, width: int, crop: str, flip: bool,
          flip_fn: Callable[[torch.Tensor], torch.Tensor] = _mirror) -> list[torch.Tensor]:
    """Test-time views of a batch ``(B, C, H', W')``: each ``(B, C, height, width)``.

    ``crop="none"`` expects ``H' = height``; ``center`` and ``five`` (4 corners + centre)
    crop ``height × width`` out of the larger pre-crop image. ``flip`` adds the mirror of
    each crop (``flip_fn``, default a horizontal flip of every channel; pose-map inputs
    also swap left/right joint channels), so ``five`` with flip gives 10 views.
    """
    _, _, ph, pw = batch.shape
    if crop == "none":
        crops = [batch]
    else:
        top, left = (ph - height) // 2, (pw - width) // 2
        crops = [batch[:, :, top:top + height, left:left + width]]
        if crop == "five":
            for y, x in ((0, 0), (0, pw - width), (ph - height, 0), (ph - height, pw - width)):
                crops.append(batch[:, :, y:y + height, x:x + width])
    if flip:
        crops = crops + [flip_fn(c) for c in crops]
    return crops


@torch.no_grad()
def embed_samples(model: torch.nn.Module, samples: Sequence[Sample], *, height: int, width: int,
                  batch_size: int = 128, crop: str = "none", flip: bool = False,
                  aggregator: str = "mean", device: torch.device | str = "cpu",
                  amp_dtype: torch.dtype | None = None, workers: int = 0,
                  progress=None, dataset_fn: Callable | None = None,
                  flip_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Embed every sample: ``(embs (N, D) float32, augmented (N, A, D) float32 | None)``.

    ``dataset_fn(samples, height, width)`` builds the test Dataset of ``(x float32 (C, h, w)
    normalised, label, index)`` (default: RGB images, see
    :meth:`reidcore.recipe.Recipe.embed_dataset`); ``flip_fn`` mirrors a batch for ``flip``.

    ``augmented`` holds each view's embedding when there is more than one view (A > 1),
    as triplet-reid's ``embed.py`` stores them. ``mean`` averages the views;
    ``normalized_mean`` L2-normalises the average (for normalised embeddings).

    Under DDP (``torchrun``, an initialised process group) and with at least one sample
    per rank, rank ``r`` embeds the contiguous part
    :func:`~reidcore.data.samplers.shard_range` ``(N, r, world)`` of the samples and the
    parts are all-gathered in rank order: every rank returns all N rows, in sample order.

    Raises:
        ValueError: unknown ``crop`` or ``aggregator``.
        ImageReadError: an image cannot be decoded (named).
    """
    if crop not in CROPS:
        raise ValueError(f"unknown crop augmentation {crop!r}; known: {', '.join(CROPS)}")
    if aggregator not in AGGREGATORS:
        raise ValueError(f"unknown aggregator {aggregator!r}; known: {', '.join(AGGREGATORS)}")
    device = torch.device(device)
    ph, pw = (height, width) if crop == "none" else (round(height * PRE_CROP_SCALE), round(width * PRE_CROP_SCALE))
    if dataset_fn is None:
        dataset = ImageDataset(samples, None, ph, pw, to_normalized())
    else:
        dataset = dataset_fn(samples, ph, pw)
    sizes = None
    world = distributed.world_size()
    if distributed.is_distributed() and world > 1 and len(dataset) >= world:
        bounds = [shard_range(len(dataset), r, world) for r in range(world)]
        sizes = [stop - start for start, stop in bounds]
        dataset = Subset(dataset, range(*bounds[distributed.rank()]))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.type == "cuda")
    model.eval()
    chunks: list[torch.Tensor] = []
    for batch, _labels, _idx in loader if progress is None else progress(loader):
        per_view = []
        for v in views(batch, height, width, crop, flip, flip_fn or _mirror):
            x = v.to(device, non_blocking=True)
            with autocast(device, amp_dtype):
                per_view.append(model(x)["embedding"].float().cpu())
        chunks.append(torch.stack(per_view, dim=1))  # (B, A, D)
    if not chunks:
        raise ValueError("no samples to embed")
    augmented = torch.cat(chunks)
    if sizes is not None:  # every rank's part, in sample order
        augmented = distributed.gather_rows(augmented, sizes)
    augmented = augmented.numpy().astype(np.float32)
    embs = augmented.mean(axis=1)
    if aggregator == "normalized_mean":
        embs = embs / np.maximum(np.linalg.norm(embs, axis=1, keepdims=True), 1e-12)
    return embs.astype(np.float32), (augmented if augmented.shape[1] > 1 else None)
