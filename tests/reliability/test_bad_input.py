"""Bad data fails before training, naming the culprit: corrupt images (train, query,
gallery), a dataset the evaluation protocol cannot score (one camera, no query)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from reidcore.cli import main
from reidcore.data import verify
from reidcore.data.records import Sample, Split
from reidcore.errors import DatasetError, EvaluationError
from reidcore.evaluation.protocols import EXCLUDERS, check_queries

sys.path.insert(0, str(Path(__file__).parent.parent))  # tiny_plugin

TINY = ["--height", "32", "--width", "16", "--batch-p", "3", "--batch-k", "2", "--pad", "2",
        "--workers", "2", "--log-every", "1", "--pretrained", "none", "--lr", "0.01",
        "--embed-batch-size", "16", "--iterations", "4"]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Image checks are cached in a fresh $REIDCORE_CACHE, never ~/.cache."""
    monkeypatch.setenv("REIDCORE_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def plugin():
    import tiny_plugin

    from reidcore.testing import registered_plugin

    with registered_plugin(tiny_plugin, "tiny"):
        yield tiny_plugin


def _run(data: Path, exp: Path, verb: str = "run") -> int:
    return main([verb, "tiny", "--dataset", "tiny", "--data", str(data), "--experiment",
                 str(exp), *TINY])


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("folder", ["bounding_box_train", "query", "bounding_box_test"])
def test_corrupt_image_fails_before_training(plugin, tmp_path, capsys, folder):
    data = plugin.write_tiny_dataset(tmp_path / "data")
    bad = sorted((data / folder).glob("*.jpg"))[1]
    _truncate(bad)
    exp = tmp_path / "exp"
    assert _run(data, exp) == 2
    err = capsys.readouterr().err
    part = {"bounding_box_train": "train", "query": "query", "bounding_box_test": "gallery"}[folder]
    assert f"cannot decode image {bad}" in err and f"({part} 1)" in err
    assert "Traceback" not in err and "DataLoader" not in err
    assert not exp.exists()  # nothing trained, no experiment folder left behind


def test_many_bad_files_are_counted_and_ten_listed(plugin, tmp_path, capsys):
    data = plugin.write_tiny_dataset(tmp_path / "data")
    train = sorted((data / "bounding_box_train").glob("*.jpg"))
    for p in train[:12]:
        p.write_bytes(b"not an image")
    split = plugin.read_tiny(data)
    Path(split.gallery[0].path).write_bytes(b"")  # emptied after the reader indexed it
    with pytest.raises(DatasetError) as info:
        verify.verify_split(split)
    msg = str(info.value)
    assert msg.startswith(f"13 of {len(split.train) + len(split.query) + len(split.gallery)} "
                          "images of dataset 'tiny' cannot be read (train 12, gallery 1)")
    assert msg.count("cannot decode image") == verify.MAX_LISTED
    assert "and 3 more" in msg and str(train[0]) in msg


def test_single_camera_dataset_fails_before_training(plugin, tmp_path, capsys):
    data = plugin.write_tiny_dataset(tmp_path / "data", cams=1)
    exp = tmp_path / "exp"
    assert _run(data, exp) == 2
    err = capsys.readouterr().err
    assert "No valid query" in err and "single-camera" in err and "'tiny'" in err
    assert not exp.exists()
    # training alone does not evaluate: a single camera is fine there
    assert _run(data, exp, verb="train") == 0


def test_empty_query_set_fails_before_training(plugin, tmp_path, capsys, monkeypatch):
    data = plugin.write_tiny_dataset(tmp_path / "data")
    split = plugin.read_tiny(data)
    monkeypatch.setattr(plugin, "read_tiny", lambda root, **kw: Split("tiny", split.train, [],
                                                                        split.gallery))
    from reidcore.registry import clear_cache

    clear_cache()
    try:
        exp = tmp_path / "exp"
        assert _run(data, exp) == 2
        assert "the query set of dataset 'tiny' is empty" in capsys.readouterr().err
        assert not exp.exists()
    finally:
        clear_cache()


def test_checks_are_cached_by_size_and_mtime(plugin, tmp_path, monkeypatch):
    data = plugin.write_tiny_dataset(tmp_path / "data")
    paths = sorted(str(p) for p in data.rglob("*.jpg"))
    checked: list[str] = []
    real = verify.check_image

    def counting(path):
        checked.append(str(path))
        return real(path)

    monkeypatch.setattr(verify, "check_image", counting)
    monkeypatch.setattr(verify, "RACY_NS", 0)  # the files were written just now
    assert verify.find_bad_images(paths) == {}
    assert sorted(checked) == paths
    checked.clear()
    assert verify.find_bad_images(paths) == {}
    assert checked == []  # second run: nothing decoded
    _truncate(Path(paths[3]))
    bad = verify.find_bad_images(paths)
    assert checked == [paths[3]] and list(bad) == [paths[3]]
    checked.clear()
    assert list(verify.find_bad_images(paths)) == [paths[3]]  # bad files are never cached
    assert checked == [paths[3]]


def test_check_image_accepts_png_and_names_truncated_png(tmp_path):
    from PIL import Image

    good = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 4, 3), np.uint8)).save(good)
    assert verify.check_image(good) is None
    bad = tmp_path / "b.png"
    bad.write_bytes(good.read_bytes()[:-20])
    assert str(bad) in verify.check_image(bad)
    assert "not found" in verify.check_image(tmp_path / "missing.jpg")


def _ids(*pairs):
    return np.array([p for p, _ in pairs]), np.array([c for _, c in pairs])


