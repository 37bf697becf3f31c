"""``pse keypoints``: the estimated keypoints.csv (format, chunks, resume after a crash or a
kill) and PSE on a folder without keypoints, with the ``keypointrcnn`` estimator named."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from reid_pse.keypoint_estimation import estimate_to_csv, format_row
from reid_pse.keypoints import KeypointsError, read_keypoints_csv

from reidcore.hookspecs import hookimpl
from reidcore.registry import load_dataset
from reidcore.testing import registered_plugin, write_tiny_market

SHARED = Path(os.environ.get("REIDCORE_SHARED",
                             Path(__file__).resolve().parents[3].parent / "shared")) / "data"
HOLDOUT = SHARED / "market1501-holdout"
ROOT = Path(__file__).resolve().parents[3]
TINY_FLAGS = ["--weights", "random", "--min-size", "64", "--max-size", "128", "--proposals", "20",
              "--device", "cpu"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("REIDCORE_CACHE", str(tmp_path_factory.mktemp("reidcore-cache")))


def _kp(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kp = np.zeros((14, 3), np.float32)
    kp[:, 0] = rng.uniform(0, 31, 14).round(2)
    kp[:, 1] = rng.uniform(0, 63, 14).round(2)
    kp[:, 2] = rng.uniform(0.2, 1, 14).round(3)
    kp[5] = 0  # a missing joint
    return kp


class FakeEstimator:
    """Registers ``fake-pose``: keypoints from each path's length; can crash on call N."""

    calls: list[list[str]] = []
    crash_on: int | None = None

    @staticmethod
    @hookimpl
    def reid_keypoint_estimators():
        def estimate(paths, scale=1.0):
            FakeEstimator.calls.append(list(paths))
            if FakeEstimator.crash_on == len(FakeEstimator.calls):
                raise RuntimeError("killed")
            out = np.stack([_kp(len(p) + i) for i, p in enumerate(Path(p).name for p in paths)])
            out[..., :2] *= scale
            return out

        return {"fake-pose": estimate}


def test_format_row_round_trips_through_the_csv_reader(tmp_path):
    kp = _kp(0)
    kp[7] = [-3.0, 4.0, 0.9]  # left of the image by more than half a pixel: not storable
    line = format_row("query/a,b.jpg", kp)
    header = ("image," + ",".join(f"x{j}" for j in range(14)) + ","
              + ",".join(f"y{j}" for j in range(14)) + "," + ",".join(f"v{j}" for j in range(14)))
    (tmp_path / "k.csv").write_text(header + "\n" + line + "\n")
    back = read_keypoints_csv(tmp_path / "k.csv")["query/a,b.jpg"]
    expected = kp.copy()
    expected[7] = 0
    np.testing.assert_allclose(back, expected, atol=1e-5)


def test_estimate_to_csv_in_chunks_resumes_after_a_crash(tmp_path):
    root = write_tiny_market(tmp_path / "m", num_ids=4, cams=2, per_cam=2, size=(64, 32))
    split = load_dataset("market1501", root)
    paths = [s.path for part in (split.train, split.query, split.gallery) for s in part]
    out = root / "keypoints.csv"
    FakeEstimator.calls, FakeEstimator.crash_on = [], 3
    with registered_plugin(FakeEstimator, "fake-estimator"):
        with pytest.raises(RuntimeError, match="killed"):
            estimate_to_csv(paths, out, "fake-pose", chunk_size=5, log=lambda s: None)
        first = out.read_text()
        assert len(first.splitlines()) == 1 + 10  # two chunks of five written, the third lost
        assert not list(root.glob(".keypoints.csv.*"))
        FakeEstimator.calls, FakeEstimator.crash_on = [], None
        lines = []
        s = estimate_to_csv([*paths, paths[0]], out, "fake-pose", chunk_size=5, log=lines.append)
    assert lines[0] == f"resuming {out}: 10 images already there"
    assert (s.images, s.resumed, s.estimated, s.chunks) == (16, 10, 6, 2)
    assert [len(c) for c in FakeEstimator.calls] == [5, 1]  # only the images still missing
    assert out.read_text().startswith(first)  # the stored rows are kept as they were
    table = read_keypoints_csv(out)
    assert sorted(table) == sorted(Path(p).relative_to(root).as_posix() for p in paths)
    for i, p in enumerate(paths[10:]):
        expected = _kp(len(Path(p).name) + i % 5)
        np.testing.assert_allclose(table[Path(p).relative_to(root).as_posix()], expected,
                                   atol=1e-5)
    # the pose-maps reader finds the table in the data folder
    pose = load_dataset("market1501-pose-maps", root)
    assert all("keypoints.csv" in s.extras["keypoint_source"]
               for s in (*pose.train, *pose.query, *pose.gallery))


