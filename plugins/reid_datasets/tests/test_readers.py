"""Tests of the market1501, csv and folder readers on tiny fixtures built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from reid_datasets import plugin
from reid_datasets.csv_reader import read_csv
from reid_datasets.folder import read_folder
from reid_datasets.market1501 import read_market1501

from reidcore.data import Split
from reidcore.errors import DatasetError

HOLDOUT = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "market1501-holdout"


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff\xd9")  # content is never read by the readers
    return path


# ---------------------------------------------------------------- plugin


def test_plugin_registers_the_readers():
    targets = plugin.reid_datasets()
    assert {"csv", "folder", "market1501", "synthetic", "duke"} <= set(targets)
    import importlib

    for target in targets.values():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr))


def test_registered_through_reidcore():
    from reidcore import registry

    registry.clear_cache()
    assert {"csv", "folder", "market1501", "synthetic"} <= set(registry.list_datasets())


# ---------------------------------------------------------------- market1501


def market_fixture(root: Path) -> Path:
    for name in [
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000551_01.jpg",
        "0007_c3s1_000101_02.jpg",
        "0000_c1s1_000001_00.jpg",  # distractor: dropped from train
        "-1_c1s1_000002_00.jpg",  # junk: dropped from train
        "Thumbs.db",
        "notes.txt",
    ]:
        touch(root / "bounding_box_train" / name)
    for name in ["0001_c1s1_001051_00.jpg", "0003_c4s1_000001_00.jpg"]:
        touch(root / "query" / name)
    for name in [
        "0001_c2s1_000151_01.jpg",
        "0003_c6s1_000002_00.jpg",
        "0000_c1s1_000003_00.jpg",
        "-1_c5s1_000004_00.jpg",
        "Thumbs.db",
    ]:
        touch(root / "bounding_box_test" / name)
    return root


def test_market_reads_tiny_fixture(tmp_path):
    split = read_market1501(market_fixture(tmp_path))
    assert isinstance(split, Split) and split.name == "market1501"
    assert [(s.pid, s.camid) for s in split.train] == [(2, 0), (2, 1), (7, 2)]
    assert split.train_labels == [0, 0, 1]
    assert [(s.pid, s.camid) for s in split.query] == [(1, 0), (3, 3)]
    # junk and distractors kept in the gallery, sorted by file name
    assert [(s.pid, s.camid) for s in split.gallery] == [(-1, 4), (0, 0), (1, 1), (3, 5)]
    assert all(Path(s.path).is_absolute() and Path(s.path).exists() for s in split.gallery)
    assert split.train[0].path.endswith("0002_c1s1_000451_03.jpg")


def test_market_accepts_torchreid_parent_folder(tmp_path):
    market_fixture(tmp_path / "Market-1501-v15.09.15")
    split = read_market1501(tmp_path)
    assert len(split.train) == 3 and len(split.gallery) == 4


def test_market_root_none_says_pass_data(tmp_path):
    with pytest.raises(DatasetError, match="--data DIR"):
        read_market1501(None)


def test_market_missing_root(tmp_path):
    with pytest.raises(DatasetError, match=r"does not exist.*bounding_box_train"):
        read_market1501(tmp_path / "nope")


def test_market_folder_without_layout(tmp_path):
    touch(tmp_path / "images" / "a.jpg")
    touch(tmp_path / "other" / "b.jpg")
    with pytest.raises(DatasetError, match=r"not a Market-1501 folder.*bounding_box_test"):
        read_market1501(tmp_path)


def test_market_missing_query_folder(tmp_path):
    market_fixture(tmp_path)
    for f in (tmp_path / "query").iterdir():
        f.unlink()
    (tmp_path / "query").rmdir()
    with pytest.raises(DatasetError, match=r"Missing folder .*query"):
        read_market1501(tmp_path)


def test_market_empty_folder_is_named(tmp_path):
    market_fixture(tmp_path)
    for f in (tmp_path / "bounding_box_test").iterdir():
        f.unlink()
    touch(tmp_path / "bounding_box_test" / "Thumbs.db")
    with pytest.raises(DatasetError, match=r"bounding_box_test holds no image named like"):
        read_market1501(tmp_path)


def test_market_train_with_only_junk_is_an_error(tmp_path):
    market_fixture(tmp_path)
    for f in (tmp_path / "bounding_box_train").iterdir():
        if not f.name.startswith(("-1", "0000")):
            f.unlink()
    with pytest.raises(DatasetError, match=r"bounding_box_train holds no image"):
        read_market1501(tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not HOLDOUT.is_dir(), reason=f"real data not found at {HOLDOUT}")
def test_market_holdout_counts():
    split = read_market1501(HOLDOUT)
    assert (len(split.train), split.num_train_pids) == (8642, 501)
    assert (len(split.query), len({s.pid for s in split.query})) == (1076, 250)
    assert (len(split.gallery), len({s.pid for s in split.gallery})) == (3218, 246)
    for part in (split.train, split.query, split.gallery):
        assert {s.camid for s in part} == set(range(6))
    assert [s.path for s in split.train] == sorted(s.path for s in split.train)


# ---------------------------------------------------------------- csv


def csv_fixture(root: Path, third_column: bool = False) -> Path:
    lists = {
        "train.csv": [
            ("alice", "img/a1.jpg", 0),
            ("alice", "img/a2.jpg", 1),
            ("bob", "img/b1.jpg", 0),
        ],
        "query.csv": [("carol", "img/c1.jpg", 0), ("-1", "img/j1.jpg", 1)],
        "gallery.csv": [("carol", "img/c2.jpg", 1), ("dave", "img/d1.jpg", 2)],
    }
    for file, rows in lists.items():
        lines = []
        for identity, rel, cam in rows:
            touch(root / rel)
            lines.append(f"{identity},{rel}" + (f",{cam}" if third_column else ""))
        (root / file).write_text("\n".join(lines) + "\n")
    return root


def test_csv_maps_string_ids_deterministically(tmp_path):
    split = read_csv(csv_fixture(tmp_path))
    assert split.name == "csv"
    assert [s.pid for s in split.train] == [1, 1, 2]  # alice, bob, carol, dave -> 1..4
    assert [s.pid for s in split.query] == [3, -1]
    assert [s.pid for s in split.gallery] == [3, 4]
    assert {s.camid for s in split.train + split.query + split.gallery} == {0}
    assert split.train[0].path == str(tmp_path / "img" / "a1.jpg")


def test_csv_third_column_is_camid(tmp_path):
    split = read_csv(csv_fixture(tmp_path, third_column=True))
    assert [s.camid for s in split.train] == [0, 1, 0]
    assert [s.camid for s in split.gallery] == [1, 2]


def test_csv_int_ids_keep_values_and_junk_dropped_from_train(tmp_path):
    touch(tmp_path / "x" / "1.jpg")
    touch(tmp_path / "x" / "2.jpg")
    touch(tmp_path / "x" / "3.jpg")
    (tmp_path / "tr.csv").write_text("identity,path\n# comment\n\n17,x/1.jpg\n-1,x/2.jpg\n")
    (tmp_path / "q.csv").write_text("5,x/3.jpg\n")
    (tmp_path / "g.csv").write_text("zed,x/3.jpg\n5,x/1.jpg\n")
    split = read_csv(tmp_path, train_csv="tr.csv", query_csv="q.csv", gallery_csv="g.csv")
    assert [s.pid for s in split.train] == [17]
    assert [s.pid for s in split.gallery] == [18, 5]  # strings come after the largest int id


def test_csv_absolute_list_and_image_root(tmp_path):
    touch(tmp_path / "pics" / "p.jpg")
    lists = tmp_path / "lists"
    lists.mkdir()
    for part in ("train", "query", "gallery"):
        (lists / f"{part}.csv").write_text("a,p.jpg\n")
    split = read_csv(
        tmp_path,
        train_csv=lists / "train.csv",
        query_csv="lists/query.csv",
        gallery_csv=str(lists / "gallery.csv"),
        image_root="pics",
    )
    assert split.gallery[0].path == str(tmp_path / "pics" / "p.jpg")


def test_csv_root_none(tmp_path):
    with pytest.raises(DatasetError, match="--data DIR"):
        read_csv(None)


def test_csv_missing_list_file_is_named(tmp_path):
    csv_fixture(tmp_path)
    (tmp_path / "gallery.csv").unlink()
    with pytest.raises(DatasetError, match=r"Missing list file .*gallery\.csv.*identity,"):
        read_csv(tmp_path)


def test_csv_empty_list_file(tmp_path):
    csv_fixture(tmp_path)
    (tmp_path / "query.csv").write_text("identity,path\n\n")
    with pytest.raises(DatasetError, match=r"query\.csv lists no image"):
        read_csv(tmp_path)


@pytest.mark.parametrize(
    "line, message",
    [
        ("justone", "malformed line"),
        ("a,b.jpg,0,extra", "malformed line"),
        (",img/a1.jpg", "malformed line"),
        ("a,img/a1.jpg,cam3", "camid 'cam3'"),
    ],
)
def test_csv_malformed_line_names_file_and_line(tmp_path, line, message):
    csv_fixture(tmp_path)
    with open(tmp_path / "train.csv", "a") as f:
        f.write(line + "\n")
    with pytest.raises(DatasetError, match=rf"train\.csv:4: {message}"):
        read_csv(tmp_path)


def test_csv_missing_listed_image(tmp_path):
    csv_fixture(tmp_path)
    (tmp_path / "img" / "d1.jpg").unlink()
    with pytest.raises(DatasetError, match=r"gallery\.csv:2: listed image .*d1\.jpg does not"):
        read_csv(tmp_path)


# ---------------------------------------------------------------- folder


def folder_fixture(root: Path, train_dir: str = "train") -> Path:
    touch(root / train_dir / "0002" / "0002_c1s1_000451_03.jpg")
    touch(root / train_dir / "0002" / "0002_c3s1_000551_01.jpg")
    touch(root / train_dir / "0007" / "frame.png")  # no camera in the name -> 0
    touch(root / train_dir / "0007" / "Thumbs.db")
    touch(root / train_dir / "-1" / "-1_c1s1_000001_00.jpg")  # junk: dropped from train
    touch(root / "query" / "0001" / "0001_c2s1_001051_00.jpg")
    touch(root / "gallery" / "0001" / "0001_c4s1_000151_01.jpg")
    touch(root / "gallery" / "0000" / "0000_c6s1_000001_00.jpg")
    (root / "gallery" / "readme.txt").write_text("not an identity")
    return root


def test_folder_reads_prepare_py_layout(tmp_path):
    split = read_folder(folder_fixture(tmp_path))
    assert split.name == "folder"
    assert [(s.pid, s.camid) for s in split.train] == [(2, 0), (2, 2), (7, 0)]
    assert [(s.pid, s.camid) for s in split.query] == [(1, 1)]
    assert [(s.pid, s.camid) for s in split.gallery] == [(0, 5), (1, 3)]


def test_folder_train_all(tmp_path):
    folder_fixture(tmp_path, train_dir="train_all")
    with pytest.raises(DatasetError, match=r"train_dir='train_all'"):
        read_folder(tmp_path)
    assert len(read_folder(tmp_path, train_dir="train_all").train) == 3


def test_folder_string_identities(tmp_path):
    for part in ("train", "query", "gallery"):
        touch(tmp_path / part / "zoe" / "x.jpg")
        touch(tmp_path / part / "adam" / "y.jpg")
    split = read_folder(tmp_path)
    assert [s.pid for s in split.train] == [1, 2]


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="--data DIR"):
        read_folder(None)
    with pytest.raises(DatasetError, match=r"does not exist"):
        read_folder(tmp_path / "missing")
    folder_fixture(tmp_path)
    for f in (tmp_path / "query" / "0001").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=r"query holds no image.*<pid>"):
        read_folder(tmp_path)
