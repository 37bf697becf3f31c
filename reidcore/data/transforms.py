"""Train and test transforms on uint8 image tensors (torchvision.transforms.v2).

Training (TriNet, Hermans et al. 2017, Sec. 4.2; random erasing, Zhong et al. AAAI 2020):
resize to ``(height, width)`` → zero-pad by ``pad`` and random crop back → random
horizontal flip → float in [0, 1] → ImageNet normalisation → random erasing.
Testing: resize → float → normalise. All outputs are ``(3, height, width)`` float32.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize(height: int, width: int) -> v2.Transform:
    """Deterministic part done once per image (also what the in-memory cache stores)."""
    return v2.Resize((height, width), antialias=True)


def train_augment(height: int, width: int, pad: int = 10, flip: bool = True,
                  erasing_p: float = 0.0, *, erasing_scale: tuple[float, float] = (0.02, 0.33),
                  erasing_ratio: tuple[float, float] = (0.3, 3.3),
                  erasing_value: float | list[float] = 0.0) -> v2.Transform:
    """Random part of training, applied to an already resized uint8 ``(3, H, W)`` tensor:
    zero-pad ``pad`` and random crop back, horizontal flip, float in [0, 1], ImageNet
    normalisation, random erasing (Zhong et al., AAAI 2020) with probability ``erasing_p`` of a
    rectangle of ``erasing_scale`` of the area and ``erasing_ratio`` aspect ratio, filled with
    ``erasing_value`` (after normalisation)."""
    ops: list[v2.Transform] = []
    if pad > 0:
        ops += [v2.Pad(pad, fill=0), v2.RandomCrop((height, width))]
    if flip:
        ops.append(v2.RandomHorizontalFlip())
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if erasing_p > 0:
        ops.append(v2.RandomErasing(p=erasing_p, scale=erasing_scale, ratio=erasing_ratio,
                                    value=erasing_value))
    return v2.Compose(ops)


def to_normalized() -> v2.Transform:
    """uint8 ``(3, H, W)`` → normalised float32."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
