"""The TriNet recipe: the paper's model, loss and hyper-parameters.

Hermans, Beyer, Leibe (2017), "In Defense of the Triplet Loss for Person
Re-Identification", Sec. 4: ResNet-50 (ImageNet) + fc1024 head + 128-d
embedding, batch-hard soft-margin triplet loss on euclidean distances, P=18 x
K=4 batches of 256x128 images, Adam at 3e-4 for 25,000 iterations with
exponential decay from iteration 15,000. The defaults shared with other recipes
live in :class:`reidcore.recipe.TrainConfig`, which already holds TriNet's.

This module imports no torch (``--help`` stays fast); the builders import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from reidcore.recipe import CriterionInfo, Recipe, TrainConfig, field

if TYPE_CHECKING:  # pragma: no cover
    import torch

TRIPLET_LOSSES = ("batch_hard", "batch_all")


@attrs.define(kw_only=True)
class TriNetConfig(TrainConfig):
    """TrainConfig plus TriNet's head and triplet-loss settings (paper defaults)."""

    embedding_dim: int = field(128, "embedding size (TriNet: 128)")
    head_dim: int = field(1024, "units of the hidden fully connected layer (TriNet: 1024)")
    loss: str = field("batch_hard", "triplet loss: batch_hard | batch_all (paper Sec. 2)")
    margin: str = field("soft", "triplet margin: soft (softplus) or a number such as 0.2")
    triplet_metric: str = field(
        "euclidean", "distance inside the triplet loss: euclidean | sqeuclidean | cityblock"
    )
    id_loss_weight: float = field(
        0.0, "weight of an extra identity cross-entropy term on the embedding (paper: 0, off)"
    )
    label_smoothing: float = field(0.0, "label smoothing of the identity cross-entropy term")


def parse_margin_text(text: str) -> str | float:
    """``"soft"`` or the float of a ``--margin`` value.

    Raises:
        ValueError: neither ``soft`` nor a non-negative number.
    """
    value = str(text).strip().lower()
    if value == "soft":
        return "soft"
    try:
        number = float(value)
    except ValueError:
        raise ValueError(
            f"--margin must be 'soft' or a non-negative number, got {text!r}"
        ) from None
    if not number >= 0.0:
        raise ValueError(f"--margin must be >= 0, got {text!r}")
    return number


class TriNetRecipe(Recipe):
    """TriNet trained with the batch-hard triplet loss (Hermans et al. 2017)."""

    name = "trinet"
    description = (
        "TriNet: ResNet-50 + fc1024 + 128-d embedding, batch-hard soft-margin triplet loss"
    )
    paper = (
        "A. Hermans, L. Beyer, B. Leibe. In Defense of the Triplet Loss for Person "
        "Re-Identification. arXiv:1703.07737, 2017"
    )
    config_class = TriNetConfig

    def build_model(self, cfg: TriNetConfig, num_classes: int) -> torch.nn.Module:
        """``create_model(cfg.model, ...)``; an identity classifier only when ``id_loss_weight > 0``."""
        from reidcore.registry import create_model

        return create_model(
            cfg.model,
            backbone=cfg.backbone,
            pretrained=cfg.pretrained,
            embedding_dim=cfg.embedding_dim,
            head_dim=cfg.head_dim,
            num_classes=num_classes if cfg.id_loss_weight > 0 else 0,
        )

    def build_criterion(self, cfg: TriNetConfig, info: CriterionInfo | None = None) -> torch.nn.Module:
        """``Criterion({"triplet": (1, cfg.loss), "id": (cfg.id_loss_weight, cross-entropy)})``.

        Raises:
            ValueError: a bad ``--margin``, or a negative ``--id-loss-weight``.
        """
        from reidcore.losses import Criterion, CrossEntropyLoss
        from reidcore.registry import create_loss

        if cfg.id_loss_weight < 0:
            raise ValueError(f"--id-loss-weight must be >= 0, got {cfg.id_loss_weight}")
        triplet = create_loss(
            cfg.loss, margin=parse_margin_text(cfg.margin), metric=cfg.triplet_metric
        )
        return Criterion(
            {
                "triplet": (1.0, triplet),
                "id": (cfg.id_loss_weight, CrossEntropyLoss(label_smoothing=cfg.label_smoothing)),
            }
        )
