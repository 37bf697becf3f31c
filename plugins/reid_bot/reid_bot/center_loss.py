"""Center loss (Wen, Zhang, Li, Qiao, ECCV 2016) as the strong baseline uses it.

Luo et al. (CVPR Workshops 2019, Sec. 3.6, eq. 6): ``L_C = 1/2 sum_j ||f_t_j - c_{y_j}||^2``
over the batch, added with weight ``beta = 0.0005`` to the triplet and ID losses. The
authors' code (KaiyangZhou's ``CenterLoss``) computes the mean over the batch of the
squared distance of each feature to its class center (clamped to [1e-12, 1e12]) and trains
the centers with their own plain SGD at ``lr = 0.5``, the centers' gradient multiplied by
``1 / beta`` first, so the centers move as if the loss weight were 1.

Two ways to train the centers:

* ``update="rule"`` (default): the centers are a parameter with ``requires_grad=False``
  that :meth:`CenterLoss.forward` moves itself, in training mode, by exactly that SGD step
  (``c_y -= center_lr * d mean_i ||x_i - c_{y_i}||^2 / d c_y``, with the batch's detached
  features) after the loss is computed. Identical to the authors' update, needs nothing from
  the trainer, and is checkpointed with the criterion's state.
* ``update="optimizer"``: the centers are trainable (``requires_grad=True``) and
  :meth:`CenterLoss.param_group` describes the optimizer group they need (plain SGD,
  ``lr = center_lr``, gradient scaled by ``1 / weight``), for a trainer that gives trainable
  loss parameters their own group and learning rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

UPDATES = ("rule", "optimizer")


class CenterLoss(nn.Module):
    """``mean_i clamp(||x_i - c_{y_i}||^2, 1e-12, 1e12)`` on ``outputs[feature_key]``.

    Args:
        num_classes: number of training identities (one center each).
        feat_dim: feature size ``D`` (the pooled backbone feature: 2048 for ResNet-50).
        center_lr: learning rate of the centers' SGD (0.5 in the paper).
        weight: the loss weight in the total (0.0005 in the paper); only used by
            :meth:`param_group` (``update="optimizer"``) to scale the centers' gradient.
        update: ``"rule"`` (the loss moves its centers itself) or ``"optimizer"``.
        feature_key: which model output holds the feature (``"embedding"``: ``f_t``, the
            feature before the BNNeck).

    Forward:
        ``outputs[feature_key]`` ``(B, D)`` any float dtype, ``pids`` ``(B,)`` int64 in
        ``[0, num_classes)`` → scalar float32. ``last_stats``: ``{"mean_distance"}`` (the
        loss value before any center update).

    Raises:
        ValueError: ``num_classes`` or ``feat_dim`` < 1, ``center_lr`` or ``weight`` <= 0,
            unknown ``update``, a feature of the wrong width, or a pid outside
            ``[0, num_classes)``.
        KeyError: ``outputs`` has no ``feature_key``.
    """

    def __init__(self, num_classes: int, feat_dim: int, center_lr: float = 0.5,
                 weight: float = 0.0005, update: str = "rule", feature_key: str = "embedding"):
        super().__init__()
        if num_classes < 1 or feat_dim < 1:
            raise ValueError(f"num_classes and feat_dim must be >= 1, got {num_classes}, {feat_dim}")
        if not center_lr > 0 or not weight > 0:
            raise ValueError(f"center_lr and weight must be > 0, got {center_lr}, {weight}")
        if update not in UPDATES:
            raise ValueError(f"update must be one of {', '.join(UPDATES)}, got {update!r}")
        self.num_classes, self.feat_dim = int(num_classes), int(feat_dim)
        self.center_lr, self.weight = float(center_lr), float(weight)
        self.update, self.feature_key = update, feature_key
        # the authors' initialisation: standard normal centers
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim),
                                    requires_grad=update == "optimizer")
        self.last_stats: dict[str, float] = {}

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, feat_dim={self.feat_dim}, "
                f"center_lr={self.center_lr}, update={self.update!r}")

    def param_group(self) -> dict[str, Any]:
        """The optimizer group the centers need with ``update="optimizer"``.

        Returns:
            ``{"params": [centers], "optimizer": "sgd", "lr": center_lr, "momentum": 0.0,
            "weight_decay": 0.0, "grad_scale": 1 / weight}``: plain SGD at ``center_lr``,
            not scheduled, the centers' gradient multiplied by ``grad_scale`` before the step
            (the authors' code).
        """
        return {"params": [self.centers], "optimizer": "sgd", "lr": self.center_lr,
                "momentum": 0.0, "weight_decay": 0.0, "grad_scale": 1.0 / self.weight}

    def forward(self, outputs: Mapping[str, torch.Tensor], pids: torch.Tensor) -> torch.Tensor:
        if self.feature_key not in outputs:
            raise KeyError(f"center loss needs the model output {self.feature_key!r} (B, D)")
        x = outputs[self.feature_key].float()
        if x.ndim != 2 or x.shape[1] != self.feat_dim:
            raise ValueError(f"center loss: feature must be (B, {self.feat_dim}), got {tuple(x.shape)}")
        pids = torch.as_tensor(pids, device=x.device).long()
        if pids.numel() and (int(pids.min()) < 0 or int(pids.max()) >= self.num_classes):
            raise ValueError(f"center loss: pids must lie in [0, {self.num_classes}), got "
                             f"[{int(pids.min())}, {int(pids.max())}]")
        centers = self.centers.float()
        loss = (x - centers[pids]).square().sum(1).clamp(1e-12, 1e12).mean()
        self.last_stats = {"mean_distance": float(loss.detach())}
        if self.update == "rule" and self.training and torch.is_grad_enabled():
            self._rule_step(x.detach(), pids)
        return loss

    @torch.no_grad()
    def _rule_step(self, x: torch.Tensor, pids: torch.Tensor) -> None:
        """One plain SGD step of the centers on the unweighted loss (lr ``center_lr``).

        ``d/dc_j mean_i ||x_i - c_{y_i}||^2 = -2/B sum_{i: y_i = j} (x_i - c_j)``.
        """
        grad = torch.zeros_like(self.centers, dtype=torch.float32)
        grad.index_add_(0, pids, (self.centers.float()[pids] - x) * (2.0 / len(pids)))
        self.centers.sub_((self.center_lr * grad).to(self.centers.dtype))
