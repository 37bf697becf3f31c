"""The shared branch of the Siamese network: backbone → 512-d bottleneck → identity classifier."""

from __future__ import annotations

import torch
from torch import nn

from reidcore.registry import create_backbone


class DCNN(nn.Module):
    """One branch of the identification + verification network (both branches share it).

    Backbone feature map → global average pool → FC(C, 512) + BN (the bottleneck; its 512-d
    output is the pedestrian descriptor) → Dropout → identity classifier FC(512, num_classes).
    Zheng et al. TOMM 2017, Sec. 3 and Fig. 2, with layumi's bottleneck (``ClassBlock(2048,
    class_num, relu=False)`` in the seed's ``model.py``: no non-linearity after the BN).

    Args:
        backbone: registered backbone name (ResNet-50 in the paper).
        pretrained: ``imagenet`` | PATH | ``none``.
        embedding_dim: descriptor size (512).
        num_classes: training identities; 0 builds no classifier.
        dropout: dropout probability after the bottleneck (0.5).
        relu: a ReLU after the bottleneck's BN (default False, as the seed; True zeroes half
            of the descriptor, which the identity classifier and the verification then lack).

    Forward: images ``(B, 3, H, W)`` → ``{"embedding": (B, 512) float32}`` plus, in training
    mode with ``num_classes > 0``, ``"logits"`` ``(B, num_classes)``.
    """

    def __init__(self, backbone: str = "resnet50", pretrained: str = "imagenet",
                 embedding_dim: int = 512, num_classes: int = 0, dropout: float = 0.5,
                 in_channels: int = 3, relu: bool = False):
        super().__init__()
        self.backbone = create_backbone(backbone, pretrained=pretrained, in_channels=in_channels)
        self.bottleneck = nn.Sequential(
            nn.Linear(self.backbone.out_channels, embedding_dim),
            nn.BatchNorm1d(embedding_dim),
            *([nn.ReLU(inplace=True)] if relu else []),
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(embedding_dim, num_classes) if num_classes > 0 else None
        self.embedding_dim = embedding_dim
        nn.init.kaiming_normal_(self.bottleneck[0].weight, a=0, mode="fan_out")
        nn.init.zeros_(self.bottleneck[0].bias)
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)
            nn.init.zeros_(self.classifier.bias)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        descriptor = self.bottleneck(self.backbone(images).mean(dim=(2, 3)))
        out = {"embedding": descriptor.float()}
        if self.training and self.classifier is not None:
            out["logits"] = self.classifier(self.dropout(descriptor))
        return out
