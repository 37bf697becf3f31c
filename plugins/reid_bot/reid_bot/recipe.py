"""The ``bot`` recipe: the strong baseline's model, losses and hyper-parameters.

Luo, Gu, Liao, Lai, Jiang, "Bag of Tricks and A Strong Baseline for Deep Person
Re-identification", CVPR Workshops 2019 (arXiv:1903.07071), Sec. 3 and the authors' code
(michuanhaohao/reid-strong-baseline, ``softmax_triplet_with_center.yml``):

* ResNet-50 (ImageNet) with the last stride 1, BNNeck, bias-free classifier;
* 256×128 input, zero padding 10 + random crop, horizontal flip, random erasing p = 0.5;
* P×K = 16×4 batches; ID loss (cross-entropy with label smoothing ε = 0.1) on the
  classifier after the BNNeck + batch-hard triplet loss (margin 0.3, euclidean) on the
  feature before it; optionally + 0.0005 × center loss (centers trained at lr 0.5);
* Adam, weight decay 5e-4, lr 3.5e-4 with a linear warm-up from 3.5e-5 over 10 epochs and
  ×0.1 at epochs 40 and 70, 120 epochs;
* test: the feature after the BNNeck, cosine distance, no flip.

Published on Market-1501 (ResNet-50, 256×128, without center loss, Table 1): rank-1 94.1 %,
mAP 85.7 %; with k-reciprocal re-ranking (``--rerank k-reciprocal``) 95.4 % / 94.2 %.

Epochs → iterations. The authors' schedule is in epochs of their identity sampler, about
one pass over Market-1501's 12,936 training images: 12,936 / (16 × 4) = 202.1, so one epoch
is taken as :data:`ITERATIONS_PER_EPOCH` = 202 iterations: warm-up 10 epochs = 2,020
iterations, decay at epochs 40 and 70 = iterations 8,080 and 14,140, 120 epochs = 24,240
iterations. The warm-up rises linearly per iteration (the authors' steps once per epoch).
For another dataset or batch scale all four numbers by ``N_train / 64 / 202``.

This module imports no torch (``--help`` stays fast); the builders import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from reidcore.recipe import CriterionInfo, Recipe, TrainConfig, field

if TYPE_CHECKING:  # pragma: no cover
    import torch

MARKET1501_TRAIN_IMAGES = 12936
ITERATIONS_PER_EPOCH = 202
"""Market-1501's 12,936 training images / 64 images per P×K batch, rounded down."""


def epochs(n: float) -> int:
    """``n`` of the paper's Market-1501 epochs in iterations (``n × 202``)."""
    return int(round(n * ITERATIONS_PER_EPOCH))


@attrs.define(kw_only=True)
class BoTConfig(TrainConfig):
    """TrainConfig with the strong baseline's defaults (Luo et al. 2019)."""

    model: str = field("bot", "model name")
    backbone: str = field("resnet50", "backbone name (the paper: resnet50)")
    last_stride: int = field(1, "stride of the backbone's last down-sampling stage (paper: 1)")
    neck_feat: str = field("after", "test-time embedding: after | before the BNNeck (paper: after)")
    batch_p: int = field(16, "identities per P×K batch (paper: 16)")
    batch_k: int = field(4, "images per identity (paper: 4)")
    erasing_p: float = field(0.5, "random erasing probability (paper: 0.5)")
    optimizer: str = field("adam", "adam | amsgrad | sgd (paper: adam)")
    lr: float = field(3.5e-4, "base learning rate (paper: 3.5e-4)")
    weight_decay: float = field(5e-4, "weight decay (paper: 5e-4)")
    schedule: str = field("multistep", "learning-rate schedule (paper: warm-up + multistep)")
    iterations: int = field(epochs(120), "training iterations (120 epochs × 202)")
    milestones: tuple[int, ...] = field(
        (epochs(40), epochs(70)), "iterations where lr ×= gamma (epochs 40 and 70 × 202)",
        converter=tuple)
    gamma: float = field(0.1, "multistep lr factor (paper: 0.1)")
    warmup_iterations: int = field(epochs(10), "linear warm-up iterations (10 epochs × 202)")
    warmup_factor: float = field(0.1, "lr factor at the start of the warm-up (3.5e-5 / 3.5e-4)")
    margin: float = field(0.3, "batch-hard triplet margin (paper: 0.3)")
    triplet_weight: float = field(1.0, "weight of the batch-hard triplet loss on the feature before the BNNeck")
    id_loss_weight: float = field(1.0, "weight of the identity cross-entropy after the BNNeck")
    label_smoothing: float = field(0.1, "label smoothing epsilon of the ID loss (paper: 0.1)")
    center_loss: bool = field(False, "add the center loss (paper Sec. 3.6; off for the 94.1/85.7 row)")
    center_loss_weight: float = field(0.0005, "center loss weight beta (paper: 0.0005)")
    center_lr: float = field(0.5, "learning rate of the centers' own SGD (paper: 0.5)")
    metric: str = field("cosine", "evaluation distance (paper: cosine)")


