from __future__ import annotations

import pytest
import torch
from PIL import Image

from reidcore.data.dataset import ImageDataset
from reidcore.data.images import load_image
from reidcore.data.records import Sample, Split
from reidcore.data.transforms import train_augment
from reidcore.engine.embed import embed_samples, views
from reidcore.errors import ImageReadError


def test_split_relabels_train_pids():
    s = Split("x", [Sample("a", 7, 0), Sample("b", 3, 1), Sample("c", 7, 1)], [], [])
    assert s.train_pids == [3, 7] and s.train_labels == [1, 0, 1] and s.num_train_pids == 2
    assert "train 2 ids, 3 images, 2 cameras" in s.summary()


def test_load_image_errors_name_the_file(tmp_path):
    with pytest.raises(ImageReadError, match="not found: .*missing.jpg"):
        load_image(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0garbage")
    with pytest.raises(ImageReadError, match="bad.jpg"):
        load_image(bad)


def test_train_augment_shapes_and_normalisation():
    img = torch.full((3, 32, 16), 128, dtype=torch.uint8)
    out = train_augment(32, 16, pad=4, flip=True, erasing_p=1.0)(img)
    assert out.shape == (3, 32, 16) and out.dtype == torch.float32


def test_views_counts():
    b = torch.zeros((2, 3, 36, 18), dtype=torch.uint8)
    assert len(views(b, 32, 16, "five", True)) == 10
    assert all(v.shape == (2, 3, 32, 16) for v in views(b, 32, 16, "center", False))


def test_embed_flip_of_symmetric_model_and_aggregators(tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"{i}.png"
        Image.new("RGB", (16, 32), (i * 60, 10, 200)).save(p)
        paths.append(Sample(str(p), i, 0))

    class Mean(torch.nn.Module):
        def forward(self, x):
            return {"embedding": x.mean(dim=(2, 3)) + 1.0}

    embs, aug = embed_samples(Mean(), paths, height=32, width=16, flip=True, crop="five",
                              aggregator="normalized_mean")
    assert embs.shape == (3, 3) and aug.shape == (3, 10, 3)
    assert embs == pytest.approx(embs / ((embs ** 2).sum(1, keepdims=True) ** 0.5))
    plain, none = embed_samples(Mean(), paths, height=32, width=16)
    assert none is None and plain.shape == (3, 3)


def test_dataset_cache_equals_lazy(tmp_path):
    p = tmp_path / "a.png"
    Image.new("RGB", (20, 40), (1, 2, 3)).save(p)
    ident = lambda x: x  # noqa: E731
    a = ImageDataset([Sample(str(p), 1, 0)], [0], 32, 16, ident, cache=True)[0][0]
    b = ImageDataset([Sample(str(p), 1, 0)], [0], 32, 16, ident, cache=False)[0][0]
    assert torch.equal(a, b) and a.shape == (3, 32, 16)
