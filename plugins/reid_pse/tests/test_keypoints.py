"""Keypoint loaders, attaching keypoints to splits, and the *-pose-maps dataset variants."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from reid_pse import keypoint_mat as M
from reid_pse import keypoints as K

from reidcore.data import Sample, Split
from reidcore.registry import load_dataset
from reidcore.testing import write_tiny_market

HOLDOUT = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "market1501-holdout"
if not HOLDOUT.is_dir():
    HOLDOUT = Path("/work/shared/data/market1501-holdout")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    """Parsed-index and synthetic caches go to a fresh $REIDCORE_CACHE, never ~/.cache."""
    monkeypatch.setenv("REIDCORE_CACHE", str(tmp_path_factory.mktemp("reidcore-cache")))


def _images(root: Path) -> list[Path]:
    return sorted(p for sub in ("bounding_box_train", "query", "bounding_box_test")
                  for p in (root / sub).glob("*.jpg"))


def _fake_keypoints(name: str, h: int = 32, w: int = 16) -> np.ndarray:
    """Deterministic 0-based integer keypoints inside a h x w image, per file name."""
    rng = np.random.default_rng(sum(map(ord, name)))
    kp = np.ones((K.NUM_JOINTS, 3), np.float32)
    kp[:, 0] = rng.integers(0, w, K.NUM_JOINTS)
    kp[:, 1] = rng.integers(0, h, K.NUM_JOINTS)
    return kp


def _write_csv(path: Path, rows: dict[str, np.ndarray]) -> None:
    """The shared keypoints.csv format: 1-based pixels."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", *[f"x{i}" for i in range(14)], *[f"y{i}" for i in range(14)]])
        for name, kp in rows.items():
            w.writerow([name, *(kp[:, 0] + 1).astype(int), *(kp[:, 1] + 1).astype(int)])


@pytest.fixture
def market(tmp_path) -> Path:
    root = write_tiny_market(tmp_path / "market", num_ids=4, cams=2, per_cam=2, size=(32, 16))
    return root


def test_joint_constants():
    assert len(K.JOINTS) == 14 and K.JOINTS[0] == "head" and K.JOINTS[13] == "l_ankle"
    perm = np.array(K.FLIP_PERMUTATION)
    assert (perm[perm] == np.arange(14)).all()  # an involution
    for a, b in K.FLIP_PAIRS:
        assert K.JOINTS[a].startswith("r_") and K.JOINTS[b] == "l_" + K.JOINTS[a][2:]
        assert perm[a] == b and perm[b] == a
    assert perm[0] == 0 and perm[1] == 1


def test_csv_loader_converts_one_based_and_marks_missing(tmp_path):
    path = tmp_path / "kp.csv"
    header = ["image", *[f"x{i}" for i in range(14)], *[f"y{i}" for i in range(14)]]
    xs = [str(v) for v in range(1, 15)]
    ys = [str(v) for v in range(101, 115)]
    xs[3], ys[5], xs[7], ys[9] = "0", "-1", "nan", ""  # four missing joints
    path.write_text(",".join(header) + "\r\n" + ",".join(["a.jpg", *xs, *ys]) + "\r\n")
    table = K.read_keypoints_csv(path)
    kp = table["a.jpg"]
    assert kp.shape == (14, 3) and kp.dtype == np.float32
    present = [j for j in range(14) if j not in (3, 5, 7, 9)]
    np.testing.assert_array_equal(kp[present, 0], np.arange(14)[present])  # 1-based -> 0-based
    np.testing.assert_array_equal(kp[present, 1], np.arange(100, 114)[present])
    assert (kp[present, 2] == 1).all()
    assert (kp[[3, 5, 7, 9]] == 0).all()


def test_csv_loader_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("image,x0,y0\na.jpg,1,2\n")
    with pytest.raises(K.KeypointsError, match=r"bad\.csv.*lacks x1"):
        K.read_keypoints_csv(bad)
    dup = tmp_path / "dup.csv"
    _write_csv(dup, {"a.jpg": _fake_keypoints("a")})
    dup.write_text(dup.read_text() + dup.read_text().splitlines()[1] + "\n")
    with pytest.raises(K.KeypointsError, match=r"dup\.csv:3: image 'a\.jpg' is listed twice"):
        K.read_keypoints_csv(dup)
    with pytest.raises(K.KeypointsError, match="cannot read keypoint table"):
        K.read_keypoints_csv(tmp_path / "missing.csv")


