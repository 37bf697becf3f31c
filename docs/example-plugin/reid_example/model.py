"""ExampleNet: any registered backbone → global average pool → linear embedding."""

from __future__ import annotations

import torch
from torch import nn

from reidcore.registry import create_backbone


class ExampleNet(nn.Module):
    """Backbone feature map ``(B, C, h, w)`` → GAP → ``Linear(C, embedding_dim)``.

    Args:
        backbone: a registered backbone name (``python -m reidcore list backbones``).
        pretrained: ``imagenet`` | path to a state dict | ``none``.
        embedding_dim: D, the embedding size.
        num_classes: unused here (the recipe trains with a pair loss only); accepted so the
            model fits the registry-wide contract check.

    Forward: images ``(B, 3, H, W)`` float32 → ``{"embedding": (B, D) float32}``.
    """

    def __init__(self, backbone: str = "resnet18", pretrained: str = "none",
                 embedding_dim: int = 64, num_classes: int = 0, **_kw):
        super().__init__()
        self.backbone = create_backbone(backbone, pretrained=pretrained)
        self.embed = nn.Linear(self.backbone.out_channels, embedding_dim)
        self.embedding_dim = embedding_dim

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.backbone(images).mean(dim=(2, 3))
        return {"embedding": self.embed(pooled).float()}
