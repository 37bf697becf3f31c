"""CUHK03: the real new-protocol split files, and a tiny MATLAB v7.3 release fixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import (
    CUHK03_IDS,
    CUHK03_TESTSETS,
    build_cuhk03,
    cuhk03_image,
    cuhk03_images,
    write_cuhk03_protocol,
)
from PIL import Image
from reid_datasets import cuhk03
from reid_datasets.cuhk03 import extract_images, parse_new_protocol, read_cuhk03, read_testsets

from reidcore import registry
from reidcore.errors import DatasetError

PROTOCOL = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "cuhk03-protocol"


@pytest.mark.skipif(
    not PROTOCOL.is_dir(), reason=f"real CUHK03 split files not found at {PROTOCOL}"
)
@pytest.mark.parametrize(
    "variant, counts", [("labeled", (7368, 1400, 5328)), ("detected", (7365, 1400, 5332))]
)
def test_real_new_protocol_files(variant, counts):
    parts = parse_new_protocol(PROTOCOL / f"cuhk03_new_protocol_config_{variant}.mat")
    assert tuple(len(parts[p]) for p in ("train", "query", "gallery")) == counts
    assert len({pid for _, pid, _ in parts["train"]}) == 767
    test_ids = {pid for _, pid, _ in parts["query"]}
    assert len(test_ids) == 700 and {pid for _, pid, _ in parts["gallery"]} == test_ids
    assert not test_ids & {pid for _, pid, _ in parts["train"]}
    everything = [row for rows in parts.values() for row in rows]
    assert parts["train"][0] == ("1_001_1_01.png", 1, 0)
    for image, pid, camid in everything:  # names agree with labels and camId
        pair, ident, view, _ = (int(x) for x in image[:-4].split("_"))
        offset = sum((843, 440, 77, 58, 49)[: pair - 1])
        assert (pid, camid) == (offset + ident, view - 1)
    # one query per test identity and camera, as the protocol defines
    assert len({(pid, camid) for _, pid, camid in parts["query"]}) == 1400


def test_extraction_reproduces_the_release_images(tmp_path):
    build_cuhk03(tmp_path)
    split = read_cuhk03(tmp_path, variant="labeled")
    folder = tmp_path / "images_labeled"
    expected = cuhk03_images("labeled")
    assert sorted(p.name for p in folder.iterdir()) == sorted(n for n, _, _ in expected)
    assert "1_002_2_09.png" not in {p.name for p in folder.iterdir()}  # an empty cell
    with Image.open(folder / "2_001_2_07.png") as img:
        assert np.array_equal(np.asarray(img), cuhk03_image("labeled", 2, 1, 7))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder
    assert not (tmp_path / "images_detected").exists()  # only the variant asked for
    assert all(Path(s.path).parent == folder for s in split.train)


def test_new_protocol_on_fixture(tmp_path):
    build_cuhk03(tmp_path)
    for variant in ("labeled", "detected"):
        names = write_cuhk03_protocol(tmp_path / "check.mat", variant)
        split = read_cuhk03(tmp_path, variant=variant)
        assert split.name == f"cuhk03-{variant}"
        for part in ("train", "query", "gallery"):
            assert [Path(s.path).name for s in getattr(split, part)] == names[part]
        assert split.train_pids == [1, 2, 4, 6]
        assert {s.pid for s in split.query} == {s.pid for s in split.gallery} == {3, 5, 7, 8}
        assert {s.camid for s in split.query} == {0, 1}
        by_name = {n: (p, c) for n, p, c in cuhk03_images(variant)}
        for s in split.train + split.query + split.gallery:
            assert (s.pid, s.camid) == by_name[Path(s.path).name]
    assert len(read_cuhk03(tmp_path).train) == len(read_cuhk03(tmp_path, variant="detected").train)


def test_registered_names(tmp_path):
    build_cuhk03(tmp_path)
    registry.clear_cache()
    assert registry.load_dataset("cuhk03-labeled", tmp_path).name == "cuhk03-labeled"
    assert registry.load_dataset("cuhk03-detected", tmp_path).name == "cuhk03-detected"
    assert registry.load_dataset("cuhk03", tmp_path).name == "cuhk03-detected"
    split = registry.load_dataset("cuhk03-classic-labeled", tmp_path, split_id=1)
    assert split.name == "cuhk03-classic-labeled" and {s.pid for s in split.query} == {1, 8}


def test_classic_splits(tmp_path):
    build_cuhk03(tmp_path)
    assert read_testsets(tmp_path / "cuhk03_release" / "cuhk-03.mat") == CUHK03_TESTSETS
    split = read_cuhk03(tmp_path, variant="labeled", protocol="classic", split_id=0)
    # test identities (1, 3) -> pid 3 and (2, 1) -> pid 4
    assert {s.pid for s in split.query} == {s.pid for s in split.gallery} == {3, 4}
    assert {s.camid for s in split.query} == {0} and {s.camid for s in split.gallery} == {1}
    assert split.train_pids == [1, 2, 5, 6, 7, 8]
    total = sum(CUHK03_IDS) * 10 - 1  # one empty labeled cell
    assert len(split.train) + len(split.query) + len(split.gallery) == total
    assert split.name == "cuhk03-classic-labeled"


def test_images_extracted_once(tmp_path, monkeypatch):
    build_cuhk03(tmp_path)
    read_cuhk03(tmp_path, variant="labeled")

    def fail(*a, **k):
        raise AssertionError("extracted again")

    monkeypatch.setattr(cuhk03, "extract_images", fail)
    assert len(read_cuhk03(tmp_path, variant="labeled", cache=False).query) == 8
    # with the images there, the release file is not needed for the new protocol
    (tmp_path / "cuhk03_release" / "cuhk-03.mat").unlink()
    assert len(read_cuhk03(tmp_path, variant="labeled", cache=False).query) == 8


def test_interrupted_extraction_leaves_nothing(tmp_path, monkeypatch):
    build_cuhk03(tmp_path)
    saved = []

    def save(self, path, *a, **k):
        if len(saved) == 5:
            raise KeyboardInterrupt
        saved.append(path)

    monkeypatch.setattr(Image.Image, "save", save)
    with pytest.raises(KeyboardInterrupt):
        read_cuhk03(tmp_path, variant="labeled")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cuhk03_new_protocol_config_detected.mat",
        "cuhk03_new_protocol_config_labeled.mat",
        "cuhk03_release",
    ]


def test_errors(tmp_path):
    with pytest.raises(DatasetError, match="--data DIR"):
        read_cuhk03(None)
    with pytest.raises(DatasetError, match="variant must be one of"):
        read_cuhk03(tmp_path, variant="hand")
    with pytest.raises(DatasetError, match="split_id must be 0..19"):
        read_cuhk03(tmp_path, protocol="classic", split_id=20)
    with pytest.raises(DatasetError, match=r"Missing new-protocol split file .*labeled\.mat"):
        read_cuhk03(tmp_path, variant="labeled")
    build_cuhk03(tmp_path)
    (tmp_path / "cuhk03_release" / "cuhk-03.mat").rename(tmp_path / "elsewhere.mat")
    with pytest.raises(DatasetError, match=r"Missing .*cuhk03_release/cuhk-03\.mat.*extract"):
        read_cuhk03(tmp_path)
    (tmp_path / "cuhk03_release" / "cuhk-03.mat").write_bytes(b"not hdf5")
    with pytest.raises(DatasetError, match=r"Cannot read .*cuhk-03\.mat as a MATLAB v7\.3"):
        read_cuhk03(tmp_path)
    with pytest.raises(DatasetError, match=r"Missing new-protocol split file"):
        parse_new_protocol(tmp_path / "nope.mat")
    (tmp_path / "bad.mat").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match=r"Cannot read .*bad\.mat"):
        parse_new_protocol(tmp_path / "bad.mat")


def test_listed_image_missing_and_wrong_structure(tmp_path):
    build_cuhk03(tmp_path)
    read_cuhk03(tmp_path, variant="labeled")
    (tmp_path / "images_labeled" / "1_001_1_01.png").unlink()
    with pytest.raises(DatasetError, match=r"lists 1_001_1_01\.png, which is not in .*delete"):
        read_cuhk03(tmp_path, variant="labeled", cache=False)
    import h5py

    bad = tmp_path / "bad.mat"
    with h5py.File(bad, "w") as f:
        f["labeled"] = np.zeros((1, 5))
    with pytest.raises(DatasetError, match=r"has no 'detected'"):
        extract_images(bad, "detected", tmp_path / "out")
    assert not (tmp_path / "out").exists()
