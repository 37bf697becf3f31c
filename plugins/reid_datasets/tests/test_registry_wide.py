"""Every registered dataset loads from its fixture (``dataset_fixtures.BUILDERS``) and yields
samples with a valid pid and camid and a readable image; reads twice (the second time from
the parsed-index cache) give the same split; a missing folder is reported with the layout."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import BUILDERS, EXPECT, Expect
from PIL import Image

from reidcore import registry
from reidcore.data import Split
from reidcore.errors import DatasetError


def age(root: Path, seconds: float = 60) -> None:
    old = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.utime(os.path.join(dirpath, n), (old, old))


registry.clear_cache()
NAMES = registry.list_datasets()
PLUGIN = {name: registry.registry("dataset").entry(name).plugin for name in NAMES}


def same_extras(a: dict, b: dict) -> bool:
    """Equal extras, comparing arrays (keypoints) by value."""
    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k] for k in a
    )


def test_cli_lists_the_same_datasets():
    res = subprocess.run(
        [sys.executable, "-m", "reidcore", "list", "datasets"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert [line.split()[0] for line in res.stdout.splitlines()] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_dataset_loads_from_its_fixture(name, tmp_path, caplog):
    if name not in BUILDERS:
        if PLUGIN[name] == "datasets":
            pytest.fail(f"reid-datasets registers {name!r} but dataset_fixtures has no builder")
        pytest.skip(f"{name!r} comes from plugin {PLUGIN[name]!r}; add a builder to BUILDERS")
    build, kwargs = BUILDERS[name]
    root = build(tmp_path / "data")
    age(tmp_path / "data")  # out of the cache's racy window: the second read uses the index
    registry.clear_cache()
    with caplog.at_level("INFO", logger="reidcore"):
        split = registry.load_dataset(name, root, **kwargs)
    assert isinstance(split, Split)
    assert any(r.getMessage().startswith(split.summary()) for r in caplog.records)
    assert "\n" not in split.summary()
    expect = EXPECT.get(name, Expect())
    assert all(getattr(split, part) for part in expect.parts), expect.parts
    assert sorted(set(split.train_labels)) == list(range(split.num_train_pids))
    assert all(s.pid >= expect.min_train_pid for s in split.train)
    for part in (split.train, split.query, split.gallery):
        for s in part:
            assert isinstance(s.pid, int) and s.pid >= -1, s
            assert isinstance(s.camid, int) and s.camid >= 0, s
            assert Path(s.path).is_absolute(), s
            assert set(expect.extras) <= set(s.extras), s
            with Image.open(s.path) as img:
                img.convert("RGB").load()
    if expect.index_cache:  # (the synthetic datasets' generated annotations.csv is their index)
        assert list(Path(os.environ["REIDCORE_CACHE"]).glob("index/*.json"))
    again = registry.load_dataset(name, root, **kwargs)  # from the index cache
    for part in ("train", "query", "gallery"):
        assert getattr(again, part) == getattr(split, part)
        for a, b in zip(getattr(again, part), getattr(split, part), strict=True):
            assert same_extras(a.extras, b.extras), (a, b)


@pytest.mark.parametrize(
    "name", [n for n in NAMES if n != "combined" and not n.startswith("synthetic")]
)  # (the embedded synthetic datasets and their variants generate into any folder)
def test_missing_folder_names_it_and_the_layout(name, tmp_path):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(DatasetError, match=r"no-such-folder.*Expected layout"):
        registry.load_dataset(name, missing)
    with pytest.raises(DatasetError, match=r"--data DIR"):
        registry.load_dataset(name, None)
