"""The strong baseline's training augmentation (Luo et al. 2019, Sec. 3.2; the authors' code).

resize to ``(height, width)`` → zero-pad 10 and random crop back → random horizontal flip
(p = 0.5) → float in [0, 1] → ImageNet normalisation → random erasing (Zhong et al., AAAI
2020) with probability ``erasing_p``: a rectangle of 2 %–40 % of the image area, aspect
ratio 0.3–3.33, filled (after normalisation, as in the authors' code) with the ImageNet mean
``(0.485, 0.456, 0.406)``. It differs from the core's
:func:`reidcore.data.transforms.train_augment` only in the erasing's largest area (0.4, not
0.33) and fill value.
"""

from __future__ import annotations

from torchvision.transforms import v2

from reidcore.data.transforms import IMAGENET_MEAN
from reidcore.data.transforms import train_augment as core_train_augment

ERASING_SCALE = (0.02, 0.4)
ERASING_RATIO = (0.3, 3.33)


def train_augment(height: int, width: int, pad: int = 10, flip: bool = True,
                  erasing_p: float = 0.5) -> v2.Transform:
    """uint8 ``(3, height, width)`` (already resized) → float32 ``(3, height, width)``.

    Raises:
        ValueError: ``erasing_p`` outside [0, 1] or ``pad < 0``.
    """
    if not 0.0 <= erasing_p <= 1.0:
        raise ValueError(f"erasing_p must be in [0, 1], got {erasing_p}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    return core_train_augment(height, width, pad, flip, erasing_p, erasing_scale=ERASING_SCALE,
                              erasing_ratio=ERASING_RATIO, erasing_value=list(IMAGENET_MEAN))
