"""HDF5 embedding files: round trip, triplet-reid files, atomic writes, error messages."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import reidcore.embeddings as embeddings_module
from reidcore.embeddings import (
    Embeddings,
    EmbeddingsError,
    EmbeddingsNotFoundError,
    read_embeddings,
    write_embeddings,
)
from reidcore.errors import ReidError


def sample(n=5, d=4, a=None, seed=0):
    rng = np.random.default_rng(seed)
    out = dict(
        embs=rng.normal(size=(n, d)).astype(np.float32),
        pids=rng.integers(-1, 10, n),
        camids=rng.integers(0, 6, n),
        paths=[f"bounding_box_test/{i:04d}_c1s1_é.jpg" for i in range(n)],
    )
    if a is not None:
        out["augmented"] = rng.normal(size=(n, a, d)).astype(np.float32)
    return out


def test_round_trip(tmp_path):
    data = sample(a=3)
    path = tmp_path / "q.h5"
    meta = {"metric": "euclidean", "flip_augment": True, "epoch": 25, "lr": 3e-4,
            "mean": np.array([0.485, 0.456, 0.406])}
    write_embeddings(path, **data, attrs=meta)
    e = read_embeddings(path)
    assert isinstance(e, Embeddings) and len(e) == 5
    np.testing.assert_array_equal(e.embs, data["embs"])
    assert e.embs.dtype == np.float32
    np.testing.assert_array_equal(e.pids, data["pids"])
    np.testing.assert_array_equal(e.camids, data["camids"])
    assert e.pids.dtype == np.int64 and e.camids.dtype == np.int64
    assert e.paths == data["paths"] and all(type(p) is str for p in e.paths)
    np.testing.assert_array_equal(e.augmented, data["augmented"])
    assert e.attrs["metric"] == "euclidean" and type(e.attrs["metric"]) is str
    assert e.attrs["flip_augment"] is True
    assert e.attrs["epoch"] == 25 and type(e.attrs["epoch"]) is int
    assert e.attrs["lr"] == 3e-4
    np.testing.assert_array_equal(e.attrs["mean"], meta["mean"])
    assert e == read_embeddings(str(path))
    with h5py.File(path, "r") as f:
        assert set(f) == {"embs", "pids", "camids", "paths", "embs_augmented"}


def test_round_trip_without_augmented_and_empty(tmp_path):
    write_embeddings(tmp_path / "a.h5", **sample())
    assert read_embeddings(tmp_path / "a.h5").augmented is None
    write_embeddings(tmp_path / "empty.h5", np.zeros((0, 8)), [], [], [])
    e = read_embeddings(tmp_path / "empty.h5")
    assert e.embs.shape == (0, 8) and e.paths == [] and len(e.pids) == 0


def test_overwrites_existing_file(tmp_path):
    path = tmp_path / "e.h5"
    write_embeddings(path, **sample(seed=1))
    write_embeddings(path, **sample(n=3, seed=2))
    assert len(read_embeddings(path)) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["e.h5"]


def test_triplet_reid_file_with_only_embs(tmp_path):
    path = tmp_path / "market1501_query_embeddings.h5"
    embs = np.random.default_rng(0).normal(size=(4, 128)).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.create_dataset("embs", data=embs)
    e = read_embeddings(path)
    np.testing.assert_array_equal(e.embs, embs)
    assert e.pids is None and e.camids is None and e.paths is None and e.augmented is None
    assert e.attrs == {}


def _failing_create_dataset(original, fail_on):
    def create_dataset(self, name, *args, **kwargs):
        if name == fail_on:
            raise OSError("simulated disk full")
        return original(self, name, *args, **kwargs)

    return create_dataset


@pytest.mark.parametrize("fail_on", ["embs", "camids", "embs_augmented"])
def test_failure_mid_write_leaves_existing_file_intact(tmp_path, monkeypatch, fail_on):
    path = tmp_path / "gallery.h5"
    write_embeddings(path, **sample(seed=1))
    before = path.read_bytes()
    monkeypatch.setattr(h5py.Group, "create_dataset",
                        _failing_create_dataset(h5py.Group.create_dataset, fail_on))
    with pytest.raises(OSError, match="simulated disk full"):
        write_embeddings(path, **sample(n=7, a=2, seed=2))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["gallery.h5"]  # no temporary left
    monkeypatch.undo()
    assert len(read_embeddings(path)) == 5


def test_failure_at_rename_removes_temporary(tmp_path, monkeypatch):
    path = tmp_path / "gallery.h5"
    write_embeddings(path, **sample(seed=1))
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError("simulated rename failure")

    monkeypatch.setattr(embeddings_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename"):
        write_embeddings(path, **sample(n=7, seed=2))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["gallery.h5"]


def test_unstorable_attribute_names_key_and_leaves_nothing(tmp_path):
    path = tmp_path / "e.h5"
    with pytest.raises(TypeError, match="'nested'"):
        write_embeddings(path, **sample(), attrs={"nested": {"a": 1}})
    assert list(tmp_path.iterdir()) == []


def test_write_validates_shapes(tmp_path):
    data = sample()
    for key, bad, name in (("pids", [1, 2], "pids"), ("camids", np.zeros(6), "camids"),
                           ("paths", ["a"], "paths"), ("embs", np.zeros(5), "embs")):
        with pytest.raises(ValueError, match=name):
            write_embeddings(tmp_path / "e.h5", **{**data, key: bad})
    with pytest.raises(ValueError, match="augmented"):
        write_embeddings(tmp_path / "e.h5", **data, augmented=np.zeros((5, 2, 3)))
    assert list(tmp_path.iterdir()) == []


def test_write_into_missing_folder_names_it(tmp_path):
    with pytest.raises(EmbeddingsError, match="nowhere"):
        write_embeddings(tmp_path / "nowhere" / "e.h5", **sample())


def test_missing_file_names_it(tmp_path):
    path = tmp_path / "missing.h5"
    with pytest.raises(EmbeddingsNotFoundError, match="missing.h5") as exc:
        read_embeddings(path)
    assert isinstance(exc.value, ReidError) and isinstance(exc.value, FileNotFoundError)


def test_file_without_embs_names_file_and_datasets(tmp_path):
    path = tmp_path / "features.h5"
    with h5py.File(path, "w") as f:
        f["features"] = np.zeros((2, 3))
        f["labels"] = np.zeros(2)
    with pytest.raises(EmbeddingsError, match=r"features\.h5.*'embs'.*features, labels"):
        read_embeddings(path)


def test_not_an_hdf5_file_names_it(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not hdf5")
    with pytest.raises(EmbeddingsError, match="notes.h5"):
        read_embeddings(path)


def test_inconsistent_lengths_name_file_and_dataset(tmp_path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f["embs"] = np.zeros((3, 2), dtype=np.float32)
        f["pids"] = np.zeros(2, dtype=np.int64)
    with pytest.raises(EmbeddingsError, match=r"'pids'.*bad\.h5"):
        read_embeddings(path)
