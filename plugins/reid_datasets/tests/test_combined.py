"""``combined``: several datasets' training parts with disjoint pids; a CLI run on fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from dataset_fixtures import build_duke, build_market1501, build_mars
from reid_datasets.combined import parse_spec, read_combined

from reidcore import registry
from reidcore.errors import DatasetError, UnknownNameError


def test_parse_spec():
    assert parse_spec("market1501=/a, duke=~/b,synthetic=") == [
        ("market1501", "/a"),
        ("duke", "~/b"),
        ("synthetic", None),
    ]
    for bad in ("/just/a/folder", "=x", " , "):
        with pytest.raises(DatasetError, match="NAME=DIR"):
            parse_spec(bad)


def test_combined_disjoint_pids(tmp_path):
    market = build_market1501(tmp_path / "m")
    duke = build_duke(tmp_path / "d")
    mars = build_mars(tmp_path / "v")
    registry.clear_cache()
    split = registry.load_dataset("combined", f"market1501={market},duke={duke},mars={mars}")
    assert split.name == "combined"
    # market train pids 2, 7 -> 1, 2; duke 1, 3 -> 3, 4; mars 1, 3 -> 5, 6
    assert [s.pid for s in split.train][:8] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert split.train_pids == [1, 2, 3, 4, 5, 6]
    assert split.train_labels[:4] == [0, 0, 1, 1]
    first = split.train[4]
    assert first.extras == {"dataset": "duke", "original_pid": 1}
    assert split.train[-1].extras == {"tracklet": 3, "dataset": "mars", "original_pid": 3}
    market_split = registry.load_dataset("market1501", market)
    assert split.query == market_split.query and split.gallery == market_split.gallery
    same = read_combined(datasets={"market1501": market, "duke": duke, "mars": mars})
    assert same.train == split.train


def test_combined_errors(tmp_path):
    with pytest.raises(DatasetError, match="needs its members"):
        read_combined(None)
    with pytest.raises(DatasetError, match="cannot be 'combined'"):
        read_combined("combined=x")
    with pytest.raises(UnknownNameError, match="Unknown dataset 'dukee'"):
        read_combined(f"market1501={build_market1501(tmp_path)},dukee={tmp_path}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"member 'duke': .*not a DukeMTMC-reID folder"):
        read_combined(f"market1501={tmp_path},duke={tmp_path / 'empty'}")


@pytest.mark.slow
def test_trinet_run_on_combined_fixtures(tmp_path):
    market = build_market1501(tmp_path / "m")
    duke = build_duke(tmp_path / "d")
    exp = tmp_path / "exp"
    env = {**os.environ, "REIDCORE_CACHE": str(tmp_path / "cache")}
    res = subprocess.run(
        [sys.executable, "-m", "reidcore", "run", "trinet", "--dataset", "combined",
         "--data", f"market1501={market},duke={duke}", "--backbone", "resnet18",
         "--pretrained", "none", "--height", "32", "--width", "16", "--batch-p", "4",
         "--batch-k", "2", "--iterations", "2", "--workers", "0", "--device", "cpu",
         "--experiment", str(exp)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((exp / "report.json").read_text())
    assert report["dataset"] == "combined" and report["num_valid_queries"] >= 1
    log = (exp / "log.txt").read_text() if (exp / "log.txt").exists() else res.stderr
    assert "combined: train 4 ids, 8 images" in log + res.stdout + res.stderr
