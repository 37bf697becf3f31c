"""PSENet: conv1 widening keeps the RGB filters, view weighting, shapes, every backbone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from reid_pse.model import PSENet, first_conv_name, split_last_stage
from torch import nn

from reidcore.registry import create_backbone, list_backbones

WEIGHTS = Path(__file__).resolve().parents[3].parent / "shared" / "weights" / "mobilenet_v2_imagenet_features.pth"


@pytest.mark.skipif(not WEIGHTS.exists(), reason=f"ImageNet weights not found at {WEIGHTS}")
def test_conv1_widening_keeps_pretrained_rgb_filters_and_adds_pose_channels():
    net = PSENet("mobilenet_v2", pretrained=str(WEIGHTS), num_joints=14, views=True, num_classes=5)
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    conv = net.backbone.features[0][0]
    assert conv.in_channels == 17
    assert torch.equal(conv.weight[:, :3], state["features.0.0.weight"])
    pose = conv.weight[:, 3:]
    assert pose.abs().max() > 0 and pose.std() < 0.1 * state["features.0.0.weight"].std()
    # the three view units start as copies of the pretrained last stage
    for unit in net.view_units:
        assert torch.equal(unit[0].conv[0][0].weight, state["features.14.conv.0.0.weight"])


def _tiny_net(**kw):
    torch.manual_seed(0)
    return PSENet("resnet18", pretrained="none", num_joints=14, embedding_dim=16, **kw)


def test_view_probabilities_sum_to_one_and_weight_the_units():
    net = _tiny_net(views=True, num_classes=4).eval()
    x = torch.randn(3, 17, 64, 32)
    out = net(x)
    assert out["embedding"].shape == (3, 16) and out["view_logits"].shape == (3, 3)
    assert torch.allclose(out["view_probs"].sum(1), torch.ones(3), atol=1e-6)
    assert "logits" not in out  # eval mode
    # identical units: the weighted sum equals one unit's output (weights sum to one)
    for unit in net.view_units[1:]:
        unit.load_state_dict(net.view_units[0].state_dict())
    f = net.backbone(x)
    single = net.pre_logits(net.pool(net.view_units[0](f)).flatten(1))
    assert torch.allclose(net(x)["embedding"], single, atol=1e-5)
    # a view unit's contribution scales with its probability: force the predictor to one view
    with torch.no_grad():
        net.view_predictor[-1].weight.zero_()
        net.view_predictor[-1].bias.copy_(torch.tensor([50.0, 0.0, 0.0]))
        net.view_units[0][0].conv1.weight.mul_(0.5)  # unit 0 now differs
    alone = net.pre_logits(net.pool(net.view_units[0](f)).flatten(1))
    assert torch.allclose(net(x)["embedding"], alone, atol=1e-4)


def test_training_outputs_logits_and_single_branch_variant():
    net = _tiny_net(views=False, num_classes=7).train()
    out = net(torch.randn(2, 17, 64, 32))
    assert out["logits"].shape == (2, 7) and "view_probs" not in out
    with pytest.raises(ValueError, match="expects 17 input channels"):
        net(torch.randn(2, 3, 64, 32))


@pytest.mark.parametrize("name", list_backbones())
def test_every_registered_backbone_builds_with_views(name):
    net = PSENet(name, pretrained="none", num_joints=14, views=True, embedding_dim=8).eval()
    assert net(torch.randn(1, 17, 64, 32))["embedding"].shape == (1, 8)
    assert first_conv_name(create_backbone(name, pretrained="none")) in {"conv1", "features.0.0"}


def test_unknown_backbone_falls_back_to_conv_view_units():
    class Plain(nn.Module):
        out_channels = 4

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x)

    with pytest.raises(TypeError, match="cannot split Plain"):
        split_last_stage(Plain())
