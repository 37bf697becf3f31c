"""TriNet (Hermans et al. 2017, Sec. 4.1): shapes, backward, logits, registry."""

from __future__ import annotations

import pytest
import torch
from reid_trinet.losses import BatchHardTripletLoss
from reid_trinet.model import TriNet


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v2"])
def test_shapes_backward_no_nan(backbone):
    model = TriNet(backbone=backbone, pretrained="none")
    assert model.embedding_dim == 128
    assert model.fc.in_features == model.backbone.out_channels
    assert model.fc.out_features == 1024 and model.bn.num_features == 1024
    images = torch.randn(4, 3, 128, 64)
    pids = torch.tensor([0, 0, 1, 1])
    out = model(images)
    assert set(out) == {"embedding"}
    assert out["embedding"].shape == (4, 128) and out["embedding"].dtype == torch.float32
    loss = BatchHardTripletLoss()(out, pids)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    first_conv = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        emb = model(images[:2])["embedding"]
    assert emb.shape == (2, 128) and torch.isfinite(emb).all()


def test_logits_in_train_mode_only():
    model = TriNet(
        backbone="resnet18", pretrained="none", embedding_dim=32, head_dim=64, num_classes=7
    )
    images = torch.randn(4, 3, 128, 64)
    out = model.train()(images)
    assert out["embedding"].shape == (4, 32)
    assert out["logits"].shape == (4, 7) and out["logits"].dtype == torch.float32
    with torch.no_grad():
        out = model.eval()(images)
    assert set(out) == {"embedding"}
    no_classes = TriNet(backbone="resnet18", pretrained="none", num_classes=0)
    assert "logits" not in no_classes.train()(images)


def test_in_channels_and_backbone_kwargs():
    model = TriNet(
        backbone="resnet18", pretrained="none", in_channels=5, backbone_kwargs={"last_stride": 1}
    )
    assert model.backbone.conv1.in_channels == 5
    assert model(torch.randn(2, 5, 128, 64))["embedding"].shape == (2, 128)


def test_bad_arguments():
    with pytest.raises(ValueError, match="embedding_dim"):
        TriNet(backbone="resnet18", pretrained="none", embedding_dim=0)
    with pytest.raises(ValueError, match="num_classes"):
        TriNet(backbone="resnet18", pretrained="none", num_classes=-1)


def test_registered_through_entry_point():
    from reidcore import plugins, registry

    plugins.reset()
    if "trinet" not in registry.list_models():
        pytest.skip("reid-trinet is not installed (pip install -e plugins/reid_trinet)")
    assert {"batch_hard", "batch_all"} <= set(registry.list_losses())
    assert "trinet" in registry.list_recipes()
    model = registry.create_model(
        "trinet", backbone="mobilenet_v2", pretrained="none", embedding_dim=16
    )
    assert isinstance(model, TriNet) and model.embedding_dim == 16
    loss = registry.create_loss("batch_all", margin="0.2", metric="cityblock")
    assert loss.margin == 0.2 and loss.metric == "cityblock"
