"""Center loss (Wen et al. 2016) with the strong baseline's own center update (lr 0.5)."""

from __future__ import annotations

import pytest
import torch
from reid_bot.center_loss import CenterLoss


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, 6, generator=g), torch.tensor([0, 0, 1, 1, 2, 2, 4, 4])


def test_value_is_the_mean_squared_distance_to_the_own_center():
    torch.manual_seed(0)
    loss = CenterLoss(num_classes=5, feat_dim=6).eval()
    x, pids = _batch()
    expected = ((x - loss.centers[pids]) ** 2).sum(1).mean()
    assert float(loss({"embedding": x}, pids)) == pytest.approx(float(expected), rel=1e-6)
    assert loss.last_stats["mean_distance"] == pytest.approx(float(expected), rel=1e-6)


def test_rule_update_equals_the_papers_sgd_step_on_the_centers():
    """The authors: SGD(lr 0.5) on the centers, their gradient of w*L scaled by 1/w."""
    torch.manual_seed(0)
    rule = CenterLoss(num_classes=5, feat_dim=6, center_lr=0.5, weight=0.0005)
    torch.manual_seed(0)
    opt_loss = CenterLoss(num_classes=5, feat_dim=6, center_lr=0.5, weight=0.0005,
                          update="optimizer")
    assert torch.equal(rule.centers, opt_loss.centers)
    group = opt_loss.param_group()
    assert group["lr"] == 0.5 and group["optimizer"] == "sgd" and group["momentum"] == 0.0
    sgd = torch.optim.SGD(group["params"], lr=group["lr"])
    for seed in range(3):
        x, pids = _batch(seed)
        before = rule.centers.detach().clone()
        value_rule = rule({"embedding": x}, pids)
        (0.0005 * opt_loss({"embedding": x}, pids)).backward()
        opt_loss.centers.grad *= group["grad_scale"]
        sgd.step()
        sgd.zero_grad()
        assert float(value_rule) > 0
        assert torch.allclose(rule.centers, opt_loss.centers, atol=1e-6)
        assert not torch.equal(rule.centers, before)
    untouched = rule.centers[3]  # pid 3 never appears: its center stays
    torch.manual_seed(0)
    assert torch.equal(untouched, torch.randn(5, 6)[3])


def test_features_get_the_gradient_and_eval_mode_does_not_move_centers():
    loss = CenterLoss(num_classes=5, feat_dim=6)
    x, pids = _batch()
    x.requires_grad_(True)
    loss({"embedding": x}, pids).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    loss.eval()
    before = loss.centers.detach().clone()
    loss({"embedding": x.detach()}, pids)
    assert torch.equal(before, loss.centers)


def test_errors():
    with pytest.raises(ValueError, match="update"):
        CenterLoss(3, 4, update="momentum")
    with pytest.raises(ValueError, match=">= 1"):
        CenterLoss(0, 4)
    loss = CenterLoss(3, 4)
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        loss({"embedding": torch.zeros(2, 5)}, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="pids must lie"):
        loss({"embedding": torch.zeros(2, 4)}, torch.tensor([0, 3]))
    with pytest.raises(KeyError, match="embedding"):
        loss({"logits": torch.zeros(2, 4)}, torch.tensor([0, 1]))
