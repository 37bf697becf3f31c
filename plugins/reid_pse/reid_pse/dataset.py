"""A torch Dataset of PSE inputs: images stacked with their pose maps.

The PSE counterpart of :class:`reidcore.data.dataset.ImageDataset`: the same
``(x, label, index)`` items and the same ``cache`` option, but ``x`` is
``(3 + J, H, W)`` float32 (normalised RGB then one pose map per joint; Sarfraz et al.,
CVPR 2018, Sec. 3.2) and the transform receives the keypoints with the image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as F

from reid_pse.keypoints import sample_keypoints
from reidcore.data.images import load_image
from reidcore.data.records import Sample

#: ``transform(image uint8 (3, h, w), keypoints (J, 3), source_size (H0, W0)) -> (3 + J, H, W)``
PoseTransform = Callable[[torch.Tensor, np.ndarray, tuple[int, int]], torch.Tensor]


def decode_original(path: str) -> torch.Tensor:
    """Load ``path`` at its own size: uint8 ``(3, H0, W0)``.

    Raises:
        ImageReadError: the file cannot be decoded (named in the message).
    """
    return F.pil_to_tensor(load_image(path))


class PoseMapDataset(Dataset):
    """Samples as ``(x (3 + J, H, W) float32, label int, index int)``.

    Args:
        samples: records whose ``extras["keypoints"]`` hold ``(J, 3)`` keypoints in pixels
            of the original image (see :func:`reid_pse.keypoints.attach_keypoints`).
        labels: training label per sample (e.g. relabelled pids), or None for ``-1``.
        height, width: input size; the images are resized to it (in ``transform``, or once
            up front with ``cache``).
        transform: a :class:`~reid_pse.pose_maps.PoseTrainTransform` or
            :class:`~reid_pse.pose_maps.PoseTestTransform` (any callable
            ``(image uint8 (3, h, w), keypoints (J, 3), source_size (H0, W0)) -> tensor``).
        cache: decode every image once into memory up front (uint8 resized to
            ``height x width``, ``3*H*W`` bytes each, plus its original size so the
            keypoints can be scaled), in this process, so a corrupt file fails before
            training starts.

    Raises:
        KeypointsError: a sample has no keypoints (checked up front; names the image).
        ImageReadError: an image cannot be decoded (names the file; at construction with
            ``cache``, else when the item is read).
    """

    def __init__(self, samples: Sequence[Sample], labels: Sequence[int] | None, height: int,
                 width: int, transform: PoseTransform, cache: bool = False):
        self.samples = list(samples)
        self.labels = list(labels) if labels is not None else [-1] * len(self.samples)
        if len(self.labels) != len(self.samples):
            raise ValueError(f"{len(self.labels)} labels for {len(self.samples)} samples")
        self.height, self.width, self.transform = int(height), int(width), transform
        self.keypoints = np.stack([sample_keypoints(s) for s in self.samples]) if self.samples \
            else np.zeros((0, 0, 3), np.float32)
        self.cache: torch.Tensor | None = None
        self.sizes: torch.Tensor | None = None
        if cache:
            self.cache = torch.empty((len(self.samples), 3, self.height, self.width),
                                     dtype=torch.uint8)
            self.sizes = torch.empty((len(self.samples), 2), dtype=torch.int64)
            for i, s in enumerate(self.samples):
                img = decode_original(s.path)
                self.sizes[i] = torch.tensor(img.shape[-2:])
                self.cache[i] = F.resize(img, [self.height, self.width], antialias=True)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        if self.cache is not None:
            img, size = self.cache[index], tuple(int(v) for v in self.sizes[index])
        else:
            img = decode_original(self.samples[index].path)
            size = tuple(img.shape[-2:])
        return self.transform(img, self.keypoints[index], size), self.labels[index], index
