"""``python -m reidcore pse pose-maps`` end to end on a tiny Market-1501-layout fixture."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from reid_pse.keypoints import read_keypoints_csv

from reidcore.cli import main
from reidcore.registry import load_dataset
from reidcore.testing import write_tiny_market


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("REIDCORE_CACHE", str(tmp_path_factory.mktemp("reidcore-cache")))


def _tiny_market_with_keypoints(root: Path) -> dict[str, np.ndarray]:
    """A 32x16 Market fixture whose keypoints.csv puts every joint of an image at integer
    pixels (0-based, returned) inside the image; joint 6 of the first image is missing."""
    write_tiny_market(root, num_ids=4, cams=2, per_cam=2, size=(32, 16))
    images = sorted(p for sub in ("bounding_box_train", "query", "bounding_box_test")
                    for p in (root / sub).glob("*.jpg"))
    truth = {}
    with open(root / "keypoints.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", *[f"x{i}" for i in range(14)], *[f"y{i}" for i in range(14)]])
        for k, p in enumerate(images):
            rng = np.random.default_rng(k)
            kp = np.ones((14, 3), np.float32)
            kp[:, 0] = rng.integers(0, 16, 14)
            kp[:, 1] = rng.integers(0, 32, 14)
            xs, ys = kp[:, 0] + 1, kp[:, 1] + 1
            if k == 0:
                kp[6] = 0
                xs[6] = ys[6] = 0
            w.writerow([p.name, *xs.astype(int), *ys.astype(int)])
            truth[p.name] = kp
    return truth


def test_pose_maps_command_end_to_end(tmp_path, capsys):
    data = tmp_path / "market"
    truth = _tiny_market_with_keypoints(data)
    out = tmp_path / "maps"
    rc = main(["pse", "pose-maps", "--dataset", "market1501", "--data", str(data),
               "--output", str(out), "--height", "64", "--width", "32", "--sigma", "1.5"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "wrote 16 pose maps (14 x 64 x 32 float16, sigma 1.50 px)" in printed
    assert "train 8, query 4, gallery 4" in printed
    assert f"keypoints from {data / 'keypoints.csv'} (1-based CSV): 16 images" in printed
    files = sorted(out.glob("*.npy"))
    assert len(files) == 16 and {f.stem for f in files} == {Path(n).stem for n in truth}
    for f in files:
        maps = np.load(f)
        assert maps.shape == (14, 64, 32) and maps.dtype == np.float16
        kp = truth[f.stem + ".jpg"]
        for j in range(14):
            if kp[j, 2] == 0:
                assert not maps[j].any()
                continue
            # a 32x16 image doubled: x -> (x + 0.5) * 2 - 0.5 = 2x + 0.5, between two pixels
            r, c = np.unravel_index(np.argmax(maps[j]), maps[j].shape)
            assert r in (2 * kp[j, 1], 2 * kp[j, 1] + 1) and c in (2 * kp[j, 0], 2 * kp[j, 0] + 1)
    # the keypoints used, in the shared CSV format: the output folder is a keypoint source
    table = read_keypoints_csv(out / "keypoints.csv")
    assert set(table) == set(truth)
    for name, kp in truth.items():
        np.testing.assert_array_equal(table[name], kp)
    meta = json.loads((out / "pose_maps.json").read_text())
    assert meta["height"] == 64 and meta["width"] == 32 and meta["sigma"] == 1.5
    assert meta["images"] == 16 and meta["parts"] == {"train": 8, "query": 4, "gallery": 4}
    assert not list(out.glob(".*"))  # no temp files left
    (data / "keypoints.csv").unlink()
    split = load_dataset("market1501-pose-maps", data, keypoints=out)
    assert len(split.query) == 4 and all("maps/keypoints.csv" in s.extras["keypoint_source"]
                                         for s in split.query)


def test_pose_maps_command_missing_keypoints_is_a_clear_error(tmp_path, capsys):
    data = write_tiny_market(tmp_path / "market", num_ids=4, cams=2, per_cam=2, size=(32, 16))
    rc = main(["pse", "pose-maps", "--dataset", "market1501-pose-maps", "--data", str(data),
               "--output", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err
    first = sorted((data / "bounding_box_train").glob("*.jpg"))[0]
    assert f"reidcore: error: no keypoints for image {first} (16 of 16 images" in err
    assert "keypoints.csv" in err and "pse keypoints --dataset NAME" in err
    assert "keypoint_estimator=keypointrcnn" in err
    assert not (tmp_path / "out" / "keypoints.csv").exists()


def test_pse_command_is_registered_and_documents_its_flags():
    import os

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "reidcore", "pse", "pose-maps", "--help"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for flag in ("--dataset", "--data", "--output", "--height", "--width", "--sigma",
                 "--keypoints", "--keypoint-estimator", "--keypoints-only"):
        assert flag in proc.stdout


def test_write_pose_maps_with_colliding_file_names(tmp_path):
    """Equal file names in two folders: maps and CSV rows keyed by relative path."""
    from PIL import Image
    from reid_pse.keypoints import attach_keypoints
    from reid_pse.pose_map_files import write_pose_maps

    from reidcore.data import Sample, Split

    samples = []
    for k, sub in enumerate(("train/0001", "query/0002", "gallery/0002")):
        path = tmp_path / "data" / sub / "img.jpg"
        path.parent.mkdir(parents=True)
        Image.new("RGB", (16, 32)).save(path)
        kp = np.zeros((14, 3), np.float32)
        kp[0] = [k + 1, 2 * k + 1, 1]
        samples.append(Sample(str(path), k + 1, 0, {"keypoints": kp}))
    split = Split("toy", samples[:1], samples[1:2], samples[2:])
    summary = write_pose_maps(split, tmp_path / "out", 32, 16, 1.0, maps=True)
    assert summary.images == 3
    assert sorted(p.relative_to(tmp_path / "out").as_posix()
                  for p in (tmp_path / "out").rglob("*.npy")) == [
        "gallery/0002/img.npy", "query/0002/img.npy", "train/0001/img.npy"]
    bare = Split("toy", *[[Sample(s.path, s.pid, s.camid)] for s in samples])
    again = attach_keypoints(bare, None, keypoints=tmp_path / "out")
    for a, b in zip(samples, (*again.train, *again.query, *again.gallery), strict=True):
        np.testing.assert_array_equal(a.extras["keypoints"], b.extras["keypoints"])
