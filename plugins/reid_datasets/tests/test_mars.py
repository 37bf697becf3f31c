"""MARS reader on a tiny fixture in the official layout (frames, info/ lists and .mat files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import MARS_TEST, build_mars, mars_frames
from reid_datasets.mars import read_mars
from scipy.io import savemat

from reidcore.errors import DatasetError


def test_mars_tracklets(tmp_path):
    split = read_mars(build_mars(tmp_path))
    assert split.name == "mars"
    # train: 4 tracklets, frames in order, tracklet = row of tracks_train_info (0-based)
    assert [s.extras["tracklet"] for s in split.train] == [0] * 3 + [1] * 2 + [2] * 4 + [3]
    assert [(s.pid, s.camid) for s in split.train][:4] == [(1, 0)] * 3 + [(1, 2)]
    assert split.train_pids == [1, 3] and split.train_labels[-1] == 1
    assert Path(split.train[0].path) == tmp_path / "bbox_train" / "0001" / "0001C1T0001F001.jpg"
    # query: rows 3 and 5 of the test tracks (1-based)
    assert [(s.pid, s.camid, s.extras["tracklet"]) for s in split.query] == [
        (2, 0, 2),
        (2, 0, 2),
        (4, 1, 4),
        (4, 1, 4),
    ]
    # gallery: every test tracklet, junk and distractors and the queries included
    assert len(split.gallery) == sum(n for *_, n in MARS_TEST)
    tracks = {}
    for s in split.gallery:
        tracks.setdefault(s.extras["tracklet"], set()).add((s.pid, s.camid))
    assert tracks == {
        0: {(-1, 0)},
        1: {(0, 3)},
        2: {(2, 0)},
        3: {(2, 4)},
        4: {(4, 1)},
        5: {(4, 5)},
        6: {(4, 5)},
    }
    assert Path(split.gallery[0].path).parent.name == "00-1"
    assert all(Path(s.path).is_file() for s in split.train + split.gallery)


def test_mars_train_frames_per_tracklet(tmp_path):
    split = read_mars(build_mars(tmp_path), train_frames=2)
    names = [Path(s.path).name for s in split.train if s.extras["tracklet"] == 2]
    assert names == ["0003C2T0001F001.jpg", "0003C2T0001F004.jpg"]  # evenly spaced
    assert len(split.train) == 2 + 2 + 2 + 1
    assert len(split.gallery) == len(read_mars(tmp_path).gallery)  # test parts untouched
    with pytest.raises(DatasetError, match="train_frames must be a positive int"):
        read_mars(tmp_path, train_frames=0)


def test_mars_errors(tmp_path):
    with pytest.raises(DatasetError, match="--data DIR"):
        read_mars(None)
    with pytest.raises(DatasetError, match=r"Missing folder .*info\. Expected layout"):
        read_mars(tmp_path)
    build_mars(tmp_path)
    (tmp_path / "info" / "query_IDX.mat").unlink()
    with pytest.raises(DatasetError, match=r"Missing MARS file .*query_IDX\.mat"):
        read_mars(tmp_path)
    savemat(str(tmp_path / "info" / "query_IDX.mat"), {"query_IDX": np.array([[99]])})
    with pytest.raises(DatasetError, match=r"query_IDX must list rows 1\.\.7"):
        read_mars(tmp_path)
    savemat(str(tmp_path / "info" / "query_IDX.mat"), {"wrong": np.array([[1]])})
    with pytest.raises(DatasetError, match=r"has no 'query_IDX' matrix"):
        read_mars(tmp_path)


def test_mars_inconsistent_rows_and_missing_frames(tmp_path):
    build_mars(tmp_path)
    _, rows = mars_frames(MARS_TEST)
    rows[2, 2] = 4  # a track of 0002 labelled as pid 4
    savemat(str(tmp_path / "info" / "tracks_test_info.mat"), {"track_test_info": rows})
    with pytest.raises(DatasetError, match=r"row 3 \(pid 4, camera 1\) holds frame 0002C1"):
        read_mars(tmp_path)
    rows[2, 2] = 2
    rows[0, 1] = 1000
    savemat(str(tmp_path / "info" / "tracks_test_info.mat"), {"track_test_info": rows})
    with pytest.raises(DatasetError, match=r"row 1 spans frames 1\.\.1000"):
        read_mars(tmp_path)
    rows[0, 1] = 2
    savemat(str(tmp_path / "info" / "tracks_test_info.mat"), {"track_test_info": rows})
    (tmp_path / "bbox_test" / "0004" / "0004C6T0002F002.jpg").unlink()
    with pytest.raises(DatasetError, match=r"Missing frame .*0004C6T0002F002\.jpg"):
        read_mars(tmp_path)
