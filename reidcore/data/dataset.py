"""torch Datasets over :class:`~reidcore.data.records.Sample` lists."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as F

from reidcore.data.images import load_image
from reidcore.data.records import Sample


def decode(path: str, height: int, width: int) -> torch.Tensor:
    """Load ``path`` and resize it: uint8 ``(3, height, width)``.

    Raises:
        ImageReadError: the file cannot be decoded (named in the message).
    """
    img = F.pil_to_tensor(load_image(path))
    return F.resize(img, [height, width], antialias=True)


class ImageDataset(Dataset):
    """Samples as ``(image (3, H, W) float32, label int, index int)``.

    Args:
        samples: the records to read.
        labels: training label per sample (e.g. relabelled pids), or None for ``-1``.
        height, width: size images are resized to before ``augment``.
        augment: a transform from uint8 ``(3, H, W)`` to float32 ``(3, H, W)``.
        cache: decode every image once into memory (uint8, ``3*H*W`` bytes each) up
            front, in this process, so a corrupt file fails before training starts.
    """

    def __init__(self, samples: Sequence[Sample], labels: Sequence[int] | None, height: int,
                 width: int, augment: Callable[[torch.Tensor], torch.Tensor], cache: bool = False):
        self.samples = list(samples)
        self.labels = list(labels) if labels is not None else [-1] * len(self.samples)
        self.height, self.width, self.augment = height, width, augment
        self.cache: torch.Tensor | None = None
        if cache:
            self.cache = torch.empty((len(self.samples), 3, height, width), dtype=torch.uint8)
            for i, s in enumerate(self.samples):
                self.cache[i] = decode(s.path, height, width)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        if self.cache is not None:
            img = self.cache[index]
        else:
            img = decode(self.samples[index].path, self.height, self.width)
        return self.augment(img), self.labels[index], index
