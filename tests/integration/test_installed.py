"""With every first-party distribution installed (nox -s tests): what users see."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import pytest

from reidcore import registry


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reidcore", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_plugins_lists_every_distribution_and_what_it_registers():
    res = cli("plugins")
    assert res.returncode == 0, res.stderr
    lines = {line.split()[0]: line for line in res.stdout.splitlines()[1:]}
    assert "reid-datasets" in lines["datasets"] and "market1501" in lines["datasets"]
    assert "synthetic" in lines["datasets"]
    assert "reid-trinet" in lines["trinet"] and "recipes: trinet" in lines["trinet"]
    assert "backbones: mobilenet_v2, resnet18, resnet50" in lines["reidcore"]


def test_method_plugins_have_entry_points():
    for dist in ("reid-pse", "reid-san"):
        d = metadata.distribution(dist)
        assert [ep for ep in d.entry_points if ep.group == "reidcore"], dist


def test_list_recipes_and_unknown_names():
    res = cli("list", "recipes")
    assert res.returncode == 0
    assert {"trinet", "dcnn"} <= {line.split()[0] for line in res.stdout.splitlines()}
    res = cli("run", "trinett", "--dataset", "synthetic")
    assert res.returncode == 2
    assert "Unknown recipe 'trinett'" in res.stderr and "Did you mean 'trinet'?" in res.stderr
    res = cli("run", "trinet", "--dataset", "market1051", "--iterations", "1")
    assert "Did you mean 'market1501'?" in res.stderr


def test_trinet_run_help_lists_recipe_flags_without_torch():
    code = ("import sys\nfrom reidcore.cli import main\ntry:\n    main(['run', 'trinet', '--help'])\n"
            "except SystemExit:\n    pass\nassert 'torch' not in sys.modules\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    for flag in ("--margin", "--batch-p", "--decay-start-iteration", "--pretrained"):
        assert flag in res.stdout
    assert "[18]" in res.stdout and "[25000]" in res.stdout


@pytest.mark.slow
def test_trinet_on_synthetic_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("REIDCORE_CACHE", str(tmp_path / "cache"))
    exp = tmp_path / "exp"
    res = subprocess.run(
        [sys.executable, "-m", "reidcore", "run", "trinet", "--dataset", "synthetic",
         "--backbone", "resnet18", "--pretrained", "none", "--height", "64", "--width", "32",
         "--batch-p", "6", "--batch-k", "2", "--iterations", "3", "--workers", "0",
         "--experiment", str(exp)],
        capture_output=True, text=True, timeout=600,
        env={**__import__("os").environ, "REIDCORE_CACHE": str(tmp_path / "cache")},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((exp / "report.json").read_text())
    assert report["recipe"] == "trinet" and report["num_valid_queries"] > 0
    assert "rank-1" in res.stdout


@pytest.mark.parametrize("name", registry.list_models())
def test_registry_wide_model_contract(name):
    from reidcore.testing import check_model_contract

    check_model_contract(name, backbone="resnet18", pretrained="none")


def test_list_recipes_shows_defaults():
    out = cli("list", "recipes").stdout
    dcnn = next(line for line in out.splitlines()[1:] if "--batch-p 8" in line)
    assert "--optimizer sgd" in dcnn and "--alpha 1.0" in dcnn and "--flip-augment" in dcnn
