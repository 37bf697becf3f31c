"""DukeMTMC-reID reader and the parsed-index cache, on tiny fixtures in the official layout."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from dataset_fixtures import build_duke
from reid_datasets import _common
from reid_datasets.duke import parse_duke_name, read_duke

from reidcore.errors import DatasetError


def test_duke_names():
    assert parse_duke_name("0001_c2_f0046182.jpg") == (1, 1)
    assert parse_duke_name("0123_c8_f0000001.jpg") == (123, 7)
    assert parse_duke_name("0001_c1s1_000451_03.jpg") is None  # a Market name
    assert parse_duke_name("0001_c0_f0046182.jpg") is None
    assert parse_duke_name("Thumbs.db") is None


def test_duke_reads_official_layout(tmp_path):
    build_duke(tmp_path)
    (tmp_path / "bounding_box_train" / "Thumbs.db").write_bytes(b"x")
    split = read_duke(tmp_path)
    assert split.name == "duke"
    assert [(s.pid, s.camid) for s in split.train] == [(1, 1), (1, 5), (3, 0), (3, 7)]
    assert split.train_labels == [0, 0, 1, 1]
    assert [(s.pid, s.camid) for s in split.query] == [(5, 1), (8, 6)]
    assert [(s.pid, s.camid) for s in split.gallery] == [(5, 4), (8, 0), (9, 2)]
    assert split.train[0].path == str(tmp_path / "bounding_box_train" / "0001_c2_f0046182.jpg")


def test_duke_release_folder(tmp_path):
    build_duke(tmp_path / "dukemtmc-reid" / "DukeMTMC-reID")
    assert len(read_duke(tmp_path / "dukemtmc-reid").gallery) == 3


def test_duke_errors(tmp_path):
    with pytest.raises(DatasetError, match="--data DIR"):
        read_duke(None)
    with pytest.raises(DatasetError, match=r"not a DukeMTMC-reID folder.*bounding_box_train"):
        read_duke(tmp_path)
    build_duke(tmp_path)
    for f in (tmp_path / "query").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=r"query holds no image named like 0001_c2_f0046182"):
        read_duke(tmp_path)
    (tmp_path / "query").rmdir()
    with pytest.raises(DatasetError, match=r"Missing folder .*query\. Expected layout"):
        read_duke(tmp_path)


def _age(root: Path, seconds: float = 60) -> None:
    """Set every mtime under root into the past, out of the racy window of the cache."""
    old = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.utime(os.path.join(dirpath, n), (old, old))


def test_index_cache_used_and_invalidated(tmp_path, monkeypatch):
    data = build_duke(tmp_path / "duke")
    _age(data)
    first = read_duke(data)
    index = list((Path(os.environ["REIDCORE_CACHE"]) / "index").glob("duke-*.json"))
    assert len(index) == 1 and json.loads(index[0].read_text())["version"] == 2
    calls = []
    real = _common.Split
    monkeypatch.setattr(_common, "Split", lambda *a: calls.append(a) or real(*a))
    assert read_duke(data) == first and len(calls) == 1  # decoded from the index
    assert json.loads(index[0].read_text())["query"][0][0] == "\0query/0005_c2_f0046985.jpg"
    # a new gallery image changes the folder's mtime: the index is rebuilt
    (data / "bounding_box_test" / "0010_c4_f0000001.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    assert len(read_duke(data).gallery) == 4
    # a corrupt index is ignored
    index[0].write_text("{not json")
    assert len(read_duke(data).gallery) == 4
    assert read_duke(data, cache=False) == read_duke(data)


def test_index_cache_not_trusted_for_fresh_changes(tmp_path):
    data = build_duke(tmp_path / "duke")
    read_duke(data)  # fresh folders: written, but inside the racy window
    for f in (data / "query").iterdir():
        if f.name.startswith("0008"):
            f.unlink()
    assert [s.pid for s in read_duke(data).query] == [5]


def test_unwritable_cache_is_ignored(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("REIDCORE_CACHE", str(blocker))
    assert len(read_duke(build_duke(tmp_path / "d")).train) == 4
