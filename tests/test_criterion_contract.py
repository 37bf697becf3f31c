"""The one criterion contract: build_criterion(cfg, info), criterion(outputs, pids[, targets]),
and the criterion's trainable parameters in their own optimizer group at --loss-lr."""

from __future__ import annotations

import types

import pytest
import tiny_plugin
import torch
from test_run import tiny_args

from reidcore.cli import main
from reidcore.engine.trainer import build_criterion, loss_param_groups
from reidcore.hookspecs import hookimpl
from reidcore.losses import Criterion
from reidcore.recipe import CriterionInfo, TrainConfig
from reidcore.testing import registered_plugin

SEEN: dict = {}


class CenterLoss(torch.nn.Module):
    """Mean squared distance of each embedding to its identity's centre (Wen et al. 2016)."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.centers = torch.nn.Parameter(torch.zeros(num_classes, dim))

    def forward(self, outputs, pids, targets=None):
        loss = (outputs["embedding"].float() - self.centers[pids]).square().sum(1).mean()
        return loss, {"center": float(loss.detach())}


class CenterRecipe(tiny_plugin.TinyRecipe):
    name = "tiny-centre"

    def build_criterion(self, cfg, info: CriterionInfo):
        SEEN["info"] = info
        return CenterLoss(info.num_classes, info.embedding_dim)


def _plugin():
    module = types.ModuleType("tiny_centre_plugin")
    module.reid_recipes = hookimpl(lambda: {"tiny-centre": CenterRecipe})
    return module


def test_center_loss_gets_info_and_its_own_learning_rate(tiny_plugin, tiny_data, tmp_path):
    exp = tmp_path / "exp"
    with registered_plugin(_plugin(), "tiny-centre"):
        args = tiny_args(tiny_data, exp, "--iterations", "2", "--loss-lr", "0.5",
                         "--schedule", "constant", "--no-tensorboard")
        args[1] = "tiny-centre"
        assert main(args) == 0
    assert SEEN["info"] == CriterionInfo(num_classes=4, embedding_dim=8)
    state = torch.load(exp / "checkpoints" / "checkpoint-0000002.pt", weights_only=False)
    groups = state["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == [0.01, 0.5] and groups[1]["name"] == "loss"
    assert state["criterion"]["centers"].abs().sum() > 0  # the centres were trained


def test_criterion_may_declare_its_param_groups():
    class Declares(CenterLoss):
        def param_groups(self, cfg):
            return [{"params": [self.centers], "lr": 7.0, "weight_decay": 0.0}]

    groups = loss_param_groups(Declares(3, 2), TrainConfig())
    assert groups[0]["lr"] == 7.0
    assert loss_param_groups(CenterLoss(3, 2), TrainConfig(lr=0.1))[0]["lr"] == 0.1
    assert loss_param_groups(torch.nn.Identity(), TrainConfig()) == []


def test_old_build_criterion_signature_still_works_with_a_warning(caplog):
    recipe = tiny_plugin.TinyRecipe()  # build_criterion(self, cfg)
    crit = build_criterion(recipe, tiny_plugin.TinyConfig(), CriterionInfo(4, 8))
    assert isinstance(crit, torch.nn.Module)
    assert "build_criterion(self, cfg) is deprecated" in caplog.text


def test_weighted_criterion_passes_targets_to_its_terms():
    class UsesTarget(torch.nn.Module):
        def forward(self, outputs, pids):
            return (outputs["embedding"] - outputs["target_colour"]).abs().mean()

    crit = Criterion({"l1": (2.0, UsesTarget())})
    loss, stats = crit({"embedding": torch.ones(2, 3)}, torch.zeros(2, dtype=torch.long),
                       {"colour": torch.zeros(2, 3)})
    assert loss.item() == pytest.approx(2.0) and stats["loss/l1"] == pytest.approx(1.0)
