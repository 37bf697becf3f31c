"""SAN's training Dataset: person images paired with their texture targets.

SA-Dec regresses the person's texture image (Jin et al., AAAI 2020, Sec. 3.2). The image
gets reidcore's training augmentation (:func:`reidcore.data.transforms.train_augment`:
zero-pad + random crop, random horizontal flip, ImageNet normalisation, optional random
erasing); the texture is a body-surface map, so padding, cropping and erasing do not
touch it, but a horizontal flip does: the flipped image shows the mirrored person, whose
texture is :func:`reid_san.texture_layout.flip_texture` of the original (left and right
parts swapped, each mirrored). The same random draw flips both. (The authors' loader
flips the image only; keeping the pair consistent is our choice.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from reid_san.texture_layout import check_size, flip_texture
from reidcore.data.dataset import decode
from reidcore.data.records import Sample
from reidcore.data.transforms import train_augment
from reidcore.errors import DatasetError


class TextureDataset(Dataset):
    """Samples as ``({"image": x, "texture": t}, label, index)`` for SAN training.

    ``x`` is float32 ``(3, height, width)`` normalised like
    :func:`reidcore.data.transforms.train_augment`; ``t`` is float32
    ``(3, texture_size, texture_size)`` in ``[0, 1]`` (the texture file resized to
    ``texture_size`` if needed; the layout scales with the size). When ``flip`` draws a
    flip, ``x`` is mirrored and ``t`` is the mirrored person's texture.

    Args:
        samples: the records; each needs ``extras["texture"]``, a texture image path
            (see :func:`reid_san.textures.attach_textures`).
        labels: training label per sample, or None for ``-1``.
        height, width: network input size; images are resized to it first.
        texture_size: side of the texture target, a multiple of 16.
        pad: zero padding before the random crop (image only); 0 disables the crop.
        flip: random horizontal flip with probability 0.5 (image and texture together).
        erasing_p: random erasing probability (image only).
        cache: decode every image and texture once, up front, into memory (uint8).

    Raises:
        DatasetError: a sample has no ``extras["texture"]`` (the first one is named).
        ValueError: ``texture_size`` is not a multiple of 16.
        ImageReadError: an image or texture cannot be decoded (named; up front with
            ``cache``, else when the item is read).
    """

    def __init__(self, samples: Sequence[Sample], labels: Sequence[int] | None, height: int,
                 width: int, texture_size: int, pad: int = 10, flip: bool = True,
                 erasing_p: float = 0.0, cache: bool = False):
        self.samples = list(samples)
        self.labels = list(labels) if labels is not None else [-1] * len(self.samples)
        if len(self.labels) != len(self.samples):
            raise ValueError(f"{len(self.labels)} labels for {len(self.samples)} samples")
        missing = [s for s in self.samples if not s.extras.get("texture")]
        if missing:
            raise DatasetError(
                f"{len(missing)} of {len(self.samples)} training images have no texture "
                f"(extras['texture']); the first is {missing[0].path}. Attach a texture "
                "folder with reid_san.textures.attach_textures"
            )
        self.height, self.width = height, width
        self.texture_size = check_size(texture_size)
        self.flip = flip
        self.augment = train_augment(height, width, pad=pad, flip=False, erasing_p=0.0)
        self.erase = v2.RandomErasing(p=erasing_p, value=0) if erasing_p > 0 else None
        self.cache: tuple[torch.Tensor, torch.Tensor] | None = None
        if cache:
            n, t = len(self.samples), self.texture_size
            images = torch.empty((n, 3, height, width), dtype=torch.uint8)
            textures = torch.empty((n, 3, t, t), dtype=torch.uint8)
            for i in range(n):
                images[i], textures[i] = self._decode(i)
            self.cache = (images, textures)

    def _decode(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.samples[index]
        t = self.texture_size
        return decode(s.path, self.height, self.width), decode(s.extras["texture"], t, t)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        if self.cache is not None:
            img, tex = self.cache[0][index], self.cache[1][index]
        else:
            img, tex = self._decode(index)
        x = self.augment(img)  # pad + crop, float, normalise (no flip)
        if self.flip and bool(torch.rand(()) < 0.5):
            x, tex = x.flip(-1), flip_texture(tex)
        if self.erase is not None:
            x = self.erase(x)
        return {"image": x, "texture": tex.to(torch.float32) / 255.0}, self.labels[index], index
