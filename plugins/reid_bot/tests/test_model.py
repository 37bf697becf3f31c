"""BoTNet (Luo et al. 2019, Sec. 3.4-3.5): last stride 1, BNNeck, bias-free classifier."""

from __future__ import annotations

import pytest
import torch
from reid_bot.model import BoTNet

from reidcore.testing import check_model_contract


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v2"])
def test_contract(backbone):
    check_model_contract("bot", backbone=backbone, pretrained="none")


def test_outputs_train_and_eval():
    model = BoTNet(backbone="resnet18", pretrained="none", num_classes=5)
    assert model.embedding_dim == 512 and model.classifier.bias is None
    x = torch.randn(4, 3, 64, 32)
    out = model(x)
    assert set(out) == {"embedding", "bn_embedding", "logits"}
    assert out["embedding"].shape == out["bn_embedding"].shape == (4, 512)
    assert out["logits"].shape == (4, 5)
    model.eval()
    with torch.no_grad():
        test = model(x)
        f_t = model.backbone(x).mean(dim=(2, 3))
    assert set(test) == {"embedding"}
    assert torch.allclose(test["embedding"], model.bnneck(f_t), atol=1e-6)  # after the BNNeck


def test_neck_feat_before_returns_the_pooled_feature():
    model = BoTNet(backbone="resnet18", pretrained="none", neck_feat="before").eval()
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert torch.allclose(model(x)["embedding"], model.backbone(x).mean(dim=(2, 3)))


def test_last_stride_one_doubles_the_feature_map():
    x = torch.randn(1, 3, 64, 32)
    s1 = BoTNet(backbone="resnet18", pretrained="none").backbone(x)
    s2 = BoTNet(backbone="resnet18", pretrained="none", last_stride=2).backbone(x)
    assert s1.shape[-2:] == (4, 2) and s2.shape[-2:] == (2, 1)


def test_bnneck_init_and_frozen_shift():
    model = BoTNet(backbone="resnet18", pretrained="none", num_classes=3)
    assert torch.equal(model.bnneck.weight, torch.ones(512))
    assert torch.equal(model.bnneck.bias, torch.zeros(512)) and not model.bnneck.bias.requires_grad
    assert model.classifier.weight.std().item() == pytest.approx(0.001, rel=0.2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="neck_feat"):
        BoTNet(backbone="resnet18", pretrained="none", neck_feat="middle")
    with pytest.raises(ValueError, match="num_classes"):
        BoTNet(backbone="resnet18", pretrained="none", num_classes=-1)
