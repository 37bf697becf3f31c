"""The ``acme-center`` recipe of the third-party test plugin: trinet + a center loss whose
centres have their own optimizer group and learning rate (Wen et al., ECCV 2016, Eq. 2)."""

from __future__ import annotations

import attrs
import torch
from reid_trinet.recipe import TriNetConfig, TriNetRecipe

from reidcore.recipe import CriterionInfo, field


@attrs.define(kw_only=True)
class CenterConfig(TriNetConfig):
    center_lr: float = field(0.5, "learning rate of the identity centres", group="optimisation",
                             above=0.0)
    center_weight: float = field(0.0005, "weight of the center loss", minimum=0.0)


class CenterLoss(torch.nn.Module):
    """``base`` loss + ``center_weight`` x 0.5 * mean squared distance to the pid's centre."""

    def __init__(self, base: torch.nn.Module, num_classes: int, dim: int, cfg: CenterConfig):
        super().__init__()
        self.base = base
        self.centers = torch.nn.Parameter(torch.randn(num_classes, dim))
        self.weight = cfg.center_weight

    def param_groups(self, cfg: CenterConfig) -> list[dict]:
        return [{"params": [self.centers], "lr": cfg.center_lr, "weight_decay": 0.0,
                 "name": "centers"}]

    def forward(self, outputs, pids, targets=None):
        loss, stats = self.base(outputs, pids)
        center = 0.5 * (outputs["embedding"].float() - self.centers[pids]).square().sum(1).mean()
        return loss + self.weight * center, {**stats, "center": float(center.detach())}


class CenterRecipe(TriNetRecipe):
    name = "acme-center"
    config_class = CenterConfig

    def build_criterion(self, cfg: CenterConfig, info: CriterionInfo) -> torch.nn.Module:
        base = super().build_criterion(cfg, info)
        return CenterLoss(base, info.num_classes, info.embedding_dim, cfg)
