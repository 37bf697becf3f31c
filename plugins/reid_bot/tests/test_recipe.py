"""The bot recipe pins the paper's defaults (Luo et al. 2019) and builds the right losses."""

from __future__ import annotations

import subprocess
import sys

import attrs
import pytest
import torch
from reid_bot.recipe import ITERATIONS_PER_EPOCH, BoTConfig, BoTRecipe, epochs

from reidcore.recipe import CriterionInfo, TrainConfig

PAPER = {
    "model": "bot",
    "backbone": "resnet50",
    "pretrained": "imagenet",
    "last_stride": 1,
    "neck_feat": "after",
    "height": 256,
    "width": 128,
    "pad": 10,
    "flip": True,
    "erasing_p": 0.5,
    "batch_p": 16,
    "batch_k": 4,
    "optimizer": "adam",
    "lr": 3.5e-4,
    "weight_decay": 5e-4,
    "schedule": "multistep",
    "gamma": 0.1,
    "warmup_factor": 0.1,  # 3.5e-5 -> 3.5e-4
    "margin": 0.3,
    "triplet_weight": 1.0,
    "id_loss_weight": 1.0,
    "label_smoothing": 0.1,
    "center_loss": False,
    "center_loss_weight": 0.0005,
    "center_lr": 0.5,
    "metric": "cosine",
    "flip_augment": False,
    "backbone_lr_factor": 1.0,
}


def test_defaults_equal_the_paper():
    cfg = BoTRecipe().default_config()
    assert isinstance(cfg, BoTConfig) and isinstance(cfg, TrainConfig)
    for name, value in PAPER.items():
        assert getattr(cfg, name) == value, name
    assert cfg.lr * cfg.warmup_factor == pytest.approx(3.5e-5)


def test_epoch_schedule_in_iterations():
    # 12,936 Market-1501 training images / (16 x 4) = 202.1 iterations per epoch
    assert ITERATIONS_PER_EPOCH == 12936 // 64 == 202
    cfg = BoTRecipe().default_config()
    assert cfg.warmup_iterations == epochs(10) == 2020
    assert cfg.milestones == (epochs(40), epochs(70)) == (8080, 14140)
    assert cfg.iterations == epochs(120) == 24240
    from reidcore.engine.schedules import from_config

    lr = from_config(cfg)
    assert lr(0) == pytest.approx(0.1)
    assert lr(1010) == pytest.approx(0.55)
    assert lr(2020) == pytest.approx(1.0) and lr(8079) == pytest.approx(1.0)
    assert lr(8080) == pytest.approx(0.1) and lr(14140) == pytest.approx(0.01)


def test_metadata_help_and_round_trip():
    recipe = BoTRecipe()
    assert recipe.name == "bot" and recipe.config_class is BoTConfig
    assert "1903.07071" in recipe.paper and recipe.description
    for f in attrs.fields(BoTConfig):
        assert f.metadata.get("help"), f.name
    cfg = BoTConfig(center_loss=True, milestones=(5, 9))
    assert BoTConfig.from_json(cfg.to_json()) == cfg


def test_recipe_module_imports_no_torch():
    code = "import reid_bot.recipe, reid_bot.plugin, sys; assert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_registered():
    from reidcore import registry

    assert "bot" in registry.list_recipes() and "bot" in registry.list_models()
    assert "center" in registry.list_losses()
    assert type(registry.get_recipe("bot")) is BoTRecipe


def test_criterion_id_after_bnneck_triplet_before():
    torch.manual_seed(0)
    recipe = BoTRecipe()
    cfg = recipe.default_config(backbone="resnet18", pretrained="none")
    model = recipe.build_model(cfg, num_classes=4)
    criterion = recipe.build_criterion(cfg, CriterionInfo(4, model.embedding_dim))
    assert list(criterion.terms) == ["id", "triplet"]
    triplet = criterion.terms["triplet"]
    # reid-trinet's batch-hard loss, through the registry: hinge margin 0.3, euclidean
    assert type(triplet).__name__ == "BatchHardTripletLoss"
    assert triplet.margin == 0.3 and triplet.metric == "euclidean"
    assert criterion.terms["id"].label_smoothing == 0.1
    pids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    out = model(torch.randn(8, 3, 64, 32))
    loss, stats = criterion(out, pids)
    loss.backward()
    assert torch.isfinite(loss) and {"loss/id", "loss/triplet"} <= set(stats)
    # the triplet sees f_t (before the BNNeck), the ID loss the classifier on f_i
    assert not torch.allclose(out["embedding"], out["bn_embedding"])
    assert stats["loss/triplet"] == pytest.approx(float(triplet({"embedding": out["embedding"]}, pids).detach()))
    assert torch.allclose(out["logits"], model.classifier(out["bn_embedding"]))
    assert model.classifier.bias is None


def test_center_loss_term_uses_the_models_classes_and_width():
    recipe = BoTRecipe()
    cfg = recipe.default_config(backbone="resnet18", pretrained="none", center_loss=True)
    model = recipe.build_model(cfg, num_classes=7)
    criterion = recipe.build_criterion(cfg, CriterionInfo(7, model.embedding_dim))
    assert list(criterion.terms) == ["id", "triplet", "center"]
    assert criterion.weights["center"] == 0.0005
    center = criterion.terms["center"]
    assert center.centers.shape == (7, 512) and center.center_lr == 0.5
    assert not center.centers.requires_grad  # moved by its own rule, not the main optimizer
    assert not [p for p in criterion.parameters() if p.requires_grad]


def test_negative_weight_is_an_error():
    with pytest.raises(ValueError, match="--triplet-weight"):
        BoTRecipe().build_criterion(BoTConfig(triplet_weight=-1.0), CriterionInfo(4, 512))