def test_csv_write_read_roundtrip(tmp_path):
    kp = _fake_keypoints("x")
    kp[4] = [2.25, 7.5, 1.0]
    kp[6, 2] = 0.0  # missing
    K.write_keypoints_csv(tmp_path / "k.csv", [("x.jpg", kp)])
    back = K.read_keypoints_csv(tmp_path / "k.csv")["x.jpg"]
    expected = kp.copy()
    expected[6] = 0
    np.testing.assert_allclose(back, expected, atol=1e-6)
    assert not list(tmp_path.glob(".*tmp*"))


def test_mat_loader_hdf5_transposed_and_v5(tmp_path):
    import h5py
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    pp = np.concatenate([rng.integers(1, 65, (5, 14)), rng.integers(1, 129, (5, 14))], 1)
    pp = pp.astype(np.float64)
    pp[2, 3] = 0  # joint 3 of image 2 missing
    # The published market1501_body_point files show (N, 28) in h5py; (28, N) is accepted too.
    with h5py.File(tmp_path / "v73.mat", "w") as f:
        f.create_dataset("pp", data=pp)
    with h5py.File(tmp_path / "v73t.mat", "w") as f:
        f.create_dataset("pp", data=pp.T)
    savemat(tmp_path / "v5.mat", {"pp": pp})
    for name in ("v73.mat", "v73t.mat", "v5.mat"):
        assert M.mat_has_keypoints(tmp_path / name)
        kp = M.read_keypoints_mat(tmp_path / name)
        assert kp.shape == (5, 14, 3)
        np.testing.assert_array_equal(kp[0, :, 0], pp[0, :14] - 1)
        np.testing.assert_array_equal(kp[4, :, 1], pp[4, 14:] - 1)
        assert (kp[2, 3] == 0).all() and (kp[2, 4, 2] == 1)
    with h5py.File(tmp_path / "other.mat", "w") as f:
        f.create_dataset("xx", data=pp.T)
    assert not M.mat_has_keypoints(tmp_path / "other.mat")
    with pytest.raises(K.KeypointsError, match=r"other\.mat has no 'pp'"):
        M.read_keypoints_mat(tmp_path / "other.mat")
    with h5py.File(tmp_path / "shape.mat", "w") as f:
        f.create_dataset("pp", data=np.zeros((5, 7)))
    with pytest.raises(K.KeypointsError, match=r"shape\.mat.*\(N, 28\)"):
        M.read_keypoints_mat(tmp_path / "shape.mat")


def test_per_image_array_loader(tmp_path):
    kp = _fake_keypoints("a")
    K.write_keypoint_array(tmp_path / "a.npy", kp)
    np.testing.assert_array_equal(K.read_keypoint_array(tmp_path / "a.npy"), kp)
    np.save(tmp_path / "map.npy", np.zeros((14, 32, 16), np.float16))
    with pytest.raises(K.KeypointsError, match=r"map\.npy.*shape \(14, 3\)"):
        K.read_keypoint_array(tmp_path / "map.npy")


def test_market1501_pose_maps_reads_keypoints_csv(market):
    images = _images(market)
    truth = {p.name: _fake_keypoints(p.name) for p in images}
    _write_csv(market / "keypoints.csv", truth)
    split = load_dataset("market1501-pose-maps", market)
    assert split.name == "market1501-pose-maps"
    assert (len(split.train), len(split.query), len(split.gallery)) == (8, 4, 4)
    for s in (*split.train, *split.query, *split.gallery):
        kp = s.extras["keypoints"]
        assert kp.dtype == np.float32 and kp.shape == (14, 3)
        np.testing.assert_array_equal(kp, truth[Path(s.path).name])
        assert s.extras["keypoint_source"].startswith(str(market / "keypoints.csv"))


def test_missing_keypoints_error_names_first_image_and_places(market):
    with pytest.raises(K.KeypointsError) as info:
        load_dataset("market1501-pose-maps", market)
    msg = str(info.value)
    first = sorted((market / "bounding_box_train").glob("*.jpg"))[0]
    assert f"no keypoints for image {first} " in msg
    assert "16 of 16 images" in msg
    assert str(market / "keypoints.csv") in msg and "*.mat" in msg and "keypoints/" in msg
    # partly covered: the first uncovered image is named
    images = _images(market)
    _write_csv(market / "keypoints.csv", {p.name: _fake_keypoints(p.name) for p in images[:-1]})
    with pytest.raises(K.KeypointsError, match=f"no keypoints for image {images[-1]} .*1 of 16"):
        load_dataset("market1501-pose-maps", market)


