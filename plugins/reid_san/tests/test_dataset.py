"""SAN's paired training Dataset: the texture target follows the image's flip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from reid_datasets import synthetic
from reid_san.dataset import TextureDataset
from reid_san.texture_layout import flip_texture
from reid_san.textures import read_synthetic_textures
from torch.utils.data import DataLoader

from reidcore.data.dataset import decode
from reidcore.data.records import Sample
from reidcore.data.transforms import to_normalized
from reidcore.errors import DatasetError

SMALL = dict(
    num_train_ids=3, num_test_ids=1, num_cameras=2, images_per_camera=2, height=64, width=32
)


@pytest.fixture()
def split(tmp_path, monkeypatch):
    monkeypatch.setenv(synthetic.CACHE_ENV, str(tmp_path / "cache"))
    return read_synthetic_textures(tmp_path / "cache", texture_size=64, **SMALL)


def test_items_are_normalised_images_and_textures(split):
    ds = TextureDataset(split.train, split.train_labels, 64, 32, 32, pad=0, flip=False)
    inputs, label, index = ds[3]
    assert (label, index) == (split.train_labels[3], 3)
    x, t = inputs["image"], inputs["texture"]
    assert x.shape == (3, 64, 32) and x.dtype == torch.float32
    assert t.shape == (3, 32, 32) and t.dtype == torch.float32  # 64-pixel files resized to 32
    assert 0.0 <= float(t.min()) and float(t.max()) <= 1.0 and float(t.max()) > 0.5
    s = split.train[3]
    torch.testing.assert_close(x, to_normalized()(decode(s.path, 64, 32)))
    torch.testing.assert_close(t, decode(s.extras["texture"], 32, 32).float() / 255)


def test_the_same_flip_moves_image_and_texture(split, tmp_path):
    # a random texture: the synthetic people's textures may be mirror-symmetric
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    s = Sample(split.train[0].path, 1, 0, {"texture": str(tmp_path / "noise.png")})
    ds = TextureDataset([s], None, 64, 32, 64, pad=0, flip=True)
    plain = to_normalized()(decode(s.path, 64, 32))
    tex = decode(s.extras["texture"], 64, 64).float() / 255
    assert not torch.equal(flip_texture(tex), tex)  # the test can tell the two apart
    seen = set()
    torch.manual_seed(0)
    for _ in range(24):
        inputs, label, _ = ds[0]
        flipped = torch.equal(inputs["image"], plain.flip(-1))
        assert flipped or torch.equal(inputs["image"], plain)
        assert torch.equal(inputs["texture"], flip_texture(tex) if flipped else tex)
        seen.add(flipped)
        assert label == -1
    assert seen == {True, False}


def test_crop_and_erasing_touch_only_the_image_and_cache_matches(split):
    kwargs = dict(pad=6, flip=True, erasing_p=1.0)
    ds = TextureDataset(split.train, split.train_labels, 64, 32, 32, **kwargs)
    cached = TextureDataset(split.train, split.train_labels, 64, 32, 32, cache=True, **kwargs)
    tex = decode(split.train[2].extras["texture"], 32, 32).float() / 255
    for _ in range(6):
        torch.manual_seed(7)
        a, _, _ = ds[2]
        torch.manual_seed(7)
        b, _, _ = cached[2]
        torch.testing.assert_close(a["image"], b["image"])
        torch.testing.assert_close(a["texture"], b["texture"])
        assert torch.equal(a["texture"], tex) or torch.equal(a["texture"], flip_texture(tex))
    batch, labels, index = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 3, 64, 32) and batch["texture"].shape == (4, 3, 32, 32)
    assert labels.tolist() == split.train_labels[:4] and index.tolist() == [0, 1, 2, 3]


def test_missing_texture_and_bad_size_are_reported(split):
    samples = list(split.train)
    samples[1] = Sample(samples[1].path, samples[1].pid, samples[1].camid, {})
    with pytest.raises(DatasetError, match=rf"1 of {len(samples)} .* {samples[1].path}"):
        TextureDataset(samples, None, 64, 32, 32)
    with pytest.raises(ValueError, match="multiple of 16"):
        TextureDataset(split.train, None, 64, 32, 30)
    assert np.isfinite(TextureDataset(split.train, None, 64, 32, 16)[0][0]["texture"].numpy()).all()
