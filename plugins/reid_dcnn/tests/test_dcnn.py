"""reid-dcnn: verification symmetry, pair sampler ratio, alpha = 0, recipe and model contract."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from reid_dcnn.loss import IdentificationVerificationLoss
from reid_dcnn.verification import VerificationHead, sample_pairs

from reidcore.registry import create_model, get_recipe, list_losses, list_models, list_recipes
from reidcore.testing import check_model_contract


@pytest.mark.parametrize("layer", ["product", "square"])
def test_verification_is_symmetric(layer):
    torch.manual_seed(0)
    head = VerificationHead(16, layer).eval()
    x, y = torch.randn(5, 16), torch.randn(5, 16)
    assert torch.allclose(head(x, y), head(y, x))


def test_square_layer_differs_from_product():
    head = VerificationHead(4, "square").eval()
    x = torch.ones(1, 4)
    assert torch.equal(head.pair_feature(x, x), torch.zeros(1, 4))
    product = VerificationHead(4, "product").eval()
    assert torch.allclose(product.pair_feature(x, x), torch.full((1, 4), 0.25))  # normalised


@pytest.mark.parametrize("layer", ["product", "square"])
def test_verification_ignores_the_descriptor_scale(layer):
    """The seed verifies L2-normalised descriptors: the pair term is bounded at any scale.

    Unnormalised, ``x * y`` of 512-d descriptors grew with their norm and the
    verification gradient swamped the identification loss's (the dcnn bug of issue 16).
    """
    torch.manual_seed(0)
    head = VerificationHead(16, layer).eval()
    x, y = torch.randn(5, 16), torch.randn(5, 16)
    assert torch.allclose(head(x, y), head(30 * x, 0.1 * y), atol=1e-5)
    assert head.pair_feature(30 * x, 30 * y).abs().sum(1).max() <= 4.0 + 1e-5  # |x^ - y^|^2 <= 4
    old = VerificationHead(16, layer, dropout=0.5, normalize=False, hidden=False).eval()
    assert not torch.allclose(old(x, y), old(30 * x, 0.1 * y))


def test_verification_head_is_the_seeds_verif_net():
    head = VerificationHead(512)
    assert head.dropout.p == 0.75 and head.normalize
    assert isinstance(head.hidden[0], torch.nn.Linear) and head.hidden[0].out_features == 512
    assert isinstance(head.hidden[1], torch.nn.BatchNorm1d)
    assert head.fc.weight.std().item() == pytest.approx(0.001, rel=0.2)
    assert torch.equal(head.fc.bias, torch.zeros(2))


def test_descriptor_has_no_relu_by_default():
    """The seed's ClassBlock(relu=False): the descriptor is the BN output, signed."""
    torch.manual_seed(0)
    model = create_model("dcnn", backbone="resnet18", pretrained="none", num_classes=5).eval()
    with torch.no_grad():
        emb = model(torch.randn(4, 3, 64, 32))["embedding"]
    assert (emb < 0).any()
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.bottleneck)
    relu = create_model("dcnn", backbone="resnet18", pretrained="none", relu=True)
    assert isinstance(relu.bottleneck[-1], torch.nn.ReLU)


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 1.0])
def test_pair_sampler_positive_ratio(ratio):
    pids = torch.arange(8).repeat_interleave(4)  # P×K = 8×4
    g = torch.Generator().manual_seed(0)
    fractions = []
    for _ in range(200):
        first, second, same = sample_pairs(pids, ratio, generator=g)
        assert len(first) == 32 and (first != second).all()
        assert torch.equal(same, (pids[first] == pids[second]).long())
        fractions.append(same.float().mean().item())
    assert sum(fractions) / len(fractions) == pytest.approx(ratio, abs=0.02)


def test_pair_sampler_errors():
    with pytest.raises(ValueError, match="two identities"):
        sample_pairs(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="positive_ratio"):
        sample_pairs(torch.arange(4), 1.5)


def test_alpha_zero_is_identification_only():
    torch.manual_seed(0)
    out = {"embedding": torch.randn(8, 16), "logits": torch.randn(8, 4)}
    pids = torch.arange(4).repeat_interleave(2)
    loss = IdentificationVerificationLoss(dim=16, alpha=0.0)
    ce = torch.nn.functional.cross_entropy(out["logits"], pids)
    assert loss(out, pids).item() == pytest.approx(ce.item())
    assert "verif_loss" not in loss.last_stats
    assert IdentificationVerificationLoss(dim=16, alpha=1.0)(out, pids).item() > ce.item()


def test_registered_and_contract():
    assert "dcnn" in list_models() and "dcnn" in list_recipes()
    assert "identification_verification" in list_losses()
    check_model_contract("dcnn", backbone="resnet18", pretrained="none", num_classes=5)
    model = create_model("dcnn", backbone="resnet18", pretrained="none", num_classes=5).eval()
    assert set(model(torch.randn(2, 3, 64, 32))) == {"embedding"}


def test_recipe_defaults_follow_the_seed():
    cfg = get_recipe("dcnn").default_config()
    assert cfg.batch_p * cfg.batch_k == 32 and cfg.optimizer == "sgd"
    assert cfg.embedding_dim == 512 and cfg.alpha == 1.0 and cfg.verification_layer == "product"
    assert cfg.dropout == 0.5 and not cfg.bottleneck_relu
    # issue 16: the seed's lr 0.1 overshot with P×K batches (benchmarks/dcnn_head_probe.py)
    assert cfg.lr == 0.01 and cfg.backbone_lr_factor == 0.1 and cfg.momentum == 0.9
    assert cfg.verification_normalize and cfg.verification_hidden and cfg.verification_dropout == 0.75
    assert cfg.flip_augment and cfg.aggregator == "normalized_mean"


def test_recipe_module_imports_no_torch():
    code = "import sys, reid_dcnn.recipe, reid_dcnn.plugin; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_verification_head_is_trained(tmp_path):
    from reidcore.engine.trainer import train
    from reidcore.testing import read_tiny_market, write_tiny_market

    split = read_tiny_market(write_tiny_market(tmp_path / "d"))
    recipe = get_recipe("dcnn")
    cfg = recipe.default_config(backbone="resnet18", pretrained="none", height=32, width=16,
                                batch_p=4, batch_k=2, iterations=3, workers=0, lr=0.01)
    train(recipe, cfg, split, tmp_path / "exp")
    state = torch.load(sorted((tmp_path / "exp" / "checkpoints").glob("*.pt"))[-1],
                       weights_only=False)
    assert any("verification" in k for k in state["criterion"])
    assert not any("verification" in k for k in state["model"])
