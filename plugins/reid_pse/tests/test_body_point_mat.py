"""The real market1501_body_point files, dropped into a Market-1501 folder with their names.

Only the training images exist here: the 12,936 images of ``market1501-holdout/`` (all three
of its folders) are the official ``bounding_box_train/``, so they are laid out (symlinks) as one
``bounding_box_train/`` beside ``market1501_14point_train.mat``; the query and gallery files
are matched by name and row count to folders of that many (symlinked, dummy) images.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from reid_pse.keypoint_mat import read_keypoints_mat

from reidcore.registry import load_dataset

# ../shared relative to the repository root; REIDCORE_SHARED names it where a checkout lives
# elsewhere (e.g. a git worktree).
SHARED = Path(os.environ.get("REIDCORE_SHARED",
                             Path(__file__).resolve().parents[3].parent / "shared")) / "data"
HOLDOUT = SHARED / "market1501-holdout"
BODY_POINT = SHARED / "market1501-body-point"
FILES = {"train": "market1501_14point_train.mat", "query": "market1501_14point_query.mat",
         "gallery": "market1501_14point_gallery.mat"}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("REIDCORE_CACHE", str(tmp_path_factory.mktemp("reidcore-cache")))


def _require_shared():
    need = [HOLDOUT / "keypoints.csv", *(BODY_POINT / f for f in FILES.values())]
    lacking = [str(p) for p in need if not p.is_file()]
    if lacking:
        pytest.skip(f"real data not available (../shared absent): {', '.join(lacking)}")


def _dummy_folder(folder: Path, count: int, target: Path) -> list[str]:
    """``count`` symlinks named like Market-1501 images, all pointing at ``target``."""
    folder.mkdir()
    names = [f"{1 + i % 500:04d}_c{1 + i % 6}s1_{i:06d}_00.jpg" for i in range(count)]
    for n in names:
        os.symlink(target, folder / n)
    return sorted(names)


@pytest.mark.slow
def test_published_mat_files_give_the_keypoints_of_keypoints_csv(tmp_path):
    _require_shared()
    from reid_pse.keypoints import read_keypoints_csv

    truth = read_keypoints_csv(HOLDOUT / "keypoints.csv")
    assert len(truth) == 12936
    root = tmp_path / "Market-1501"
    train = root / "bounding_box_train"
    train.mkdir(parents=True)
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        for name in os.listdir(HOLDOUT / sub):
            os.symlink(HOLDOUT / sub / name, train / name)
    assert len(os.listdir(train)) == 12936
    any_image = next(iter(sorted(train.iterdir())))
    rows = {part: len(read_keypoints_mat(BODY_POINT / f)) for part, f in FILES.items()}
    assert rows == {"train": 12936, "query": 3368, "gallery": 19732}
    query = _dummy_folder(root / "query", rows["query"], any_image)
    gallery = _dummy_folder(root / "bounding_box_test", rows["gallery"], any_image)
    for f in FILES.values():  # the published names, unchanged
        os.symlink(BODY_POINT / f, root / f)

    split = load_dataset("market1501-pose-maps", root)

    assert len(split.train) == 12936
    for s in split.train:
        assert s.extras["keypoint_source"].startswith(str(root / FILES["train"]))
        np.testing.assert_array_equal(s.extras["keypoints"], truth[Path(s.path).name])
    for part, names, f in ((split.query, query, FILES["query"]),
                           (split.gallery, gallery, FILES["gallery"])):
        pp = read_keypoints_mat(BODY_POINT / f)
        row = {n: i for i, n in enumerate(names)}
        assert len(part) == len(names)
        for s in part:
            assert s.extras["keypoint_source"].startswith(str(root / f))
            np.testing.assert_array_equal(s.extras["keypoints"], pp[row[Path(s.path).name]])
    # the files' values are 1-based pixels of 64 x 128 images, every joint present
    for part in (split.train, split.query, split.gallery):
        kps = np.stack([s.extras["keypoints"] for s in part])
        assert (kps[:, :, 2] == 1).all()
        assert kps[:, :, 0].min() >= 0 and kps[:, :, 0].max() <= 63
        assert kps[:, :, 1].min() >= 0 and kps[:, :, 1].max() <= 127


@pytest.mark.slow
def test_real_query_file_beside_a_folder_of_another_size_names_both(tmp_path):
    _require_shared()
    from reid_pse.keypoints import KeypointsError, attach_keypoints

    from reidcore.data import Sample, Split

    root = tmp_path / "Market-1501"
    root.mkdir()
    image = next(iter(sorted((HOLDOUT / "query").iterdir())))
    names = _dummy_folder(root / "query", 3367, image)  # one image short of 3,368 rows
    os.symlink(BODY_POINT / FILES["query"], root / FILES["query"])
    query = [Sample(str(root / "query" / n), 1, 0) for n in names]
    with pytest.raises(KeypointsError) as info:
        attach_keypoints(Split("market1501", [], query, []), root)
    msg = str(info.value)
    assert f"{root / FILES['query']}: 'pp' has 3368 rows but {root / 'query'}/" in msg
    assert "holds 3367 image files" in msg
