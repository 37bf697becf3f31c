"""The strong baseline's training augmentation (pad + crop, flip, random erasing)."""

from __future__ import annotations

import pytest
import torch
from reid_bot.augment import train_augment

from reidcore.data.transforms import IMAGENET_MEAN


def test_shape_dtype_and_erasing_fill():
    torch.manual_seed(0)
    img = torch.full((3, 32, 16), 255, dtype=torch.uint8)  # white: normalised values > 2
    out = train_augment(32, 16, pad=0, flip=False, erasing_p=1.0)(img)
    assert out.shape == (3, 32, 16) and out.dtype == torch.float32
    erased = out[0] == IMAGENET_MEAN[0]
    assert 0.02 * 32 * 16 <= int(erased.sum()) <= 0.4 * 32 * 16
    for c in range(3):
        assert torch.allclose(out[c][erased], torch.tensor(IMAGENET_MEAN[c]))


def test_no_erasing_keeps_every_pixel_and_pad_crops_back():
    img = torch.randint(0, 256, (3, 32, 16), dtype=torch.uint8)
    out = train_augment(32, 16, pad=10, flip=True, erasing_p=0.0)(img)
    assert out.shape == (3, 32, 16)


def test_bad_values():
    with pytest.raises(ValueError, match="erasing_p"):
        train_augment(32, 16, erasing_p=1.5)
    with pytest.raises(ValueError, match="pad"):
        train_augment(32, 16, pad=-1)
