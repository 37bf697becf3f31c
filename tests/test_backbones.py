"""Backbones: output shapes, weight loading (shared MobileNetV2 file), WeightsError, in_channels."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from reidcore import builtins
from reidcore.backbones import torchvision_backbones as tvb
from reidcore.backbones.weights import load_state_dict_file
from reidcore.errors import WeightsError

REPO = Path(__file__).resolve().parents[1]
MOBILENET_FILE = REPO / ".." / "shared" / "weights" / "mobilenet_v2_imagenet_features.pth"

needs_mobilenet_file = pytest.mark.skipif(
    not MOBILENET_FILE.is_file(),
    reason=f"shared ImageNet weights {MOBILENET_FILE} absent (never downloaded by the tests)",
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize(
    "name, channels", [("resnet18", 512), ("resnet50", 2048), ("mobilenet_v2", 1280)]
)
@pytest.mark.parametrize("last_stride", [2, 1])
def test_output_shape(name, channels, last_stride):
    model = getattr(tvb, name)(pretrained="none", last_stride=last_stride).eval()
    assert model.out_channels == channels
    with torch.no_grad():
        out = model(torch.randn(2, 3, 128, 64))
    s = 16 * last_stride
    assert out.shape == (2, channels, 128 // s, 64 // s)
    assert out.dtype == torch.float32


def test_builtins_register_these_factories():
    targets = builtins.reid_backbones()
    for name in ("resnet18", "resnet50", "mobilenet_v2"):
        module, _, attr = targets[name].partition(":")
        assert module == tvb.__name__ and attr == name
        assert callable(getattr(tvb, attr))


def test_resnet_keeps_torchvision_key_names():
    keys = set(tvb.resnet18().state_dict())
    full = {k for k in torchvision.models.resnet18().state_dict() if not k.startswith("fc.")}
    assert keys == full


def test_bad_last_stride():
    with pytest.raises(ValueError, match="last_stride"):
        tvb.resnet18(last_stride=3)


@needs_mobilenet_file
def test_shared_mobilenet_file_loads_exactly():
    expected = torch.load(MOBILENET_FILE, map_location="cpu", weights_only=True)
    model = tvb.mobilenet_v2(pretrained=str(MOBILENET_FILE))
    got = model.state_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


@needs_mobilenet_file
def test_full_and_wrapped_state_dicts(tmp_path):
    features = torch.load(MOBILENET_FILE, map_location="cpu", weights_only=True)
    full = dict(features)
    full["classifier.1.weight"] = torch.zeros(1000, 1280)
    full["classifier.1.bias"] = torch.zeros(1000)
    for i, obj in enumerate([full, {"state_dict": features}, {"model": full, "epoch": 3}]):
        path = tmp_path / f"w{i}.pth"
        torch.save(obj, path)
        got = tvb.mobilenet_v2(pretrained=str(path)).state_dict()
        assert torch.equal(got["features.18.0.weight"], features["features.18.0.weight"])


def test_resnet_full_state_dict_and_module_prefix(tmp_path):
    source = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save({"module." + k: v for k, v in source.state_dict().items()}, path)
    model = tvb.resnet18(pretrained=path)
    assert torch.equal(model.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    assert torch.equal(model.bn1.running_var, source.bn1.running_var)


def test_wrong_keys_raise_weights_error_naming_file(tmp_path):
    state = tvb.resnet18().state_dict()
    state["layer9.weight"] = torch.zeros(3)
    del state["layer1.0.conv1.weight"]
    state["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    path = tmp_path / "wrong_keys.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as info:
        tvb.resnet18(pretrained=str(path))
    msg = str(info.value)
    assert "wrong_keys.pth" in msg
    assert "layer9.weight" in msg and "layer1.0.conv1.weight" in msg
    assert "conv1.weight" in msg and "(64, 3, 5, 5)" in msg


def test_file_of_other_architecture_raises(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(tvb.resnet18().state_dict(), path)
    with pytest.raises(WeightsError, match="r18.pth"):
        tvb.mobilenet_v2(pretrained=str(path))


def test_missing_file_raises_weights_error_naming_it(tmp_path):
    path = tmp_path / "no_such_weights.pth"
    with pytest.raises(WeightsError, match="no_such_weights.pth"):
        tvb.resnet18(pretrained=str(path))


def test_not_a_state_dict_raises(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(WeightsError, match="list.pth"):
        load_state_dict_file(path)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(WeightsError, match="garbage.pth"):
        load_state_dict_file(garbage)


def test_in_channels_5_keeps_rgb_filters_resnet(tmp_path):
    source = tvb.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(source.state_dict(), path)
    model = tvb.resnet18(pretrained=str(path), in_channels=5)
    w = model.conv1.weight
    assert w.shape == (64, 5, 7, 7) and model.in_channels == 5
    assert torch.equal(w[:, :3], source.conv1.weight)
    assert w[:, 3:].abs().max() < 0.1 * source.conv1.weight.abs().max()
    assert torch.equal(model.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    out = model(torch.randn(1, 5, 64, 32))
    assert out.shape == (1, 512, 2, 1)


@needs_mobilenet_file
def test_in_channels_5_keeps_rgb_filters_mobilenet():
    expected = torch.load(MOBILENET_FILE, map_location="cpu", weights_only=True)
    model = tvb.mobilenet_v2(pretrained=str(MOBILENET_FILE), in_channels=5)
    w = model.features[0][0].weight
    assert w.shape == (32, 5, 3, 3)
    assert torch.equal(w[:, :3], expected["features.0.0.weight"])
    assert w[:, 3:].abs().max() < 0.1 * expected["features.0.0.weight"].abs().max()


def test_in_channels_5_checkpoint_reloads(tmp_path):
    """A state dict of a 5-channel backbone loads into a 5-channel backbone unchanged."""
    trained = tvb.resnet18(in_channels=5)
    path = tmp_path / "r18_5ch.pth"
    torch.save(trained.state_dict(), path)
    model = tvb.resnet18(pretrained=str(path), in_channels=5)
    assert torch.equal(model.conv1.weight, trained.conv1.weight)


def test_in_channels_1_sums_rgb_filters():
    model = tvb.resnet18(in_channels=1).eval()
    assert model.conv1.weight.shape == (64, 1, 7, 7)
    with pytest.raises(ValueError, match="in_channels"):
        tvb.resnet18(in_channels=0)