def test_check_queries_matches_the_evaluator():
    from reidcore.evaluation import evaluate

    rng = np.random.default_rng(0)
    for _ in range(30):
        qp, qc = rng.integers(-1, 4, 6), rng.integers(0, 2, 6)
        gp, gc = rng.integers(-1, 4, 6), rng.integers(0, 2, 6)
        for name in EXCLUDERS:
            try:
                n = evaluate(rng.random((6, 6)), qp, gp, qc, gc, excluder=name).num_valid_queries
            except EvaluationError:
                n = 0
            if n:
                assert check_queries(qp, qc, gp, gc, name) == n
            else:
                with pytest.raises(EvaluationError, match="No valid query"):
                    check_queries(qp, qc, gp, gc, name)


def test_check_queries_messages():
    qp, qc = _ids((1, 0), (2, 0))
    gp, gc = _ids((1, 0), (2, 0))
    with pytest.raises(EvaluationError, match="single-camera"):
        check_queries(qp, qc, gp, gc, "market1501", where="dataset 'x'")
    assert check_queries(qp, qc, gp, gc, "none") == 2
    with pytest.raises(EvaluationError, match="query set of dataset 'x' is empty"):
        check_queries(qp[:0], qc[:0], gp, gc, where="dataset 'x'")
    with pytest.raises(EvaluationError, match="gallery of the dataset is empty"):
        check_queries(qp, qc, gp[:0], gc[:0])
    with pytest.raises(ValueError, match="diagonal"):
        check_queries(qp, qc, gp[:1], gc[:1], "diagonal")


def test_check_queries_with_a_plugin_excluder(monkeypatch):
    from reidcore.evaluation import protocols

    def exclude_everything(q_pid, q_camid, g_pids, g_camids, q_index):
        return np.ones(len(g_pids), dtype=bool)

    monkeypatch.setitem(protocols.EXCLUDERS, "all", exclude_everything)
    qp, qc = _ids((1, 0))
    gp, gc = _ids((1, 1))
    assert check_queries(qp, qc, gp, gc, "market1501") == 1
    with pytest.raises(EvaluationError, match="excluded by the 'all' excluder"):
        check_queries(qp, qc, gp, gc, "all")


def test_video_split_skips_the_frame_level_query_check(tmp_path):
    """Video queries are pooled into tracklets first; the evaluator checks those."""
    from PIL import Image

    img = tmp_path / "0001_c1s1_000000_00.jpg"
    Image.fromarray(np.zeros((8, 4, 3), np.uint8)).save(img)
    frames = [Sample(str(img), 1, 0, {"tracklet": 0})]
    verify.verify_split(Split("v", frames, frames, frames), "market1501")  # one camera
    with pytest.raises(EvaluationError):
        verify.verify_split(Split("i", [Sample(str(img), 1, 0)], [Sample(str(img), 1, 0)],
                                  [Sample(str(img), 1, 0)]), "market1501")


def test_load_summary_counts_skipped_file_names(tmp_path, caplog):
    pytest.importorskip("reid_datasets")
    import logging
    import os
    import time

    from reid_datasets.market1501 import read_market1501

    from reidcore.testing import write_tiny_market

    data = write_tiny_market(tmp_path / "market")
    (data / "query" / "Thumbs.db").write_bytes(b"x")
    (data / "bounding_box_train" / "notes.txt").write_text("x")
    old = time.time() - 10  # older than the index's racy window, so the index is reused
    for sub in ("query", "bounding_box_train", "bounding_box_test"):
        os.utime(data / sub, (old, old))
    for cached_run in (False, True):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="reidcore"):
            read_market1501(data)
        line = next(r.getMessage() for r in caplog.records if "skipped" in r.getMessage())
        assert "skipped 2 files not named like the dataset's images" in line
        assert "notes.txt" in line and "Thumbs.db" in line
        assert ("index cached in" in line) == cached_run
    (data / "query" / "Thumbs.db").unlink()
    (data / "bounding_box_train" / "notes.txt").unlink()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="reidcore"):
        read_market1501(data, cache=False)
    assert "market1501: train" in caplog.text and "skipped" not in caplog.text


def test_stage_dataset_is_checked_before_the_stage_trains(plugin, tmp_path, capsys):
    """A staged recipe whose first stage trains on another data folder (as PSE's view
    predictor can train on RAP): that folder's images are checked before the stage trains."""
    import types

    import attrs

    from reidcore.hookspecs import hookimpl
    from reidcore.recipe import Stage
    from reidcore.testing import registered_plugin

    data = plugin.write_tiny_dataset(tmp_path / "data")
    other = plugin.write_tiny_dataset(tmp_path / "other", seed=1)
    bad = sorted((other / "bounding_box_train").glob("*.jpg"))[0]
    _truncate(bad)

    class OtherFirst(plugin.TinyRecipe):
        name = "tiny-other-first"

        def stages(self, cfg):
            first = attrs.evolve(cfg, data=str(other), iterations=2)
            return [Stage("1-other", "tiny", first), Stage("2-main", "tiny", cfg)]

    @hookimpl
    def reid_recipes():
        return {"tiny-other-first": OtherFirst}

    exp = tmp_path / "exp"
    with registered_plugin(types.SimpleNamespace(reid_recipes=reid_recipes), "other-first"):
        code = main(["run", "tiny-other-first", "--dataset", "tiny", "--data", str(data),
                     "--experiment", str(exp), *TINY])
    assert code == 2
    assert f"cannot decode image {bad}" in capsys.readouterr().err
    assert not (exp / "stages" / "1-other" / "checkpoints").exists()
