"""The ``dcnn`` recipe: layumi's training settings for the identification + verification net.

Defaults follow the seed README and ``train_new.py``: ResNet-50 (ImageNet), 256×128 input
(pad 10 + random crop, flip), batch 32 (P×K = 8×4 so that every image has positive
partners), SGD momentum 0.9 (Nesterov), weight decay 5e-4, lr 0.1 for the new layers and
0.01 for the pretrained backbone, step decay ×0.1; ``alpha`` = 1 weights the verification
loss; test-time features are the descriptor of the image plus its flip, L2-normalised, compared
with the cosine distance. layumi trains on ``train_all`` (train + val); reidcore's readers give
the whole training part, which is that. No torch imported here.
"""

from __future__ import annotations

import attrs

from reidcore.recipe import CriterionInfo, Recipe, TrainConfig, field


@attrs.define(kw_only=True)
class DCNNConfig(TrainConfig):
    model: str = field("dcnn", "model name")
    batch_p: int = field(8, "identities per batch (P×K = 32 as the seed's --batchsize 32)")
    batch_k: int = field(4, "images per identity")
    optimizer: str = field("sgd", "adam | sgd")
    lr: float = field(0.1, "learning rate of the new layers")
    backbone_lr_factor: float = field(0.1, "backbone lr = lr × this (seed: 0.01 vs 0.1)")
    momentum: float = field(0.9, "SGD momentum (Nesterov)")
    weight_decay: float = field(5e-4, "weight decay")
    schedule: str = field("multistep", "trinet | multistep | constant")
    iterations: int = field(24000, "iterations (≈ 60 epochs of Market-1501 train_all at 32)")
    milestones: tuple[int, ...] = field((16000,), "multistep: iterations where lr ×= gamma (≈ epoch 40)", converter=tuple)
    erasing_p: float = field(0.0, "random erasing probability (seed: --erasing_p, e.g. 0.5)")
    flip_augment: bool = field(True, "test-time: add the flipped image's descriptor")
    aggregator: str = field("normalized_mean", "test-time: L2-normalise the summed descriptors")
    metric: str = field("cosine", "evaluation distance")
    embedding_dim: int = field(512, "descriptor size (the 512-d bottleneck)")
    dropout: float = field(0.5, "dropout before the classifiers")
    alpha: float = field(1.0, "weight of the verification loss (seed: --alpha)")
    verification_layer: str = field("product", "product (x*y, layumi) | square ((x-y)^2, the paper)")
    positive_ratio: float = field(0.5, "fraction of positive pairs the pair sampler draws")
    label_smoothing: float = field(0.0, "label smoothing of the identification loss")


class DCNNRecipe(Recipe):
    name = "dcnn"
    description = "identification + verification Siamese embedding (512-d descriptor, x*y verification)"
    paper = ("Z. Zheng, L. Zheng, Y. Yang. A Discriminatively Learned CNN Embedding for Person "
             "Re-identification. ACM TOMM 2017")
    config_class = DCNNConfig

    def build_model(self, cfg: DCNNConfig, num_classes: int):
        from reidcore.registry import create_model

        return create_model(cfg.model, backbone=cfg.backbone, pretrained=cfg.pretrained,
                            embedding_dim=cfg.embedding_dim, num_classes=num_classes,
                            dropout=cfg.dropout)

    def build_criterion(self, cfg: DCNNConfig, info: CriterionInfo | None = None):
        from reidcore.losses import Criterion
        from reidcore.registry import create_loss

        loss = create_loss("identification_verification", dim=cfg.embedding_dim, alpha=cfg.alpha,
                           layer=cfg.verification_layer, positive_ratio=cfg.positive_ratio,
                           dropout=cfg.dropout, label_smoothing=cfg.label_smoothing)
        return Criterion({"idver": (1.0, loss)})
