"""The shipped ``keypointrcnn`` estimator: COCO-to-14 mapping, flip consistency, detections,
weights errors, and the plumbing with randomly initialised weights (nothing is downloaded)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from reid_pse import keypointrcnn as R
from reid_pse.keypoints import FLIP_PERMUTATION, JOINTS

from reidcore.errors import WeightsError
from reidcore.testing import write_tiny_market

#: keypointrcnn options that keep a random-weights forward pass small on a CPU
TINY = {"weights": "random", "min_size": 64, "max_size": 128, "proposals": 20, "progress": False}


def _coco(rng, conf_low=0.0) -> np.ndarray:
    kp = np.zeros((17, 3))
    kp[:, 0] = rng.uniform(0, 63, 17)
    kp[:, 1] = rng.uniform(0, 127, 17)
    kp[:, 2] = rng.uniform(conf_low, 1, 17)
    return kp


def test_coco_to_joints_by_hand():
    coco = np.zeros((17, 3))
    for i in range(17):
        coco[i] = [10 + i, 100 + i, 0.9]
    out = R.coco_to_joints(coco)
    assert out.shape == (14, 3) and out.dtype == np.float32
    expected = {"r_shoulder": 6, "r_elbow": 8, "r_wrist": 10, "l_shoulder": 5, "l_elbow": 7,
                "l_wrist": 9, "r_hip": 12, "r_knee": 14, "r_ankle": 16, "l_hip": 11,
                "l_knee": 13, "l_ankle": 15}
    for name, c in expected.items():
        np.testing.assert_allclose(out[JOINTS.index(name)], [10 + c, 100 + c, 0.9], rtol=1e-6)
    # neck: midpoint of the shoulders (5, 6)
    np.testing.assert_allclose(out[1], [15.5, 105.5, 0.9], rtol=1e-6)
    # head: face centre f = mean of 0..4 = (12, 102); f + 0.5 (f - neck) = (10.25, 100.25)
    np.testing.assert_allclose(out[0], [10.25, 100.25, 0.9], rtol=1e-6)


def test_coco_to_joints_confidences_and_missing_joints():
    coco = np.zeros((17, 3))
    coco[:, :2] = [[20, 30]] * 17
    coco[:, 2] = 0.8
    coco[0] = [10, 10, 0.6]   # nose
    coco[3] = [14, 10, 0.1]   # left ear below min_confidence (0.2): not used for the head
    coco[1:3, 2] = 0.0        # eyes missing
    coco[4, 2] = 0.0          # right ear missing
    coco[5] = [30, 40, 0.5]   # left shoulder
    coco[6] = [10, 40, 0.7]   # right shoulder
    coco[9, 2] = 0.19         # left wrist below the threshold
    out = R.coco_to_joints(coco)
    np.testing.assert_allclose(out[1], [20, 40, 0.5], rtol=1e-6)  # neck: min confidence
    # head from the nose alone: (10, 10) + 0.5 ((10, 10) - (20, 40)) = (5, -5)
    np.testing.assert_allclose(out[0], [5, -5, 0.6], rtol=1e-6)
    assert (out[JOINTS.index("l_wrist")] == 0).all()  # missing: (0, 0, 0)
    # one shoulder missing: no neck; the head is the face centre itself
    coco[6, 2] = 0.0
    out = R.coco_to_joints(coco)
    assert (out[1] == 0).all() and (out[JOINTS.index("r_shoulder")] == 0).all()
    np.testing.assert_allclose(out[0], [10, 10, 0.6], rtol=1e-6)
    # no face point: no head
    coco[[0, 3], 2] = 0.0
    assert (R.coco_to_joints(coco)[0] == 0).all()
    # a batch axis is kept; a wrong shape is an error
    assert R.coco_to_joints(np.stack([coco] * 3)).shape == (3, 14, 3)
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, 3\)"):
        R.coco_to_joints(np.zeros((14, 3)))


@pytest.mark.parametrize("seed", range(5))
def test_mapping_commutes_with_a_horizontal_flip(seed):
    rng = np.random.default_rng(seed)
    width = 64
    coco = _coco(rng, conf_low=0.0)  # some joints below the threshold
    ours = R.coco_to_joints(coco)
    flipped_then_mapped = R.coco_to_joints(R.flip_coco(coco, width))
    mapped_then_flipped = ours[list(FLIP_PERMUTATION)].copy()
    present = mapped_then_flipped[:, 2] > 0
    mapped_then_flipped[present, 0] = (width - 1) - mapped_then_flipped[present, 0]
    np.testing.assert_allclose(flipped_then_mapped, mapped_then_flipped, atol=1e-4)
    assert (flipped_then_mapped[:, 2] > 0).sum() == present.sum()


def test_detections_to_coco_takes_the_best_person():
    kps = torch.zeros(2, 17, 3)
    kps[0, :, 0], kps[0, :, 1] = 5.5, 6.5
    kps[1, :, 0], kps[1, :, 1] = 20.5, 40.5
    logits = torch.zeros(2, 17)
    logits[1, 3] = math.log(3.0)  # sigmoid = 0.75
    out = {"boxes": torch.zeros(2, 4), "scores": torch.tensor([0.3, 0.8]), "keypoints": kps,
           "keypoints_scores": logits}
    coco = R.detections_to_coco(out)
    assert coco.shape == (17, 3) and coco.dtype == np.float32
    np.testing.assert_allclose(coco[:, :2], [[20, 40]] * 17)  # continuous -> pixel centres
    np.testing.assert_allclose(coco[3, 2], 0.8 * 0.75, rtol=1e-6)
    np.testing.assert_allclose(coco[0, 2], 0.8 * 0.5, rtol=1e-6)
    empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0),
             "keypoints": torch.zeros(0, 17, 3), "keypoints_scores": torch.zeros(0, 17)}
    assert (R.detections_to_coco(empty) == 0).all()


def test_offline_download_error_names_url_cache_and_weights_flag(tmp_path, monkeypatch):
    import urllib.error

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, dst, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError) as info:
        R.build_model(None, progress=False)
    msg = str(info.value)
    assert "keypointrcnn_resnet50_fpn_coco-fc266e95.pth" in msg and "download.pytorch.org" in msg
    assert str(tmp_path / "torch") in msg and "--weights PATH" in msg
    assert "keypoint_weights=PATH" in msg


def test_weights_file_missing_or_of_another_model(tmp_path):
    with pytest.raises(WeightsError, match=r"weights file not found: .*nope\.pth.*--weights"):
        R.build_model(tmp_path / "nope.pth")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(WeightsError, match=r"other\.pth.*missing keys"):
        R.build_model(str(tmp_path / "other.pth"), min_size=64, max_size=128, proposals=20)


def test_random_weights_plumbing_and_registry(tmp_path):
    from reid_pse.keypoints import estimate_keypoints

    root = write_tiny_market(tmp_path / "m", num_ids=2, cams=2, per_cam=1, size=(64, 32))
    paths = sorted(str(p) for p in root.glob("*/*.jpg"))[:3]
    out = R.keypointrcnn(paths, batch_size=2, device="cpu", **TINY)
    assert out.shape == (3, 14, 3) and out.dtype == np.float32 and np.isfinite(out).all()
    assert ((out[..., 2] >= 0) & (out[..., 2] <= 1)).all()
    missing = out[..., 2] == 0
    assert (out[missing] == 0).all()
    # the same through the registry (reid_keypoint_estimators), deterministic
    again = estimate_keypoints("keypointrcnn", paths, batch_size=3, device="cpu", **TINY)
    np.testing.assert_allclose(again, out, atol=1e-4)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        R.keypointrcnn(paths, batch_size=0, **TINY)