def test_estimator_options_reach_the_estimator_from_the_reader(tmp_path):
    root = write_tiny_market(tmp_path / "m", num_ids=4, cams=2, per_cam=2, size=(64, 32))
    FakeEstimator.calls, FakeEstimator.crash_on = [], None
    with registered_plugin(FakeEstimator, "fake-estimator"):
        split = load_dataset("market1501-pose-maps", root, keypoint_estimator="fake-pose",
                             keypoint_scale=2.0)
        with pytest.raises(KeypointsError, match="keypoint_scale configure a keypoint estimator"):
            load_dataset("market1501-pose-maps", root, keypoint_scale=2.0)
    s = split.query[0]
    assert s.extras["keypoint_source"] == "keypoint estimator 'fake-pose'"
    assert len(FakeEstimator.calls) == 1
    i = FakeEstimator.calls[0].index(s.path)
    expected = _kp(len(Path(s.path).name) + i)
    expected[:, :2] *= 2
    np.testing.assert_allclose(s.extras["keypoints"], expected, atol=1e-5)


def _holdout_20(root: Path) -> Path:
    """20 real holdout images in a Market layout (symlinks): 2 train ids x 5, 5 query, 5 gallery."""
    if not HOLDOUT.is_dir():
        pytest.skip(f"real data not available (../shared absent): {HOLDOUT}")
    train = sorted(os.listdir(HOLDOUT / "bounding_box_train"))
    pids = sorted({n[:4] for n in train})[:2]
    chosen = {"bounding_box_train": [n for p in pids for n in [m for m in train if
                                                               m.startswith(p)][:5]],
              "query": sorted(os.listdir(HOLDOUT / "query"))[:5],
              "bounding_box_test": sorted(os.listdir(HOLDOUT / "bounding_box_test"))[:5]}
    for folder, names in chosen.items():
        (root / folder).mkdir(parents=True)
        for n in names:
            os.symlink(HOLDOUT / folder / n, root / folder / n)
    return root