class BoTRecipe(Recipe):
    """The strong baseline (Luo et al. 2019): BNNeck, triplet + label-smoothed ID loss."""

    name = "bot"
    description = ("strong baseline: ResNet-50 last stride 1, BNNeck, triplet + label-smoothed ID "
                   "(+ center) loss, warm-up, random erasing")
    paper = ("H. Luo, Y. Gu, X. Liao, S. Lai, W. Jiang. Bag of Tricks and A Strong Baseline for "
             "Deep Person Re-identification. CVPR Workshops 2019 (arXiv:1903.07071)")
    config_class = BoTConfig

    def build_model(self, cfg: BoTConfig, num_classes: int) -> torch.nn.Module:
        """``create_model(cfg.model, ...)`` with an identity classifier of ``num_classes``."""
        from reidcore.registry import create_model

        return create_model(cfg.model, backbone=cfg.backbone, pretrained=cfg.pretrained,
                            num_classes=num_classes, last_stride=cfg.last_stride,
                            neck_feat=cfg.neck_feat)

    def build_criterion(self, cfg: BoTConfig, info: CriterionInfo) -> torch.nn.Module:
        """``Criterion`` of ID (after BNNeck) + triplet (before) [+ beta × center (before)];
        the center loss has one center per training identity (``info.num_classes``) of the
        feature size ``info.embedding_dim``.

        Raises:
            ValueError: a negative loss weight.
        """
        from reidcore.losses import Criterion, CrossEntropyLoss
        from reidcore.registry import create_loss

        for name in ("triplet_weight", "id_loss_weight", "center_loss_weight"):
            if getattr(cfg, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(cfg, name)}")
        terms: dict[str, tuple[float, Any]] = {
            "id": (cfg.id_loss_weight, CrossEntropyLoss(label_smoothing=cfg.label_smoothing)),
            "triplet": (cfg.triplet_weight,
                        create_loss("batch_hard", margin=cfg.margin, metric="euclidean")),
        }
        if cfg.center_loss and cfg.center_loss_weight > 0:
            terms["center"] = (cfg.center_loss_weight, create_loss(
                "center", num_classes=info.num_classes,
                feat_dim=info.embedding_dim, center_lr=cfg.center_lr,
                weight=cfg.center_loss_weight))
        return Criterion(terms)

    def train_dataset(self, cfg: BoTConfig, split: Any, labels: list[int]) -> Any:
        """RGB training images with the authors' augmentation (see :func:`reid_bot.augment.train_augment`)."""
        from reid_bot.augment import train_augment
        from reidcore.data.dataset import ImageDataset

        return ImageDataset(split.train, labels, cfg.height, cfg.width,
                            train_augment(cfg.height, cfg.width, cfg.pad, cfg.flip, cfg.erasing_p),
                            cache=cfg.cache_images)
