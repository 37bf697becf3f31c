"""reidcore.testing with the first-party plugins installed: a recipe run on the tiny dataset."""

from __future__ import annotations

import pytest

from reidcore import plugins as plugins_mod
from reidcore import registry
from reidcore.testing import registered_plugin, run_recipe, write_tiny_market


def test_registering_an_installed_plugin_does_not_clash():
    import reid_trinet.plugin

    plugins_mod.reset()
    with registered_plugin(reid_trinet.plugin, "trinet-under-test"):
        assert registry.registry("recipe").entry("trinet").plugin == "trinet"
    assert "trinet" in registry.list_recipes()


@pytest.mark.slow
def test_run_recipe_trains_trinet_on_the_tiny_market_folder(tmp_path):
    data = write_tiny_market(tmp_path / "market")
    run = run_recipe("trinet", data, "--margin", "0.3", experiment=tmp_path / "exp")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.report["dataset"] == "market1501" and run.report["num_valid_queries"] == 8
    assert run.report["train"]["iteration"] == 2
    assert (run.experiment / "embeddings" / "query.h5").is_file()
    assert not list(run.experiment.glob("events.out.tfevents*"))  # --no-tensorboard
    assert list((tmp_path / "reidcore-cache" / "index").glob("market1501-*.json"))


def test_run_recipe_reports_bad_input(tmp_path):
    run = run_recipe("trinet", tmp_path / "missing", experiment=tmp_path / "exp")
    assert run.returncode == 2 and run.report is None
    assert str(tmp_path / "missing") in run.stderr
