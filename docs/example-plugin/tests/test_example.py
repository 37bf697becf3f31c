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


def test_dataset_option_then_the_trained_model_and_its_evaluation(tmp_path, reid_run_recipe):
    from reidcore.embeddings import read_embeddings
    from reidcore.evaluation.evaluate_embeddings import evaluate_embeddings
    from reidcore.trained import load_trained

    # read_colours(root, num_ids=12, seed=0): its keyword parameters are --dataset-option keys
    run = reid_run_recipe("example", tmp_path / "colours", "--dataset-option", "num_ids=10",
                          dataset="example-colours")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.report["excluder"] == "market1501"  # the reader's reid_protocol
    # the one way to get a trained model (experiment folder, stage folder or checkpoint)
    trained = load_trained(run.experiment)
    assert trained.recipe_name == "example" and trained.config.margin == 1.0
    query = read_embeddings(run.experiment / "embeddings" / "query.h5")
    gallery = read_embeddings(run.experiment / "embeddings" / "gallery.h5")
    assert len(set(query.pids.tolist())) == 5  # 10 identities: 5 train, 5 query/gallery
    # the same scoring as run's report, with the experiment's own settings
    result = evaluate_embeddings(query, gallery, trained.settings())
    assert result["mAP"] == pytest.approx(run.report["mAP"])
    assert result["rank1"] == pytest.approx(run.report["rank1"])


def test_an_unknown_dataset_option_is_refused_before_training(tmp_path, reid_run_recipe):
    run = reid_run_recipe("example", tmp_path / "colours", "--dataset-option", "colour=red",
                          dataset="example-colours")
    assert run.returncode == 2 and "num_ids" in run.stderr  # the error lists the options
    assert not run.experiment.exists()
