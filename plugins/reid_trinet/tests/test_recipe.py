"""TriNet recipe: the paper's defaults (Hermans et al. 2017, Sec. 4), builders, no torch import."""

from __future__ import annotations

import subprocess
import sys

import attrs
import pytest
from reid_trinet.recipe import TriNetConfig, TriNetRecipe, parse_margin_text

from reidcore.recipe import TrainConfig

PAPER = {
    "batch_p": 18,
    "batch_k": 4,
    "height": 256,
    "width": 128,
    "optimizer": "adam",
    "lr": 3e-4,
    "iterations": 25000,
    "decay_start_iteration": 15000,
    "schedule": "trinet",
    "model": "trinet",
    "backbone": "resnet50",
    "pretrained": "imagenet",
    "embedding_dim": 128,
    "head_dim": 1024,
    "loss": "batch_hard",
    "margin": "soft",
    "triplet_metric": "euclidean",
    "id_loss_weight": 0.0,
    "label_smoothing": 0.0,
}


def test_defaults_equal_the_paper():
    cfg = TriNetRecipe().default_config()
    assert isinstance(cfg, TriNetConfig) and isinstance(cfg, TrainConfig)
    for name, value in PAPER.items():
        assert getattr(cfg, name) == value, name


def test_recipe_metadata_and_fields_have_help():
    recipe = TriNetRecipe()
    assert recipe.name == "trinet" and recipe.config_class is TriNetConfig
    assert recipe.description and "1703.07737" in recipe.paper
    for f in attrs.fields(TriNetConfig):
        assert f.metadata.get("help"), f.name
    with pytest.raises(TypeError):
        TriNetConfig(18)  # kw_only


def test_config_json_round_trip():
    cfg = TriNetConfig(margin="0.3", loss="batch_all", id_loss_weight=0.5)
    assert TriNetConfig.from_json(cfg.to_json()) == cfg


def test_recipe_module_imports_no_torch():
    code = "import reid_trinet.recipe, sys; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_parse_margin_text():
    assert parse_margin_text("soft") == "soft"
    assert parse_margin_text("0.2") == 0.2
    for bad in ("hard", "-1"):
        with pytest.raises(ValueError, match="margin"):
            parse_margin_text(bad)


def _needs_plugin():
    from reidcore import plugins, registry

    plugins.reset()
    if "batch_hard" not in registry.list_losses():
        pytest.skip("reid-trinet is not installed (pip install -e plugins/reid_trinet)")


def test_build_model_and_criterion():
    import torch

    _needs_plugin()
    recipe = TriNetRecipe()
    cfg = recipe.default_config(backbone="resnet18", pretrained="none", embedding_dim=32)
    model = recipe.build_model(cfg, num_classes=5)
    assert model.embedding_dim == 32 and model.classifier is None  # id_loss_weight = 0
    criterion = recipe.build_criterion(cfg)
    assert list(criterion.terms) == ["triplet"]
    assert criterion.terms["triplet"].margin == "soft"
    out = model(torch.randn(4, 3, 128, 64))
    loss, stats = criterion(out, torch.tensor([0, 0, 1, 1]))
    assert torch.isfinite(loss) and "triplet/active_fraction" in stats

    cfg = recipe.default_config(
        backbone="resnet18",
        pretrained="none",
        loss="batch_all",
        margin="0.5",
        triplet_metric="sqeuclidean",
        id_loss_weight=0.5,
        label_smoothing=0.1,
    )
    model = recipe.build_model(cfg, num_classes=5)
    assert model.classifier is not None and model.classifier.out_features == 5
    criterion = recipe.build_criterion(cfg)
    assert list(criterion.terms) == ["triplet", "id"] and criterion.weights["id"] == 0.5
    triplet = criterion.terms["triplet"]
    assert type(triplet).__name__ == "BatchAllTripletLoss"
    assert triplet.margin == 0.5 and triplet.metric == "sqeuclidean"
    assert criterion.terms["id"].label_smoothing == 0.1
    loss, stats = criterion(model(torch.randn(4, 3, 128, 64)), torch.tensor([0, 0, 1, 1]))
    loss.backward()
    assert torch.isfinite(loss) and "id/accuracy" in stats


def test_bad_margin_in_config_raises():
    _needs_plugin()
    with pytest.raises(ValueError, match="margin"):
        TriNetRecipe().build_criterion(TriNetConfig(margin="hard"))
