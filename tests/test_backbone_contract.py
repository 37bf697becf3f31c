"""The public backbone surface plugins use: feature sizes, first conv, split before the last stage.

For every core backbone (built through the registry, as plugins do): ``out_channels`` and
``output_stride`` match the forward's shape, ``last_stride`` is honoured, ``first_conv`` is
the convolution that ``in_channels`` widens, and ``split_last_stage`` keeps the forward
identical (``last_stage(trunk(x)) == whole(x)``) and the trunk's parameter names.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reidcore.backbones import FeatureBackbone
from reidcore.registry import create_backbone

#: name -> (out_channels, trunk channels, parameter-name prefixes of the last stage)
CORE = {"resnet18": (512, 256, ("layer4.",)), "resnet50": (2048, 1024, ("layer4.",)),
        "mobilenet_v2": (1280, 96, tuple(f"features.{i}." for i in range(14, 19)))}
FIRST_CONVS = {"resnet18": "conv1", "resnet50": "conv1", "mobilenet_v2": "features.0.0"}


def _build(name: str, **kwargs) -> FeatureBackbone:
    torch.manual_seed(0)
    return create_backbone(name, pretrained="none", **kwargs).eval()


@pytest.mark.parametrize("name", sorted(CORE))
@pytest.mark.parametrize("last_stride", [2, 1])
def test_feature_sizes_match_the_forward(name, last_stride):
    net = _build(name, last_stride=last_stride)
    assert isinstance(net, FeatureBackbone)
    assert net.output_stride == 32 // (2 // last_stride)
    with torch.no_grad():
        out = net(torch.randn(2, 3, 128, 64))
    assert out.shape == (2, CORE[name][0], 128 // net.output_stride, 64 // net.output_stride)
    assert net.out_channels == CORE[name][0]


@pytest.mark.parametrize("name", sorted(CORE))
def test_first_conv_is_the_widened_one(name):
    net = _build(name, in_channels=17)
    assert net.first_conv_name == FIRST_CONVS[name]
    assert net.first_conv is net.get_submodule(FIRST_CONVS[name])
    assert isinstance(net.first_conv, nn.Conv2d) and net.first_conv.in_channels == 17
    assert net.in_channels == 17
    first = next(n for n, m in net.named_modules() if isinstance(m, nn.Conv2d))
    assert first == net.first_conv_name


@pytest.mark.parametrize("name", sorted(CORE))
@pytest.mark.parametrize("last_stride", [2, 1])
def test_split_keeps_the_forward_and_the_names(name, last_stride):
    net = _build(name, last_stride=last_stride)
    x = torch.randn(2, 3, 128, 64)
    with torch.no_grad():
        whole = net(x)
    names = set(net.state_dict())
    trunk, last = net.split_last_stage()
    assert trunk is net and net.is_split
    prefix = CORE[name][2]
    assert set(trunk.state_dict()) == {k for k in names if not k.startswith(prefix)}
    assert len(names) == len(trunk.state_dict()) + len(last.state_dict())
    with torch.no_grad():
        mid = trunk(x)
        again = last(mid)
    assert mid.shape == (2, CORE[name][1], 128 // 16, 64 // 16)
    assert trunk.out_channels == CORE[name][1] and trunk.output_stride == 16
    assert torch.equal(again, whole)
    with pytest.raises(RuntimeError, match="already split"):
        net.split_last_stage()


def test_last_stride_out_of_range_names_the_value():
    with pytest.raises(ValueError, match="last_stride must be 1 or 2, got 4"):
        create_backbone("mobilenet_v2", pretrained="none", last_stride=4)
