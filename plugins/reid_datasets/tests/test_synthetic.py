"""Tests of the embedded synthetic dataset (small parameters, cache in tmp_path)."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reid_datasets import synthetic
from reid_datasets.market1501 import read_market1501
from reid_datasets.synthetic import (
    JOINTS,
    VIEWS,
    Camera,
    Identity,
    Pose,
    read_synthetic,
    render_person,
    sample_identities,
)

from reidcore.errors import DatasetError

SMALL = dict(
    num_train_ids=3, num_test_ids=2, num_cameras=2, images_per_camera=2, height=64, width=32
)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """Every test gets its own empty $REIDCORE_CACHE."""
    root = tmp_path / "cache"
    monkeypatch.setenv(synthetic.CACHE_ENV, str(root))
    return root


def files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def folder_of(split) -> Path:
    return Path(split.train[0].path).parents[1]


def test_counts_layout_and_extras(cache):
    split = read_synthetic(**SMALL)
    assert split.name == "synthetic"
    assert (len(split.train), len(split.query), len(split.gallery)) == (12, 4, 4)
    assert split.train_pids == [1, 2, 3]
    assert {s.pid for s in split.query} == {s.pid for s in split.gallery} == {4, 5}
    assert {s.camid for s in split.query} == {s.camid for s in split.gallery} == {0, 1}
    folder = folder_of(split)
    assert folder.parent == cache and folder.name.startswith("synthetic-")
    assert Path(split.query[0].path).name == "0004_c1s1_000001_00.png"
    assert Path(split.gallery[0].path).name == "0004_c1s1_000002_00.png"
    for s in split.train + split.query + split.gallery:
        kp = s.extras["keypoints"]
        assert kp.shape == (len(JOINTS), 3) and kp.dtype == np.float32
        assert (kp[:, 0] >= 0).all() and (kp[:, 0] < 32).all()
        assert (kp[:, 1] >= 0).all() and (kp[:, 1] < 64).all()
        assert set(np.unique(kp[:, 2])) <= {0.0, 1.0}
        assert s.extras["view"] in VIEWS
        with Image.open(s.path) as img:
            assert img.size == (32, 64) and img.mode == "RGB"
    # the same folder is a valid Market-1501 folder
    market = read_market1501(folder)
    assert [(s.path, s.pid, s.camid) for s in market.gallery] == [
        (s.path, s.pid, s.camid) for s in split.gallery
    ]
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_string_parameters_from_a_command_line(cache):
    strings = {k: str(v) for k, v in SMALL.items()}
    assert read_synthetic(**strings) == read_synthetic(**SMALL)
    assert len(list(cache.iterdir())) == 1


def test_explicit_root_and_home_default(tmp_path, monkeypatch):
    split = read_synthetic(tmp_path / "mine", **SMALL)
    assert folder_of(split).parent == tmp_path / "mine"
    monkeypatch.delenv(synthetic.CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert synthetic.cache_root() == tmp_path / "home" / ".cache" / "reidcore"


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = read_synthetic(tmp_path / "a", seed=3, **SMALL)
    b = read_synthetic(tmp_path / "b", seed=3, **SMALL)
    c = read_synthetic(tmp_path / "c", seed=4, **SMALL)
    fa, fb, fc = files(folder_of(a)), files(folder_of(b)), files(folder_of(c))
    assert folder_of(a).name == folder_of(b).name != folder_of(c).name
    assert fa == fb
    for sa, sb in zip(a.train + a.gallery, b.train + b.gallery, strict=True):
        np.testing.assert_array_equal(sa.extras["keypoints"], sb.extras["keypoints"])
    assert fa.keys() == fc.keys()
    assert sum(fa[k] != fc[k] for k in fa if k.endswith(".png")) == 20


def test_cached_folder_is_indexed_not_regenerated(cache, monkeypatch):
    first = read_synthetic(**SMALL)
    stamp = os.stat(first.train[0].path).st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr(synthetic, "generate", fail)
    second = read_synthetic(**SMALL)
    assert second == first
    assert os.stat(second.train[0].path).st_mtime_ns == stamp
    with pytest.raises(AssertionError, match="generated again"):
        read_synthetic(**{**SMALL, "seed": 1})
    assert len(list(cache.iterdir())) == 1  # the failed generation left nothing behind


def test_incomplete_cache_is_reported(cache):
    split = read_synthetic(**SMALL)
    Path(split.gallery[-1].path).unlink()
    with pytest.raises(DatasetError, match=r"is missing.*delete .*synthetic-"):
        read_synthetic(**SMALL)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"num_cameras": 1}, "num_cameras must be >= 2"),
        ({"images_per_camera": 1}, "images_per_camera must be >= 2"),
        ({"num_test_ids": 0}, "num_test_ids must be >= 1"),
        ({"height": 2.5}, "height must be an int"),
        ({"num_cameras": "12"}, "num_cameras must be <= 9"),
        ({"num_train_ids": 9000, "num_test_ids": 1000}, "must be <= 9999"),
    ],
)
def test_bad_parameters(override, message):
    with pytest.raises(DatasetError, match=message):
        read_synthetic(**{**SMALL, **override})


def test_identities_are_distinct_but_share_colours():
    idents = sample_identities(np.random.default_rng(0), 150)
    assert len({i.key() for i in idents}) == 150
    shirts = Counter(i.shirt for i in idents)
    assert max(shirts.values()) >= 10  # many people wear the same shirt colour
    # look-alikes: pairs with the same shirt and trousers that differ elsewhere
    pairs = Counter((i.shirt, i.trousers) for i in idents)
    assert sum(n >= 2 for n in pairs.values()) >= 10


def clean_camera(height: int = 128, width: int = 64) -> Camera:
    """No lighting effects and a flat grey background."""
    return Camera(
        scene=np.full((height * 2, width * 6, 3), 128, np.uint8),
        scale=0.9,
        view_p=(1 / 3,) * 3,
        gain=1.0,
        cast=(1.0, 1.0, 1.0),
        tint=(0.0, 0.0, 0.0),
        gamma=1.0,
        haze=0.0,
        gradient=(0.0, 0.0),
        blur=0.0,
        lowres=1.0,
        noise=0.0,
    )


@pytest.mark.parametrize("view", VIEWS)
def test_keypoints_lie_on_the_drawn_figure(view):
    cam = clean_camera()
    on, total = 0, 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        ident = Identity.sample(rng)
        pose = replace(Pose.sample(rng), view=view)
        img, kp = render_person(ident, pose, cam, rng)
        arr = np.asarray(img).astype(int)
        assert arr.shape == (128, 64, 3) and kp.shape == (14, 3)
        for x, y, visible in kp:
            if visible:
                patch = arr[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2]
                on += bool((np.abs(patch - 128).sum(-1) > 6).any())
                total += 1
        r_sh, l_sh = kp[JOINTS.index("r_shoulder"), 0], kp[JOINTS.index("l_shoulder"), 0]
        if view == "front":  # the person's right side is on the image's left
            assert r_sh < l_sh
        elif view == "back":
            assert r_sh > l_sh
        else:  # narrow shoulders, one of them hidden behind the torso
            assert abs(r_sh - l_sh) < 3
            assert kp[[JOINTS.index("r_shoulder"), JOINTS.index("l_shoulder")], 2].sum() == 1
        assert kp[0, 1] < kp[1, 1] < kp[JOINTS.index("r_hip"), 1] < kp[JOINTS.index("r_ankle"), 1]
    assert on / total > 0.97  # (a keypoint may sit on a grey piece of clothing)


def _rank1(qf, qp, qc, gf, gp, gc) -> float:
    """Market-1501 rank-1: same-id same-camera gallery images are excluded."""
    d = ((qf[:, None] - gf[None]) ** 2).sum(-1)
    d[(qp[:, None] == gp[None]) & (qc[:, None] == gc[None])] = np.inf
    return float((gp[d.argmin(1)] == qp).mean())


def test_learnability_signals(cache):
    """Mean colour fails across cameras; colours at the keypoints, calibrated per camera
    on the training part (what a trained network can learn), do much better."""
    split = read_synthetic(
        num_train_ids=30, num_test_ids=30, num_cameras=3, images_per_camera=2, height=64, width=32
    )

    def arrays(samples):
        imgs = np.stack([np.asarray(Image.open(s.path), np.float32) for s in samples])
        kps = np.stack([s.extras["keypoints"] for s in samples])
        return imgs, kps, np.array([s.pid for s in samples]), np.array([s.camid for s in samples])

    def part_colours(imgs, kps):
        feats = []
        for img, kp in zip(imgs, kps, strict=True):
            f = []
            for a, b in ((1, 8), (1, 11), (8, 9), (11, 12), (9, 10), (12, 13)):
                x, y = ((kp[a, :2] + kp[b, :2]) / 2).astype(int)
                f.append(img[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2].reshape(-1, 3).mean(0))
            feats.append(np.concatenate(f))
        return np.array(feats)

    (ti, tk, _, tc), (qi, qk, qp, qc), (gi, gk, gp, gc) = map(
        arrays, (split.train, split.query, split.gallery)
    )
    mean_r1 = _rank1(qi.mean((1, 2)), qp, qc, gi.mean((1, 2)), gp, gc)
    ft, fq, fg = part_colours(ti, tk), part_colours(qi, qk), part_colours(gi, gk)
    stats = {c: (ft[tc == c].mean(0), ft[tc == c].std(0) + 1) for c in set(tc.tolist())}

    def norm(feats, cams):  # per-camera z-score, statistics from the training part
        return np.array([(f - stats[c][0]) / stats[c][1] for f, c in zip(feats, cams, strict=True)])

    part_r1 = _rank1(norm(fq, qc), qp, qc, norm(fg, gc), gp, gc)
    assert mean_r1 < 0.4, mean_r1
    assert part_r1 > max(0.5, 2 * mean_r1), (part_r1, mean_r1)
