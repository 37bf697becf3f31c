"""TriNet (Hermans, Beyer, Leibe 2017, "In Defense of the Triplet Loss", Sec. 4.1).

An ImageNet-pretrained ResNet-50 without its last layer, global average pooling,
then two fully connected layers: 1024 units with batch normalisation and ReLU,
and the 128-d embedding (no non-linearity, no normalisation). As in the
authors' ``fc1024`` head, the first layer has no bias (batch norm follows) and
the embedding layer starts orthogonal.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from reidcore.registry import create_backbone


class TriNet(nn.Module):
    """Backbone -> global average pool -> Linear(C, 1024) + BN + ReLU -> Linear(1024, 128).

    Args:
        backbone: a registered backbone name (``python -m reidcore list backbones``).
        pretrained: the backbone's weights: ``"imagenet"``, ``"none"`` or a state-dict path.
        embedding_dim: size ``D`` of the embedding (128 in the paper).
        head_dim: units of the hidden layer (1024 in the paper).
        num_classes: if > 0, an identity classifier ``Linear(D, num_classes)`` on
            the embedding, whose ``"logits"`` are output in training mode only.
        in_channels: input channels (3 for RGB; more for e.g. added pose maps).
        backbone_kwargs: extra keyword arguments of the backbone factory
            (e.g. ``{"last_stride": 1}`` for the torchvision ResNets).

    Forward:
        images ``(B, in_channels, H, W)`` float32 -> ``{"embedding": (B, D)}``
        float32, plus ``"logits"`` ``(B, num_classes)`` float32 in training mode
        when ``num_classes > 0``.

    Raises:
        ValueError: ``embedding_dim``, ``head_dim`` < 1 or ``num_classes`` < 0.
        reidcore.errors.UnknownNameError: unknown backbone name.
        reidcore.errors.WeightsError: pretrained weights missing or not matching.
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        pretrained: str = "imagenet",
        embedding_dim: int = 128,
        head_dim: int = 1024,
        num_classes: int = 0,
        in_channels: int = 3,
        backbone_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        if embedding_dim < 1 or head_dim < 1:
            raise ValueError(
                f"embedding_dim and head_dim must be >= 1, got {embedding_dim}, {head_dim}"
            )
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.backbone = create_backbone(
            backbone, pretrained=pretrained, in_channels=in_channels, **(backbone_kwargs or {})
        )
        channels = int(self.backbone.out_channels)
        self.embedding_dim = int(embedding_dim)
        self.num_classes = int(num_classes)
        self.fc = nn.Linear(channels, head_dim, bias=False)
        self.bn = nn.BatchNorm1d(head_dim)
        self.relu = nn.ReLU(inplace=True)
        self.embed = nn.Linear(head_dim, embedding_dim)
        self.classifier = nn.Linear(embedding_dim, num_classes) if num_classes > 0 else None
        nn.init.kaiming_normal_(self.fc.weight, nonlinearity="relu")
        nn.init.orthogonal_(self.embed.weight)
        nn.init.zeros_(self.embed.bias)
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)
            nn.init.zeros_(self.classifier.bias)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(images).mean(dim=(2, 3))
        hidden = self.relu(self.bn(self.fc(features)))
        embedding = self.embed(hidden)
        out = {"embedding": embedding.float()}
        if self.classifier is not None and self.training:
            out["logits"] = self.classifier(embedding).float()
        return out