@pytest.mark.slow
def test_pse_keypoints_on_20_real_images_writes_a_table_and_resumes_after_a_kill(tmp_path):
    data = _holdout_20(tmp_path / "market")
    out = data / "keypoints.csv"
    cmd = [sys.executable, "-m", "reidcore", "pse", "keypoints", "--dataset", "market1501",
           "--data", str(data), *TINY_FLAGS, "--chunk-size", "2", "--batch-size", "2",
           "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "REIDCORE_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert out.exists(), err
    first = out.read_text()
    written = len(first.splitlines()) - 1
    assert 2 <= written < 20 and written % 2 == 0, written  # killed between two chunks
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"resuming {out}: {written} images already there" in done.stdout
    assert f"keypoints of 20 images of market1501 in {out} ({written} resumed" in done.stdout
    text = out.read_text()
    assert text.startswith(first)
    header = text.splitlines()[0].split(",")
    assert header[:2] == ["image", "x0"] and header[-1] == "v13" and len(header) == 43
    table = read_keypoints_csv(out)
    names = {f"{f}/{n}" for f in ("bounding_box_train", "query", "bounding_box_test")
             for n in os.listdir(data / f)}
    assert set(table) == names
    kps = np.stack(list(table.values()))
    assert kps.shape == (20, 14, 3) and np.isfinite(kps).all()
    assert ((kps[..., 2] >= 0) & (kps[..., 2] <= 1)).all()
    split = load_dataset("market1501-pose-maps", data)
    assert all(s.extras["keypoint_source"].startswith(str(out))
               for s in (*split.train, *split.query, *split.gallery))


#: keypointrcnn with random weights at tiny sizes, as ``--dataset-option`` gives them (text)
ESTIMATOR_OPTIONS = {"keypoint_estimator": "keypointrcnn", "keypoint_weights": "random",
                     "keypoint_min_size": "64", "keypoint_max_size": "128",
                     "keypoint_proposals": "20", "keypoint_device": "cpu"}


@pytest.mark.slow
def test_run_pse_on_a_folder_without_keypoints_with_the_estimator_named(tmp_path):
    """A user's folder with no keypoints file: ``run pse --dataset market1501-pose-maps
    --dataset-option keypoint_estimator=keypointrcnn ...`` estimates them at load time."""
    from reidcore.cli import main

    data = _holdout_20(tmp_path / "market")
    exp = tmp_path / "exp"
    options = [a for k, v in ESTIMATOR_OPTIONS.items() for a in ("--dataset-option", f"{k}={v}")]
    code = main(["run", "pse", "--dataset", "market1501-pose-maps", "--data", str(data), *options,
                 "--experiment", str(exp), "--backbone", "resnet18", "--pretrained", "none",
                 "--height", "64", "--width", "32", "--batch-p", "2", "--batch-k", "2",
                 "--workers", "0", "--embedding-dim", "8", "--embed-batch-size", "10",
                 "--no-tensorboard", "--iterations", "2",
                 # one stage: random-weight keypoints give every image the same view, so
                 # the view stage's 3-class P×K batches cannot be drawn here
                 "--no-staged"])
    assert code == 0
    assert not (data / "keypoints.csv").exists()  # the reader stores nothing
    args = json.loads((exp / "args.json").read_text())
    recorded = args["config"]["dataset_options"]  # numbers converted, e.g. 128
    assert {k: str(v) for k, v in recorded.items()} == ESTIMATOR_OPTIONS
    report = json.loads((exp / "report.json").read_text())
    assert report["recipe"] == "pse" and 0 <= report["mAP"] <= 1
    split = load_dataset("market1501-pose-maps", data, **ESTIMATOR_OPTIONS)
    assert all(s.extras["keypoint_source"] == "keypoint estimator 'keypointrcnn'"
               for s in (*split.train, *split.query, *split.gallery))


def test_commands_name_a_missing_weights_file_and_an_unknown_estimator(tmp_path, capsys):
    from reidcore.cli import main

    root = write_tiny_market(tmp_path / "m", num_ids=4, cams=2, per_cam=2, size=(64, 32))
    missing = tmp_path / "kprcnn.pth"
    assert main(["pse", "keypoints", "--dataset", "market1501", "--data", str(root),
                 "--weights", str(missing), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"Keypoint R-CNN weights file not found: '{missing}'" in err and "--weights" in err
    assert not (root / "keypoints.csv").exists()
    assert main(["pse", "pose-maps", "--dataset", "market1501-pose-maps", "--data", str(root),
                 "--output", str(tmp_path / "maps"), "--keypoint-estimator", "keypointrcnn",
                 "--keypoint-weights", str(missing)]) == 2
    assert f"weights file not found: '{missing}'" in capsys.readouterr().err
    assert main(["pse", "keypoints", "--dataset", "market1501", "--data", str(root),
                 "--estimator", "openpose"]) == 2
    assert "keypoint_estimator 'openpose'" in capsys.readouterr().err


def test_resuming_a_table_without_confidences_keeps_its_rows(tmp_path):
    root = write_tiny_market(tmp_path / "m", num_ids=4, cams=2, per_cam=2, size=(64, 32))
    paths = sorted(str(p) for p in root.glob("*/*.jpg"))
    out = root / "keypoints.csv"
    # a keypoints.csv as shipped with the holdout: bare file names, 1-based integers, no v0..v13
    header = ["image", *[f"x{j}" for j in range(14)], *[f"y{j}" for j in range(14)]]
    given = {Path(p).name: (np.arange(14) + 1 + i, np.arange(14) + 20 + i)
             for i, p in enumerate(paths[:3])}
    out.write_text(",".join(header) + "\n" + "".join(
        ",".join([n, *map(str, xs), *map(str, ys)]) + "\n" for n, (xs, ys) in given.items()))
    FakeEstimator.calls, FakeEstimator.crash_on = [], None
    with registered_plugin(FakeEstimator, "fake-estimator"):
        s = estimate_to_csv(paths, out, "fake-pose", log=lambda line: None)
    assert (s.resumed, s.estimated, s.images) == (3, len(paths) - 3, len(paths))
    assert FakeEstimator.calls == [paths[3:]]
    table = read_keypoints_csv(out)
    assert out.read_text().splitlines()[0].endswith(",v13")
    for n, (xs, ys) in given.items():
        np.testing.assert_array_equal(table[n][:, 0], xs - 1)
        np.testing.assert_array_equal(table[n][:, 1], ys - 1)
        assert (table[n][:, 2] == 1).all()


def test_pose_map_readers_declare_their_keypoint_options():
    """``list datasets`` and ``--dataset-option`` see ``keypoints`` and
    ``keypoint_estimator`` (before: the readers were ``(root, **kwargs)``, listed as "...")."""
    from reid_pse import readers

    from reidcore.dataset_options import reader_options

    for base in ("market1501", "duke", "csv", "folder", "synthetic"):
        reader = getattr(readers, f"read_{base}_pose_maps")
        options, accepts_others = reader_options(reader)
        assert options == {"keypoints": None, "keypoint_estimator": None}, base
        assert accepts_others  # the base reader's options and keypoint_<option>
        assert reader.__name__ == f"read_{base}_pose_maps"
