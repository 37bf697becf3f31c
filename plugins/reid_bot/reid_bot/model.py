"""The strong-baseline network with the BNNeck (Luo et al., CVPR Workshops 2019, Sec. 3, Fig. 5).

Backbone (ResNet-50 with the last stride set to 1, Sec. 3.4) → global average pooling →
``f_t`` (the feature the triplet and center losses see) → BatchNorm1d without a learned
shift (the BNNeck, Sec. 3.5) → ``f_i`` → a bias-free linear identity classifier. At test
time ``f_i`` is the embedding (compared with the cosine distance), as in the authors'
code (``TEST.NECK_FEAT after``). Initialisation as the authors' code: BNNeck weight 1,
bias 0 (frozen), classifier weights ``N(0, 0.001^2)``.
"""

from __future__ import annotations

import torch
from torch import nn

from reidcore.registry import create_backbone

NECK_FEATS = ("after", "before")


class BoTNet(nn.Module):
    """Backbone → GAP → ``f_t`` → BNNeck → ``f_i`` → Linear(C, num_classes, bias=False).

    Args:
        backbone: a registered backbone name (``resnet50`` in the paper).
        pretrained: ``"imagenet"``, ``"none"`` or a state-dict path.
        num_classes: training identities; 0 builds no classifier.
        last_stride: stride of the last down-sampling stage (1 in the paper: a 16× smaller
            feature map instead of 32×).
        neck_feat: test-time embedding: ``"after"`` the BNNeck (``f_i``, the paper's) or
            ``"before"`` it (``f_t``).
        in_channels: input channels (3 for RGB).

    Forward:
        images ``(B, in_channels, H, W)`` float32 → in training mode
        ``{"embedding": f_t (B, C), "bn_embedding": f_i (B, C), "logits": (B, num_classes)}``
        (``logits`` only when ``num_classes > 0``); in eval mode ``{"embedding": (B, C)}``,
        ``f_i`` or ``f_t`` by ``neck_feat``. All float32; ``C`` = the backbone's
        ``out_channels`` (2048 for ResNet-50, 1280 for MobileNetV2) = ``embedding_dim``.

    Raises:
        ValueError: ``num_classes < 0`` or an unknown ``neck_feat``.
        reidcore.errors.UnknownNameError: unknown backbone.
        reidcore.errors.WeightsError: pretrained weights missing or not matching.
    """

    def __init__(self, backbone: str = "resnet50", pretrained: str = "imagenet",
                 num_classes: int = 0, last_stride: int = 1, neck_feat: str = "after",
                 in_channels: int = 3):
        super().__init__()
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        if neck_feat not in NECK_FEATS:
            raise ValueError(f"neck_feat must be one of {', '.join(NECK_FEATS)}, got {neck_feat!r}")
        self.backbone = create_backbone(backbone, pretrained=pretrained, in_channels=in_channels,
                                        last_stride=last_stride)
        self.embedding_dim = int(self.backbone.out_channels)
        self.num_classes = int(num_classes)
        self.neck_feat = neck_feat
        self.bnneck = nn.BatchNorm1d(self.embedding_dim)
        nn.init.ones_(self.bnneck.weight)
        nn.init.zeros_(self.bnneck.bias)
        self.bnneck.bias.requires_grad_(False)  # "no shift" (the authors' code)
        self.classifier = (nn.Linear(self.embedding_dim, num_classes, bias=False)
                           if num_classes > 0 else None)
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        f_t = self.backbone(images).mean(dim=(2, 3))
        f_i = self.bnneck(f_t)
        if not self.training:
            return {"embedding": (f_i if self.neck_feat == "after" else f_t).float()}
        out = {"embedding": f_t.float(), "bn_embedding": f_i.float()}
        if self.classifier is not None:
            out["logits"] = self.classifier(f_i).float()
        return out
