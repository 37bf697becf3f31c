"""How a plugin author tests a plugin with reidcore.testing's fixtures."""

from __future__ import annotations

import pytest
import torch

from reidcore.registry import create_loss, list_models


@pytest.mark.parametrize("name", ["example-net"])
def test_model_contract(name, reid_model_contract):
    assert name in list_models()
    reid_model_contract(name, backbone="resnet18", pretrained="none")


def test_contrastive_loss_is_zero_for_perfect_separation():
    loss = create_loss("contrastive", margin=1.0)
    emb = torch.tensor([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0], [5.0, 0.0]])
    pids = torch.tensor([1, 1, 2, 2])
    assert loss({"embedding": emb}, pids).item() == pytest.approx(0.0, abs=1e-6)


def test_tiny_split_fixture(reid_tiny_split):
    assert reid_tiny_split.num_train_pids == 4 and len(reid_tiny_split.query) == 8


def test_registering_the_installed_plugin_again_is_harmless(reid_register_plugin):
    import reid_example.plugin

    reid_register_plugin(reid_example.plugin, "example")  # already loaded from its entry point
    assert "example-net" in list_models()


def test_example_recipe_runs_on_the_tiny_market_folder(reid_tiny_market, reid_run_recipe):
    run = reid_run_recipe("example", reid_tiny_market, "--margin", "0.5",
                          dataset="example-colours")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.report["recipe"] == "example" and run.report["num_valid_queries"] == 8
