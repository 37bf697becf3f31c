"""The Pose-Sensitive Embedding network (Sarfraz et al., CVPR 2018, Sec. 3.1, Fig. 2).

Input: RGB plus ``J`` pose maps stacked as channels, ``(B, 3 + J, H, W)``; the backbone's first
convolution is widened to ``3 + J`` inputs, keeping the (pretrained) RGB filters and drawing the
pose-map filters anew (:func:`reidcore.backbones.weights.expand_input_channels`).

With views (the full PSE, the seed's ``resnet_v1_50_views``):

* the backbone is cut before its last stage (ResNet ``layer4``; MobileNetV2 ``features[14:]``,
  the 160/320-channel blocks and the last 1x1 conv) — the *trunk*;
* the **view predictor** (seed scope ``3Views``) on the trunk's feature map: 3x3 conv (128,
  stride 2) + BN + ReLU, global average pooling and a linear layer to the 3 views
  (front, back, side); softmax gives the view probabilities ``p``;
* three **view units** (seed scope ``3ViewBranches``), each a copy of the backbone's last stage
  (initialised from the same pretrained weights); their feature maps are weighted by ``p`` and
  summed: ``f = sum_v p_v * unit_v(trunk(x))`` (paper Eq. 1);
* global average pooling, ``pre_logits`` = Linear(C, D) + BatchNorm1d (the embedding) and the
  identity ``classifier`` (seed scope ``logits``) on it.

Without views (the seed's pose-maps baseline) the whole backbone feeds the pooling directly.
The backbone is used only through its public contract (``reid_backbones`` in
:mod:`reidcore.hookspecs`): ``split_last_stage() -> (trunk, last_stage)`` and
``first_conv_name``, which every core backbone has. A backbone without
``split_last_stage`` gets view units of three Conv1x1 + BN + ReLU blocks on its final
feature map (documented fallback).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from reidcore.registry import create_backbone

NUM_VIEWS = 3


def split_last_stage(backbone: nn.Module) -> tuple[nn.Module, nn.Module]:
    """Cut ``backbone`` into ``(trunk, last_stage)`` through its public ``split_last_stage()``.

    Every core backbone has it (the ``reid_backbones`` contract): the trunk keeps the backbone's
    parameter names, so checkpoints stay compatible.

    Raises:
        TypeError: the backbone defines no ``split_last_stage`` (the caller falls back).
    """
    split = getattr(backbone, "split_last_stage", None)
    if not callable(split):
        raise TypeError(f"cannot split {type(backbone).__name__} before its last stage "
                        "(it defines no split_last_stage())")
    return split()


@torch.no_grad()
def _channels(module: nn.Module, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    was = module.training
    module.eval()
    out = module(torch.zeros(in_shape))
    module.train(was)
    return tuple(out.shape[1:])


def first_conv_name(module: nn.Module) -> str:
    """Dotted name of the backbone's first convolution (e.g. ``conv1``, ``features.0.0``).

    The backbone's public ``first_conv_name`` when it has one (every core backbone does);
    otherwise the first ``nn.Conv2d`` in module order (documented fallback).

    Raises:
        ValueError: the module has no ``first_conv_name`` and no ``Conv2d``.
    """
    name = getattr(module, "first_conv_name", None)
    if isinstance(name, str) and name:
        return name
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            return name
    raise ValueError(f"{type(module).__name__} has no Conv2d")


class PSENet(nn.Module):
    """Pose-Sensitive Embedding: pose-map input, view predictor and view-weighted units.

    Args:
        backbone: registered backbone name (``python -m reidcore list backbones``).
        pretrained: backbone weights: ``"imagenet"``, ``"none"`` or a state-dict path.
        num_joints: pose maps ``J`` after the RGB channels (0: RGB only).
        views: with the view predictor and the three view units (the full PSE).
        embedding_dim: size ``D`` of ``pre_logits`` (the embedding).
        num_classes: identities of the ``classifier`` (0: none).
        backbone_kwargs: extra arguments of the backbone factory (e.g. ``last_stride``).

    Forward:
        ``x (B, 3 + J, H, W)`` float32 -> ``{"embedding": (B, D)}``; in training mode also
        ``"logits" (B, num_classes)`` when ``num_classes > 0``; with views always
        ``"view_logits" (B, 3)`` and ``"view_probs" (B, 3)`` (rows sum to one).

    Raises:
        ValueError: ``embedding_dim < 1``, ``num_joints < 0`` or ``num_classes < 0``.
    """

    def __init__(self, backbone: str = "resnet50", pretrained: str = "imagenet",
                 num_joints: int = 14, views: bool = True, embedding_dim: int = 1024,
                 num_classes: int = 0, backbone_kwargs: dict[str, Any] | None = None):
        super().__init__()
        if embedding_dim < 1 or num_joints < 0 or num_classes < 0:
            raise ValueError(f"need embedding_dim >= 1, num_joints >= 0, num_classes >= 0; got "
                             f"{embedding_dim}, {num_joints}, {num_classes}")
        self.in_channels = 3 + int(num_joints)
        self.num_classes, self.embedding_dim = int(num_classes), int(embedding_dim)
        net = create_backbone(backbone, pretrained=pretrained, in_channels=self.in_channels,
                              **(backbone_kwargs or {}))
        probe = (1, self.in_channels, 64, 32)
        self.views = bool(views)
        if self.views:
            try:
                trunk, last = split_last_stage(net)
                trunk_channels = _channels(trunk, probe)[0]
            except TypeError:  # unknown backbone: view units on the final feature map
                trunk = net
                trunk_channels = int(net.out_channels)
                last = nn.Sequential(nn.Conv2d(trunk_channels, trunk_channels, 1, bias=False),
                                     nn.BatchNorm2d(trunk_channels), nn.ReLU(inplace=True))
            self.backbone = trunk
            self.view_predictor = nn.Sequential(
                nn.Conv2d(trunk_channels, 128, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(128), nn.ReLU(inplace=True),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, NUM_VIEWS),
            )
            self.view_units = nn.ModuleList([last] + [copy.deepcopy(last) for _ in range(NUM_VIEWS - 1)])
            channels = _channels(nn.Sequential(trunk, last), probe)[0]
        else:
            self.backbone = net
            channels = int(net.out_channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.pre_logits = nn.Sequential(nn.Linear(channels, embedding_dim, bias=False),
                                        nn.BatchNorm1d(embedding_dim))
        nn.init.kaiming_normal_(self.pre_logits[0].weight, nonlinearity="relu")
        self.classifier = nn.Linear(embedding_dim, num_classes) if num_classes > 0 else None
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)
            nn.init.zeros_(self.classifier.bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"PSENet expects {self.in_channels} input channels (RGB + pose maps), "
                             f"got {x.shape[1]}")
        out: dict[str, torch.Tensor] = {}
        f = self.backbone(x)
        if self.views:
            view_logits = self.view_predictor(f)
            probs = torch.softmax(view_logits.float(), dim=1).to(f.dtype)
            f = sum(probs[:, v, None, None, None] * unit(f) for v, unit in enumerate(self.view_units))
            out["view_logits"], out["view_probs"] = view_logits, probs
        emb = self.pre_logits(self.pool(f).flatten(1))
        out["embedding"] = emb
        if self.training and self.classifier is not None:
            out["logits"] = self.classifier(emb)
        return out
