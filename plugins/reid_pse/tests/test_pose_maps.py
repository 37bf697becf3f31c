"""Pose-map rendering, the paired train/test transforms, test-time flip, and PoseMapDataset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from reid_pse.dataset import PoseMapDataset
from reid_pse.keypoints import FLIP_PERMUTATION, NUM_JOINTS, KeypointsError
from reid_pse.pose_maps import (
    INPUT_CHANNELS,
    PoseTestTransform,
    PoseTrainTransform,
    default_sigma,
    flip_pose_input,
    render_pose_maps,
    scale_keypoints,
)

from reidcore.data import Sample
from reidcore.data.transforms import train_augment


def _peak(m: torch.Tensor) -> tuple[int, int]:
    """(row, col) of a map's maximum."""
    idx = int(torch.argmax(m))
    return idx // m.shape[-1], idx % m.shape[-1]


def _keypoints(h: int, w: int, seed: int = 0, margin: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kp = np.ones((NUM_JOINTS, 3), np.float32)
    kp[:, 0] = rng.integers(margin, w - margin, NUM_JOINTS)
    kp[:, 1] = rng.integers(margin, h - margin, NUM_JOINTS)
    return kp


def test_render_peaks_at_joints_and_missing_joints_are_zero():
    kp = _keypoints(32, 16)
    kp[3, 2] = 0.0  # missing
    kp[5, :2] = np.nan  # unknown position
    maps = render_pose_maps(kp, 32, 16, sigma=1.5)
    assert maps.shape == (14, 32, 16) and maps.dtype == torch.float32
    for j in range(14):
        if j in (3, 5):
            assert torch.count_nonzero(maps[j]) == 0
            continue
        assert _peak(maps[j]) == (int(kp[j, 1]), int(kp[j, 0]))
        assert maps[j].max() == pytest.approx(1.0)
    # a Gaussian of the given sigma: one sigma away the value is exp(-1/2)
    j = next(j for j in range(14) if j not in (3, 5) and kp[j, 0] + 2 < 16)
    x, y = int(kp[j, 0]), int(kp[j, 1])
    assert float(maps[j, y, x + 2]) == pytest.approx(math.exp(-4 / (2 * 1.5**2)), rel=1e-5)


def test_render_batch_equals_single_and_sub_pixel_joint():
    kps = np.stack([_keypoints(24, 12, seed=s) for s in range(5)])
    batch = render_pose_maps(kps, 24, 12, 2.0)
    assert batch.shape == (5, 14, 24, 12)
    for i in range(5):
        torch.testing.assert_close(batch[i], render_pose_maps(kps[i], 24, 12, 2.0))
    half = np.zeros((14, 3), np.float32)
    half[0] = [4.5, 6.0, 1.0]  # between columns 4 and 5: equal values there, below 1
    m = render_pose_maps(half, 12, 10, 1.0)[0]
    assert float(m[6, 4]) == pytest.approx(float(m[6, 5])) and float(m[6, 4]) < 1.0
    with pytest.raises(ValueError, match="sigma"):
        render_pose_maps(half, 12, 10, 0.0)
    with pytest.raises(ValueError, match=r"\(J, 3\)"):
        render_pose_maps(np.zeros((14, 4)), 12, 10, 1.0)


def test_default_sigma_from_deepercut_radius():
    assert default_sigma(128) == pytest.approx(128 * 17 / 512 / math.sqrt(2 * math.log(2)))
    assert default_sigma(128) == pytest.approx(3.61, abs=0.01)
    assert default_sigma(256) == pytest.approx(2 * default_sigma(128))


def test_scale_keypoints_uses_pixel_centres():
    kp = np.zeros((14, 3), np.float32)
    kp[0] = [20.5, 40.5, 1.0]  # centre of the 2x2 block rows 40-41, cols 20-21
    out = scale_keypoints(kp, (128, 64), 64, 32)
    assert out[0].tolist() == [10.0, 20.0, 1.0]


def test_resize_moves_keypoints_with_the_image():
    """A 2x2 white block at a joint of a 128x64 image lands on the map peak at 64x32."""
    img = torch.zeros((3, 128, 64), dtype=torch.uint8)
    img[:, 40:42, 20:22] = 255
    kp = np.zeros((14, 3), np.float32)
    kp[0] = [20.5, 40.5, 1.0]
    x = PoseTestTransform(64, 32, sigma=1.0)(img, kp)
    assert x.shape == (INPUT_CHANNELS, 64, 32)
    assert _peak(x[0]) == (20, 10) and _peak(x[3]) == (20, 10)
    assert float(x[3].max()) == pytest.approx(1.0)
    assert torch.count_nonzero(x[4:]) == 0


def _marker_image(h: int, w: int, right_wrist, left_wrist) -> torch.Tensor:
    """Black image; the right wrist red, a blue dot 2 px to its right, the left wrist green."""
    img = torch.zeros((3, h, w), dtype=torch.uint8)
    (rx, ry), (lx, ly) = right_wrist, left_wrist
    img[0, ry, rx] = 255
    img[2, ry, rx + 2] = 255
    img[1, ly, lx] = 255
    return img


def test_train_transform_maps_follow_crop_and_flip_with_left_right_swap():
    h, w, pad = 48, 24, 4
    kp = np.zeros((14, 3), np.float32)
    kp[4] = [8, 20, 1]  # right wrist (joint 4)
    kp[7] = [15, 30, 1]  # left wrist (joint 7)
    img = _marker_image(h, w, (8, 20), (15, 30))
    t = PoseTrainTransform(h, w, pad=pad, flip=True, sigma=1.0)
    seen_flip, seen_noflip, offsets = 0, 0, set()
    for seed in range(24):
        torch.manual_seed(seed)
        x = t(img, kp)
        assert x.shape == (3 + 14, h, w)
        red, green, blue = _peak(x[0]), _peak(x[1]), _peak(x[2])
        flipped = blue[1] < red[1]  # the blue dot was right of the red one
        offsets.add((red[0] - 20, red[1] - (w - 1 - 8 if flipped else 8)))
        maps = x[3:]
        # the person's right wrist (red marker) becomes the left wrist when mirrored
        red_joint, green_joint = (7, 4) if flipped else (4, 7)
        assert FLIP_PERMUTATION[4] == 7
        assert _peak(maps[red_joint]) == red and float(maps[red_joint].max()) == pytest.approx(1)
        assert _peak(maps[green_joint]) == green
        others = [j for j in range(14) if j not in (4, 7)]
        assert torch.count_nonzero(maps[others]) == 0
        seen_flip += flipped
        seen_noflip += not flipped
    assert seen_flip > 0 and seen_noflip > 0
    assert len(offsets) > 3 and all(abs(dy) <= pad and abs(dx) <= pad for dy, dx in offsets)


@pytest.mark.parametrize("erasing_p", [0.0, 0.5])
def test_train_transform_rgb_is_exactly_train_augment(erasing_p):
    img = torch.randint(0, 256, (3, 40, 20), dtype=torch.uint8)
    kp = _keypoints(40, 20)
    t = PoseTrainTransform(32, 16, pad=3, flip=True, erasing_p=erasing_p)
    ref = train_augment(32, 16, pad=3, flip=True, erasing_p=erasing_p)
    from torchvision.transforms.v2 import functional as F

    resized = F.resize(img, [32, 16], antialias=True)
    for seed in range(6):
        torch.manual_seed(seed)
        x = t(img, kp)
        torch.manual_seed(seed)
        torch.testing.assert_close(x[:3], ref(resized), rtol=0, atol=0)


def test_random_erasing_touches_rgb_only():
    img = torch.full((3, 32, 16), 128, dtype=torch.uint8)
    kp = _keypoints(32, 16)
    erase = PoseTrainTransform(32, 16, pad=2, erasing_p=1.0)
    keep = PoseTrainTransform(32, 16, pad=2, erasing_p=0.0)
    torch.manual_seed(3)
    a = erase(img, kp)
    torch.manual_seed(3)
    b = keep(img, kp)
    assert not torch.equal(a[:3], b[:3])  # something was erased ...
    torch.testing.assert_close(a[3:], b[3:], rtol=0, atol=0)  # ... but no map


def test_test_transform_and_flip_pose_input_agree_with_flipped_keypoints():
    h, w = 32, 16
    img = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
    kp = _keypoints(h, w, seed=4)
    kp[2, 2] = 0  # right shoulder missing: its map must move to channel 5 when flipped
    t = PoseTestTransform(h, w, sigma=1.2)
    x = t(img, kp)
    flipped_kp = kp[list(FLIP_PERMUTATION)].copy()
    flipped_kp[:, 0] = w - 1 - flipped_kp[:, 0]
    expected = t(img.flip(-1), flipped_kp)
    torch.testing.assert_close(flip_pose_input(x[None])[0], expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(flip_pose_input(flip_pose_input(x[None])), x[None])
    assert torch.count_nonzero(flip_pose_input(x[None])[0, 3 + 5]) == 0
    with pytest.raises(ValueError, match="17"):
        flip_pose_input(torch.zeros(2, 3, h, w))


def test_pose_map_dataset_cache_and_errors(tmp_path):
    from PIL import Image

    from reidcore.errors import ImageReadError

    samples = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        arr = np.random.default_rng(i).integers(0, 256, (40, 20, 3), dtype=np.uint8)
        Image.fromarray(arr).save(path)
        samples.append(Sample(str(path), i, 0, {"keypoints": _keypoints(40, 20, seed=i)}))
    t = PoseTrainTransform(32, 16, pad=2)
    plain = PoseMapDataset(samples, [0, 1, 2], 32, 16, t)
    cached = PoseMapDataset(samples, [0, 1, 2], 32, 16, t, cache=True)
    assert cached.sizes.tolist() == [[40, 20]] * 3
    for i in range(3):
        torch.manual_seed(i)
        x, label, index = plain[i]
        torch.manual_seed(i)
        y, _, _ = cached[i]
        assert x.shape == (17, 32, 16) and x.dtype == torch.float32
        assert (label, index) == (i, i)
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    test = PoseMapDataset(samples, None, 32, 16, PoseTestTransform(32, 16))
    assert test[1][1] == -1
    with pytest.raises(KeypointsError, match="0.png has no keypoints"):
        PoseMapDataset([Sample(samples[0].path, 0, 0)], None, 32, 16, t)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    bad = [Sample(str(broken), 0, 0, {"keypoints": _keypoints(40, 20)})]
    with pytest.raises(ImageReadError, match="broken.png"):
        PoseMapDataset(bad, None, 32, 16, t, cache=True)
    with pytest.raises(ImageReadError, match="broken.png"):
        PoseMapDataset(bad, None, 32, 16, t)[0]