def test_sources_in_order_extras_csv_mat_folder_estimator(market, tmp_path):
    import h5py

    from reidcore.hookspecs import hookimpl
    from reidcore.testing import registered_plugin

    base = load_dataset("market1501", market)
    train = sorted((market / "bounding_box_train").glob("*.jpg"))
    gallery = sorted((market / "bounding_box_test").glob("*.jpg"))
    query = sorted((market / "query").glob("*.jpg"))
    # extras for the first training image
    first = base.train[0]
    extras_kp = _fake_keypoints("extras")
    base = Split(base.name, [Sample(first.path, first.pid, first.camid, {"keypoints": extras_kp}),
                             *base.train[1:]], base.query, base.gallery)
    # CSV: all training images (the first one must still come from extras)
    _write_csv(market / "keypoints.csv", {p.name: _fake_keypoints(p.name) for p in train})
    # .mat named after the gallery folder: its images in sorted order
    pp = np.stack([np.concatenate([_fake_keypoints(p.name)[:, 0] + 1,
                                   _fake_keypoints(p.name)[:, 1] + 1]) for p in gallery])
    with h5py.File(market / "bounding_box_test.mat", "w") as f:
        f.create_dataset("pp", data=pp.T)
    # per-image arrays for the first query image
    (market / "keypoints").mkdir()
    K.write_keypoint_array(market / "keypoints" / f"{query[0].stem}.npy", _fake_keypoints("npy"))
    calls = []

    class Estimator:
        @staticmethod
        @hookimpl
        def reid_keypoint_estimators():
            def estimate(paths):
                calls.append(list(paths))
                return np.stack([_fake_keypoints("est")] * len(paths))

            return {"fake-pose": estimate}

    with registered_plugin(Estimator, "fake-estimator"):
        split = K.attach_keypoints(base, market, estimator="fake-pose")
    src = {s.path: (s.extras["keypoint_source"], s.extras["keypoints"])
           for s in (*split.train, *split.query, *split.gallery)}
    assert src[str(train[0])][0] == "extras"
    np.testing.assert_array_equal(src[str(train[0])][1], extras_kp)
    for p in train[1:]:
        assert "keypoints.csv" in src[str(p)][0]
        np.testing.assert_array_equal(src[str(p)][1], _fake_keypoints(p.name))
    for p in gallery:
        assert "bounding_box_test.mat" in src[str(p)][0]
        np.testing.assert_array_equal(src[str(p)][1], _fake_keypoints(p.name))
    assert "<image stem>.npy" in src[str(query[0])][0]
    np.testing.assert_array_equal(src[str(query[0])][1], _fake_keypoints("npy"))
    assert calls == [[str(p) for p in query[1:]]]  # one call, only the images still lacking
    for p in query[1:]:
        np.testing.assert_array_equal(src[str(p)][1], _fake_keypoints("est"))


def _write_mat(path: Path, images: list[Path]) -> np.ndarray:
    """A market1501_body_point-style v7.3 file: ``pp`` (N, 28) as h5py shows the real ones."""
    import h5py

    pp = np.stack([np.concatenate([_fake_keypoints(p.name)[:, 0] + 1,
                                   _fake_keypoints(p.name)[:, 1] + 1]) for p in images])
    with h5py.File(path, "w") as f:
        f.create_dataset("pp", data=pp)
    return pp


def test_mat_row_count_matching_no_folder_is_an_error(market):
    import h5py

    with h5py.File(market / "all.mat", "w") as f:
        f.create_dataset("pp", data=np.ones((3, 28)))
    with pytest.raises(K.KeypointsError) as info:
        load_dataset("market1501-pose-maps", market)
    msg = str(info.value)
    assert "all.mat: 'pp' has 3 rows but no folder of the split holds that many" in msg
    assert f"{market / 'bounding_box_train'}/ 8" in msg and f"{market / 'query'}/ 4" in msg
    assert "market1501_14point_train.mat (bounding_box_train/)" in msg


def test_mat_files_matched_by_published_name_and_row_count(market):
    train = sorted((market / "bounding_box_train").glob("*.jpg"))
    query = sorted((market / "query").glob("*.jpg"))
    gallery = sorted((market / "bounding_box_test").glob("*.jpg"))
    # query and gallery both hold 4 images: only their names tell them apart
    _write_mat(market / "market1501_14point_query.mat", query)
    _write_mat(market / "Market1501_14point_gallery.mat", gallery)
    _write_mat(market / "my_keypoints.mat", train)  # 8 rows: only bounding_box_train/ has 8
    split = load_dataset("market1501-pose-maps", market)
    for part, mat in ((split.train, "my_keypoints.mat"), (split.query, "14point_query.mat"),
                      (split.gallery, "14point_gallery.mat")):
        assert len(part) > 0
        for s in part:
            assert mat in s.extras["keypoint_source"]
            np.testing.assert_array_equal(s.extras["keypoints"], _fake_keypoints(Path(s.path).name))


