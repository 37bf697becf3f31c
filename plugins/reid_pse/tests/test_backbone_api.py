"""PSE uses backbones only through their public contract (issue 13: no core-class checks).

A third-party backbone that offers ``split_last_stage`` and ``first_conv_name`` gets real view
units and its own first-conv scope; one without them gets the documented fallbacks; the recipe
finds the first-conv scope without allocating a backbone's weights.
"""

from __future__ import annotations

import pytest
import torch
from reid_pse.model import PSENet, first_conv_name, split_last_stage
from reid_pse.recipe import PoseConfig, first_conv_scope
from torch import nn


class Splittable(nn.Module):
    """A minimal third-party backbone following the optional parts of the contract."""

    first_conv_name = "stem.1"

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Identity(), nn.Conv2d(in_channels, 6, 3, stride=2, padding=1))
        self.last = nn.Conv2d(6, 10, 3, stride=2, padding=1)
        self.out_channels = 10

    def split_last_stage(self):
        last, self.last = self.last, nn.Identity()
        self.out_channels = 6
        return self, last

    def forward(self, x):
        return self.last(self.stem(x))


class Plain(nn.Module):
    out_channels = 4

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(3, 4, 3))

    def forward(self, x):
        return self.body(x)


def test_third_party_split_and_first_conv_are_used():
    net = Splittable()
    assert first_conv_name(net) == "stem.1"
    trunk, last = split_last_stage(net)
    assert trunk is net and isinstance(last, nn.Conv2d) and last.out_channels == 10


def test_backbone_without_the_optional_parts_gets_the_fallbacks():
    assert first_conv_name(Plain()) == "body.1"
    with pytest.raises(TypeError, match="cannot split Plain"):
        split_last_stage(Plain())


def test_psenet_builds_view_units_from_a_plugin_backbone(monkeypatch):
    import reid_pse.model as model

    monkeypatch.setattr(model, "create_backbone",
                        lambda name, pretrained, in_channels: Splittable(in_channels))
    net = PSENet("anything", pretrained="none", num_joints=2, embedding_dim=8).eval()
    assert all(isinstance(u, nn.Conv2d) and u.out_channels == 10 for u in net.view_units)
    assert net.view_predictor[0].in_channels == 6 and net.pre_logits[0].in_features == 10
    assert net(torch.randn(2, 5, 32, 16))["embedding"].shape == (2, 8)


@pytest.mark.parametrize("backbone, scope", [("resnet50", "backbone.conv1"),
                                             ("mobilenet_v2", "backbone.features.0.0")])
def test_first_conv_scope_names_the_core_backbones_first_conv(backbone, scope):
    assert first_conv_scope(PoseConfig(backbone=backbone)) == scope
