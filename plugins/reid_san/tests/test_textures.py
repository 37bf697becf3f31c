"""Texture sources of SAN: layout, synthetic true textures, folders, PIT, keypoint warps."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from reid_datasets import synthetic
from reid_datasets.synthetic import (
    SHIRTS,
    Camera,
    Identity,
    Pose,
    identity_texture,
    read_synthetic,
    render_person,
    sample_identities,
)
from reid_san.texture_layout import (
    FLIP_PARTNER,
    PART_NAMES,
    PARTS,
    check_size,
    flip_index,
    flip_texture,
    part_boxes,
    part_label_map,
)
from reid_san.textures import (
    attach_textures,
    flip_keypoints,
    part_quads,
    read_keypoints_csv,
    read_pit,
    split_with_textures,
    texture_folder,
    texture_from_keypoints,
    write_keypoint_textures,
)

from reidcore.data import Sample, Split
from reidcore.errors import DatasetError
from reidcore.registry import load_dataset

SMALL = dict(
    num_train_ids=4, num_test_ids=2, num_cameras=2, images_per_camera=2, height=64, width=32
)
MARKET = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "market1501-holdout"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(synthetic.CACHE_ENV, str(root))
    return root


def part(tex: np.ndarray, name: str) -> np.ndarray:
    x0, y0, x1, y1 = part_boxes(tex.shape[0])[name]
    return tex[y0:y1, x0:x1]


# ----------------------------------------------------------------------------- layout


def test_layout_tiles_the_grid_and_partners_match():
    labels = part_label_map(64)
    assert labels.min() == 0  # no unused pixel
    areas = np.bincount(labels.ravel(), minlength=len(PART_NAMES))
    assert areas.sum() == 64 * 64
    for i, name in enumerate(PART_NAMES):
        x, y, w, h = PARTS[name]
        assert areas[i] == w * h * 16  # 4 x 4 pixels per grid unit at 64
        assert PARTS[FLIP_PARTNER[name]][2:] == (w, h)
        assert FLIP_PARTNER[FLIP_PARTNER[name]] == name
    assert FLIP_PARTNER["r_upper_arm"] == "l_upper_arm"
    assert FLIP_PARTNER["torso_back"] == "torso_back"
    for bad in (0, 8, 60, 64.0, True):
        with pytest.raises(ValueError, match="texture size"):
            check_size(bad)


def test_flip_texture_swaps_and_mirrors_parts():
    rng = np.random.default_rng(0)
    tex = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    flipped = flip_texture(tex)
    np.testing.assert_array_equal(flip_texture(flipped), tex)  # flip twice = identity
    np.testing.assert_array_equal(part(flipped, "l_lower_leg"), part(tex, "r_lower_leg")[:, ::-1])
    np.testing.assert_array_equal(part(flipped, "r_upper_arm"), part(tex, "l_upper_arm")[:, ::-1])
    np.testing.assert_array_equal(part(flipped, "torso_front"), part(tex, "torso_front")[:, ::-1])
    np.testing.assert_array_equal(part(flipped, "head_back"), part(tex, "head_back")[:, ::-1])
    assert sorted(flip_index(32)) == list(range(32 * 32))  # a permutation

    torch = pytest.importorskip("torch")
    batch = torch.from_numpy(np.stack([tex, flipped])).permute(0, 3, 1, 2)  # (2, 3, T, T)
    out = flip_texture(batch).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(out[0], flipped)
    np.testing.assert_array_equal(out[1], tex)
    with pytest.raises(ValueError, match=r"\(T, T\)"):
        flip_texture(np.zeros((32, 16, 3)))


# ----------------------------------------------------------------------------- synthetic


def test_synthetic_true_textures(cache):
    split = read_synthetic(cache, **SMALL, textures=64)
    plain = read_synthetic(cache, **SMALL)
    # opt-in: same folder (hash), same images and keypoints, no texture extras without it
    assert [s.path for s in plain.train] == [s.path for s in split.train]
    assert "texture" not in plain.train[0].extras
    folder = Path(split.train[0].path).parents[1]
    assert (folder / "texture_synthetic_64").is_dir()
    idents = sample_identities(np.random.default_rng([0, 1]), 6)
    by_pid: dict[int, bytes] = {}
    for s in (*split.train, *split.query, *split.gallery):
        path = Path(s.extras["texture"])
        assert path.parent.name == "texture_synthetic_64" and path.stem == Path(s.path).stem
        tex = np.asarray(Image.open(path))
        assert tex.shape == (64, 64, 3) and tex.dtype == np.uint8
        ident = idents[s.pid - 1]
        torso = part(tex, "torso_front").reshape(-1, 3)
        share = (np.abs(torso.astype(int) - ident.shirt).max(1) <= 2).mean()
        assert share > (0.99 if ident.pattern == "plain" else 0.25), (s.pid, ident.pattern)
        top_of_sleeve = part(tex, "r_upper_arm")[:4].reshape(-1, 3)
        assert (top_of_sleeve == ident.shirt).all()
        top_of_leg = part(tex, "l_upper_leg")[:4].reshape(-1, 3)
        assert (top_of_leg == ident.trousers).all()
        if not ident.shorts:
            assert (part(tex, "r_lower_leg") == ident.trousers).all()
        by_pid.setdefault(s.pid, path.read_bytes())
        assert path.read_bytes() == by_pid[s.pid]  # same identity -> same texture
    # identities differing in a surface attribute have different textures (siblings that
    # differ only in their bag or build may share one: bags are not body surface)
    surface = ("shirt", "pattern", "long_sleeves", "trousers", "shorts", "skin", "hair")
    for a in by_pid:
        for b in by_pid:
            same = all(getattr(idents[a - 1], k) == getattr(idents[b - 1], k) for k in surface)
            assert (by_pid[a] == by_pid[b]) == same or (same and by_pid[a] != by_pid[b])
    assert len(set(by_pid.values())) >= 2
    # generating the textures left the images and keypoints as they were
    again = read_synthetic(cache.parent / "other", **SMALL)
    for a, b in zip(again.train, split.train, strict=True):
        assert Path(a.path).read_bytes() == Path(b.path).read_bytes()
        np.testing.assert_array_equal(a.extras["keypoints"], b.extras["keypoints"])
    with pytest.raises(DatasetError, match="multiple of 16"):
        read_synthetic(cache, **SMALL, textures=40)


def test_registered_synthetic_textures(cache):
    split = load_dataset("synthetic-textures", cache, texture_size="32", **SMALL)
    assert split.name == "synthetic-textures"
    assert all(Path(s.extras["texture"]).is_file() for s in split.train)
    assert Image.open(split.train[0].extras["texture"]).size == (32, 32)


def test_true_texture_of_a_symmetric_person_is_flip_invariant():
    base = Identity.sample(np.random.default_rng(1))
    for pattern in ("plain", "stripes"):
        ident = Identity(**{**base.__dict__, "pattern": pattern})
        tex = identity_texture(ident, 64)
        np.testing.assert_array_equal(flip_texture(tex), tex)
    checks = identity_texture(Identity(**{**base.__dict__, "pattern": "checks"}), 64)
    assert not np.array_equal(flip_texture(checks), checks)  # checks are not mirror-symmetric


# ----------------------------------------------------------------------------- texture folders


def _market_images(folder: Path, names: list[str]) -> list[Sample]:
    folder.mkdir(parents=True)
    out = []
    for name in names:
        Image.new("RGB", (16, 32), (90, 90, 90)).save(folder / name)
        out.append(Sample(str(folder / name), int(name[:4]), 0, {"view": "front"}))
    return out


def test_attach_textures_from_a_folder(tmp_path):
    samples = _market_images(
        tmp_path / "bounding_box_train", ["0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg"]
    )
    tex_dir = texture_folder(tmp_path, "market1501")
    assert tex_dir == tmp_path / "texture_market1501"
    tex_dir.mkdir()
    Image.new("RGB", (16, 16)).save(tex_dir / "0002_c1s1_000451_03.png")  # stem + .png
    Image.new("RGB", (16, 16)).save(tex_dir / "0002_c2s1_000301_01.jpg")  # authors' naming
    out = attach_textures(samples, tex_dir)
    assert [Path(s.extras["texture"]).name for s in out] == [
        "0002_c1s1_000451_03.png",
        "0002_c2s1_000301_01.jpg",
    ]
    assert out[0].extras["view"] == "front" and out[0].path == samples[0].path
    split = split_with_textures(Split("m", samples, samples[:1], samples[1:]), tex_dir)
    assert "texture" in split.train[1].extras and "texture" not in split.query[0].extras

    (tex_dir / "0002_c2s1_000301_01.jpg").unlink()
    with pytest.raises(DatasetError, match=r"1 of 2 images have no texture .*0002_c2s1_000301_01"):
        attach_textures(samples, tex_dir)
    with pytest.raises(DatasetError, match="texture_duke does not exist"):
        attach_textures(samples, tmp_path / "texture_duke")


# ----------------------------------------------------------------------------- PIT


def test_pit_folders_and_csv(tmp_path):
    root = tmp_path / "pit"
    (root / "images").mkdir(parents=True)
    (root / "textures").mkdir()
    for stem in ("a", "b", "c"):
        Image.new("RGB", (16, 32)).save(root / "images" / f"{stem}.jpg")
        Image.new("RGB", (16, 16)).save(root / "textures" / f"{stem}.png")
    split = load_dataset("pit", root)
    assert split.name == "pit" and (len(split.query), len(split.gallery)) == (0, 0)
    assert [s.pid for s in split.train] == [1, 2, 3]
    assert [Path(s.extras["texture"]).name for s in split.train] == ["a.png", "b.png", "c.png"]

    (root / "textures" / "b.png").unlink()
    with pytest.raises(DatasetError, match=r"images/b\.jpg has no texture"):
        read_pit(root)

    # a pair list: images sharing a texture share an identity
    with open(root / "pairs.csv", "w", newline="") as f:
        csv.writer(f).writerows(
            [["image", "texture"], ["images/a.jpg", "textures/a.png"],
             ["images/b.jpg", "textures/c.png"], ["images/c.jpg", "textures/c.png"]]
        )
    split = read_pit(root)
    assert [s.pid for s in split.train] == [1, 2, 2]
    (root / "pairs2.csv").write_text("image,texture,pid\nimages/a.jpg,textures/nope.png,7\n")
    with pytest.raises(DatasetError, match=r"pairs2\.csv:2: texture .*nope\.png does not exist"):
        read_pit(root, pairs="pairs2.csv")
    with pytest.raises(DatasetError, match="needs a data folder"):
        read_pit(None)


# ----------------------------------------------------------------------------- keypoint warps

# A front-view stick person in a 128 x 64 image (0-based pixel centres), x grows to the right.
FRONT = np.array(
    [[32, 8], [32, 24], [22, 28], [18, 48], [16, 66], [42, 28], [46, 48], [48, 66],
     [26, 66], [25, 94], [25, 120], [38, 66], [39, 94], [39, 120]], np.float32,
)


def _kp(xy: np.ndarray, hidden=()) -> np.ndarray:
    kp = np.concatenate([xy, np.ones((14, 1), np.float32)], axis=1)
    kp[list(hidden), 2] = 0
    return kp


def _marked_image() -> np.ndarray:
    img = Image.new("RGB", (64, 128), (120, 120, 120))
    draw = ImageDraw.Draw(img)
    draw.rectangle([28, 34, 36, 60], fill=(230, 20, 20))  # a red marker on the torso
    draw.rectangle([44, 50, 50, 64], fill=(20, 20, 230))  # blue on the left forearm
    return np.asarray(img)


def test_warp_puts_the_torso_marker_into_the_torso_and_leaves_missing_parts_black():
    img = _marked_image()
    tex = texture_from_keypoints(img, _kp(FRONT, hidden=(6, 7)), 64)  # left elbow/wrist missing
    torso = part(tex, "torso_front").reshape(-1, 3).astype(int)
    red = (torso[:, 0] > 180) & (torso[:, 1] < 70) & (torso[:, 2] < 70)
    assert red.mean() > 0.25  # the marker covers about a third of the torso quad
    assert tuple(part(tex, "torso_front")[12, 8]) == (230, 20, 20)  # the rectangle's centre
    assert (np.abs(torso - 120).max(1) <= 3).mean() > 0.1  # and the shirt's grey around it
    for name in ("torso_back", "head_back", "l_upper_arm", "l_lower_arm"):
        assert not part(tex, name).any(), name  # not seen / missing joint: black
    for name in ("r_upper_arm", "r_lower_arm", "l_upper_leg", "head_front"):
        assert part(tex, name).mean() > 50, name
    # red appears nowhere outside the torso (the marker lies inside the torso quad)
    others = np.concatenate([part(tex, n).reshape(-1, 3) for n in PART_NAMES if "torso" not in n])
    assert not ((others[:, 0] > 180) & (others[:, 1] < 70)).any()

    # with the left elbow and wrist present, the blue forearm marker lands in l_lower_arm
    tex = texture_from_keypoints(img, _kp(FRONT), 64)
    forearm = part(tex, "l_lower_arm").reshape(-1, 3).astype(int)
    assert ((forearm[:, 2] > 180) & (forearm[:, 0] < 70)).mean() > 0.2

    # the same person seen from behind: left and right swap in the image
    back = FRONT.copy()
    back[[2, 3, 4, 8, 9, 10]], back[[5, 6, 7, 11, 12, 13]] = FRONT[[5, 6, 7, 11, 12, 13]], FRONT[
        [2, 3, 4, 8, 9, 10]
    ]
    tex = texture_from_keypoints(img, _kp(back), 64)
    assert not part(tex, "torso_front").any() and part(tex, "torso_back")[..., 0].mean() > 150
    assert set(part_quads(_kp(back))) >= {"torso_back", "head_back", "l_lower_arm"}
    assert not texture_from_keypoints(img, _kp(FRONT, hidden=range(14)), 64).any()
    with pytest.raises(ValueError, match=r"\(14, 3\)"):
        texture_from_keypoints(img, FRONT, 64)


def test_warp_of_the_mirrored_image_is_the_flipped_texture():
    img = _marked_image()
    kp = _kp(FRONT + np.random.default_rng(0).normal(0, 2, FRONT.shape).astype(np.float32))
    tex = texture_from_keypoints(img, kp, 64)
    mirror = np.ascontiguousarray(img[:, ::-1])
    mirrored = texture_from_keypoints(mirror, flip_keypoints(kp, 64), 64)
    assert np.abs(mirrored.astype(int) - flip_texture(tex)).mean() < 0.5


def _plain_camera(height: int, width: int) -> Camera:
    scene = np.full((height * 2, width * 6, 3), 60, np.uint8)
    return Camera(scene, 0.9, (1.0, 0.0, 0.0), 1.0, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), 1.0,
                  0.0, (0.0, 0.0), 0.0, 1.0, 0.0)


def test_warp_of_a_synthetic_person_matches_its_true_texture():
    """The warp of a rendered front view and the identity's true texture agree (up to
    the per-image brightness jitter), and mirroring the rendered image flips the warp."""
    rng = np.random.default_rng(5)
    ident = Identity(**{**Identity.sample(rng).__dict__, "pattern": "plain", "shirt": SHIRTS[0],
                        "trousers": (50, 70, 120), "shorts": False, "long_sleeves": True,
                        "bag": "none"})
    pose = Pose("front", 1, 0.0, 0.2, 0.2, 0.15, 0.2)
    img, kp = render_person(ident, pose, _plain_camera(128, 64), np.random.default_rng(2), 128, 64)
    img = np.asarray(img)
    kp = kp.copy()
    kp[:, :2] -= 0.5  # the renderer's continuous coordinates -> pixel centres
    warped = texture_from_keypoints(img, kp, 64, head_point="centre")
    truth = identity_texture(ident, 64)
    for name in ("torso_front", "r_upper_leg", "l_lower_arm"):
        got = np.median(part(warped, name).reshape(-1, 3), axis=0)
        want = np.median(part(truth, name).reshape(-1, 3), axis=0)
        assert np.abs(got - want).max() < 40, (name, got, want)
    mirrored = texture_from_keypoints(
        np.ascontiguousarray(img[:, ::-1]), flip_keypoints(kp, 64), 64, head_point="centre"
    )
    assert np.abs(mirrored.astype(int) - flip_texture(warped)).mean() < 0.5


def test_write_keypoint_textures_and_read_them_back(tmp_path):
    samples = []
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        path = tmp_path / "imgs" / f"000{i}_c1s1_00000{i}_00.jpg"
        Image.fromarray(_marked_image()).save(path)
        samples.append(Sample(str(path), i, 0, {"keypoints": _kp(FRONT)}))
    out = tmp_path / "texture_toy"
    assert write_keypoint_textures(samples, out, 32) == 3
    assert write_keypoint_textures(samples, out, 32) == 0  # resumable: existing ones kept
    names = [f"000{i}_c1s1_00000{i}_00.png" for i in range(3)]
    assert sorted(p.name for p in out.iterdir()) == names
    attached = attach_textures(samples, out)
    tex = np.asarray(Image.open(attached[0].extras["texture"]))
    assert tex.shape == (32, 32, 3) and part(tex, "torso_front")[..., 0].mean() > 150
    with pytest.raises(DatasetError, match="has no keypoints in the keypoint table"):
        write_keypoint_textures(samples, out, 32, keypoints={})


@pytest.mark.skipif(not (MARKET / "keypoints.csv").is_file(), reason="no Market-1501 holdout")
def test_real_market_keypoints(tmp_path):
    table = read_keypoints_csv(MARKET / "keypoints.csv")
    assert len(table) == 12936
    name = "0002_c1s1_000451_03.jpg"
    np.testing.assert_array_equal(table[name][0], [32, 1, 1])  # 1-based (33, 2) -> 0-based
    train = MARKET / "bounding_box_train"
    names = [n for n in sorted(table) if (train / n).is_file()][:4]
    samples = [Sample(str(train / n), int(n[:4]), 0) for n in names]
    assert write_keypoint_textures(samples, tmp_path / "tex", 64, keypoints=table) == len(samples)
    for s in attach_textures(samples, tmp_path / "tex"):
        tex = np.asarray(Image.open(s.extras["texture"]))
        filled = [n for n in PART_NAMES if part(tex, n).any()]
        assert len(filled) == 10  # 8 limbs, a torso and a head: front or back