def test_mat_published_name_with_wrong_row_count_names_file_rows_and_folder(market):
    query = sorted((market / "query").glob("*.jpg"))
    _write_mat(market / "market1501_14point_query.mat", query + query[:1])  # 5 rows, 4 images
    with pytest.raises(K.KeypointsError) as info:
        load_dataset("market1501-pose-maps", market)
    msg = str(info.value)
    assert "market1501_14point_query.mat: 'pp' has 5 rows but " in msg
    assert f"{market / 'query'}/ (matched by the file's name) holds 4 image files" in msg


def test_mat_ambiguous_row_count_asks_for_a_name(market):
    _write_mat(market / "kp.mat", sorted((market / "query").glob("*.jpg")))  # 4 = query = gallery
    with pytest.raises(K.KeypointsError, match=r"kp\.mat: 'pp' has 4 rows and several folders"):
        load_dataset("market1501-pose-maps", market)


def test_mat_with_rows_of_all_folders_pairs_sorted_names_across_them(market):
    images = sorted(_images(market), key=lambda p: p.name)
    _write_mat(market / "everything.mat", images)  # 16 rows: no single folder, all of them
    split = load_dataset("market1501-pose-maps", market)
    for s in (*split.train, *split.query, *split.gallery):
        np.testing.assert_array_equal(s.extras["keypoints"], _fake_keypoints(Path(s.path).name))


def test_mat_28_by_28_is_read_as_the_published_files(tmp_path):
    import h5py

    pp = np.arange(1, 28 * 28 + 1, dtype=np.float64).reshape(28, 28)
    with h5py.File(tmp_path / "square.mat", "w") as f:
        f.create_dataset("pp", data=pp)
    kp = M.read_keypoints_mat(tmp_path / "square.mat")
    np.testing.assert_array_equal(kp[0, :, 0], pp[0, :14] - 1)  # row 0 = image 0, not column 0
    np.testing.assert_array_equal(kp[27, :, 1], pp[27, 14:] - 1)


def test_explicit_keypoints_path_and_unknown_estimator(market, tmp_path):
    from reidcore.errors import UnknownNameError

    images = _images(market)
    _write_csv(tmp_path / "elsewhere.csv", {p.name: _fake_keypoints(p.name) for p in images})
    split = load_dataset("market1501-pose-maps", market, keypoints=tmp_path / "elsewhere.csv")
    assert all("elsewhere.csv" in s.extras["keypoint_source"] for s in split.query)
    with pytest.raises(UnknownNameError, match="keypoint_estimator 'nope'"):
        load_dataset("market1501-pose-maps", market, keypoint_estimator="nope")


def test_synthetic_pose_maps_keeps_exact_keypoints(tmp_path):
    kwargs = dict(num_train_ids=2, num_test_ids=2, num_cameras=2, images_per_camera=2,
                  height=32, width=16)
    base = load_dataset("synthetic", tmp_path, **kwargs)
    split = load_dataset("synthetic-pose-maps", tmp_path, **kwargs)
    assert split.name == "synthetic-pose-maps"
    for a, b in zip((*base.train, *base.query, *base.gallery),
                    (*split.train, *split.query, *split.gallery), strict=True):
        assert a.path == b.path and b.extras["keypoint_source"] == "extras"
        assert b.extras["view"] == a.extras["view"]
        expected = np.asarray(a.extras["keypoints"], np.float32)
        np.testing.assert_array_equal(b.extras["keypoints"][:, :2], expected[:, :2])
        np.testing.assert_array_equal(b.extras["keypoints"][:, 2] > 0, expected[:, 2] > 0)


@pytest.mark.slow
def test_real_market1501_holdout_keypoints_cover_every_image():
    if not (HOLDOUT / "keypoints.csv").is_file():
        pytest.skip(f"real data not available: {HOLDOUT}/keypoints.csv is absent")
    split = load_dataset("market1501-pose-maps", HOLDOUT)
    samples = [*split.train, *split.query, *split.gallery]
    assert len(samples) == 12936
    kps = np.stack([s.extras["keypoints"] for s in samples])
    assert kps.shape == (12936, 14, 3)
    assert (kps[:, :, 2] == 1).all()  # the shared table has every joint
    assert kps[:, :, 0].min() >= 0 and kps[:, :, 0].max() <= 63
    assert kps[:, :, 1].min() >= 0 and kps[:, :, 1].max() <= 127
    first = next(s for s in samples if Path(s.path).name == "0002_c1s1_000451_03.jpg")
    # CSV row: x0..x2 = 33, 29, 19 and y0..y2 = 2, 20, 25 (1-based)
    np.testing.assert_array_equal(first.extras["keypoints"][:3, :2], [[32, 1], [28, 19], [18, 24]])
