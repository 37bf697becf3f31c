"""Staged training (the PSE seed's scopes), multi-stage recipes and dict inputs with targets."""

from __future__ import annotations

import json

import pytest
import torch
from test_run import TINY
from torch import nn

from reidcore.cli import main
from reidcore.engine import checkpoint
from reidcore.engine.scopes import (
    apply_trainable_scopes,
    freeze_batchnorm_of_frozen,
    in_scopes,
    load_init_checkpoint,
    parse_scopes,
)


class Net(nn.Module):
    def __init__(self, classes: int = 4):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.classifier = nn.Linear(4, classes)
        self.classifier2 = nn.Linear(4, 2)


def test_scope_matching_is_prefix_at_dot_boundary_or_glob():
    assert parse_scopes(" a, b.c ,") == ["a", "b.c"]
    assert in_scopes("classifier.weight", ["classifier"])
    assert not in_scopes("classifier2.weight", ["classifier"])
    assert in_scopes("backbone.0.weight", ["backbone.0"])
    assert in_scopes("branches.2.conv.weight", ["branches.*.conv.*"])


def test_trainable_scopes_freeze_the_rest_and_their_batchnorm():
    net = Net()
    trainable, frozen = apply_trainable_scopes(net, "classifier")
    assert (trainable, frozen) == (2, 6)
    assert [n for n, p in net.named_parameters() if p.requires_grad] == ["classifier.weight", "classifier.bias"]
    net.train()
    assert freeze_batchnorm_of_frozen(net) == 1 and not net.backbone[1].training
    assert apply_trainable_scopes(Net(), "") == (8, 0)
    with pytest.raises(ValueError, match="'clasifier' matches no parameter"):
        apply_trainable_scopes(Net(), "clasifier")


def test_init_checkpoint_restores_all_but_excluded_scopes(tmp_path):
    src = Net(classes=4)
    torch.save({"model": src.state_dict()}, tmp_path / "c.pt")
    dst = Net(classes=7)  # classifier shape differs: must be excluded
    before = dst.classifier.weight.detach().clone()
    with pytest.raises(ValueError, match="classifier.weight .*exclude them with --checkpoint-exclude-scopes"):
        load_init_checkpoint(dst, tmp_path / "c.pt")
    out = load_init_checkpoint(dst, tmp_path / "c.pt", "classifier")
    assert torch.equal(dst.backbone[0].weight, src.backbone[0].weight)
    assert torch.equal(dst.backbone[1].running_var, src.backbone[1].running_var)
    assert torch.equal(dst.classifier.weight, before)
    assert out["excluded"] == ["classifier.bias", "classifier.weight"] and out["missing"] == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_init_checkpoint(dst, tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match="has no checkpoint"):
        load_init_checkpoint(dst, tmp_path)


def test_staged_recipe_trains_head_then_all_from_the_previous_stage(tiny_plugin, tiny_data, tmp_path, capsys):
    exp = tmp_path / "exp"
    code = main(["run", "tiny-staged", "--dataset", "tiny", "--data", str(tiny_data),
                 "--experiment", str(exp), *TINY, "--iterations", "3",
                 "--keep-stage-checkpoints"])
    assert code == 0
    report = json.loads((exp / "report.json").read_text())
    assert [s["stage"] for s in report["stages"]] == ["1-head", "2-all"]
    assert [s["iteration"] for s in report["stages"]] == [2, 3]
    head_only = checkpoint.load_latest(exp / "stages" / "1-head")["model"]
    torch.manual_seed(0)  # the stage's seed: the same initialisation as its model
    init = tiny_plugin.tiny_model().state_dict()
    for name, value in head_only.items():
        if name.startswith("backbone."):
            assert torch.equal(value, init[name]), name  # frozen in stage 1
    assert not torch.equal(head_only["head.weight"], init["head.weight"])
    log = (exp / "train.log").read_text()
    assert "initialised from" in log and "1-head" in log
    # the embed command finds the last stage's model
    assert main(["embed", "--experiment", str(exp), "--part", "query", "--output", str(tmp_path / "q.csv")]) == 0


def test_dict_inputs_reach_the_criterion_as_targets(tiny_plugin, tiny_data, tmp_path):
    tiny_plugin.TinyTargetsRecipe.seen_targets.clear()
    exp = tmp_path / "exp"
    assert main(["run", "tiny-targets", "--dataset", "tiny", "--data", str(tiny_data),
                 "--experiment", str(exp), *TINY, "--iterations", "2"]) == 0
    assert tiny_plugin.TinyTargetsRecipe.seen_targets == [{"colour": (6, 3)}] * 2
