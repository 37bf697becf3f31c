"""MSMT17 reader on a tiny fixture in the official MSMT17_V1 layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_fixtures import build_msmt17
from reid_datasets.msmt17 import read_msmt17, read_msmt17_trainval

from reidcore.errors import DatasetError


def test_msmt17_lists(tmp_path):
    split = read_msmt17(build_msmt17(tmp_path))
    assert split.name == "msmt17"
    assert [(s.pid, s.camid) for s in split.train] == [(0, 0), (0, 4), (1, 13), (1, 2)]
    assert split.train_labels == [0, 0, 1, 1]  # pid 0 is an ordinary identity
    assert [(s.pid, s.camid) for s in split.query] == [(0, 0), (2, 14)]
    assert [(s.pid, s.camid) for s in split.gallery] == [(0, 1), (2, 9), (3, 8)]
    assert Path(split.query[0].path) == (
        tmp_path / "test" / "0000" / "0000_000_01_0303morning_0035_0.jpg"
    )


def test_msmt17_train_val_and_release_folder(tmp_path):
    build_msmt17(tmp_path / "MSMT17_V1")
    split = read_msmt17(tmp_path, train_val=True)
    assert len(split.train) == 5 and split.train[-1].camid == 6
    assert read_msmt17_trainval(tmp_path).name == "msmt17-trainval"


def test_msmt17_v2_folders(tmp_path):
    build_msmt17(tmp_path)
    (tmp_path / "train").rename(tmp_path / "mask_train_v2")
    (tmp_path / "test").rename(tmp_path / "mask_test_v2")
    assert "mask_test_v2" in read_msmt17(tmp_path).gallery[0].path


def test_msmt17_errors(tmp_path):
    with pytest.raises(DatasetError, match="--data DIR"):
        read_msmt17(None)
    with pytest.raises(DatasetError, match=r"Missing folder .*train\. Expected layout"):
        read_msmt17(tmp_path)
    build_msmt17(tmp_path)
    (tmp_path / "list_gallery.txt").unlink()
    with pytest.raises(DatasetError, match=r"Missing list file .*list_gallery\.txt"):
        read_msmt17(tmp_path)
    (tmp_path / "list_gallery.txt").write_text("0000/0000_001_02_0303morning_0036_0.jpg\n")
    with pytest.raises(DatasetError, match=r"list_gallery\.txt:1: malformed line"):
        read_msmt17(tmp_path)
    (tmp_path / "list_gallery.txt").write_text("0000/0000_001_02_0303morning_0036_0.jpg x\n")
    with pytest.raises(DatasetError, match=r"list_gallery\.txt:1: pid 'x' is not an int"):
        read_msmt17(tmp_path)
    (tmp_path / "list_gallery.txt").write_text("0009/0009_001_02_0303morning_0036_0.jpg 9\n")
    with pytest.raises(DatasetError, match=r"list_gallery\.txt:1: listed image .*0009_001"):
        read_msmt17(tmp_path)
