"""The ``dcnn`` recipe: layumi's training settings for the identification + verification net.

Defaults follow the seed README, ``train_new.py`` and ``model.py``: ResNet-50 (ImageNet),
256×128 input (pad 10 + random crop, flip), batch 32 (P×K = 8×4 so that every image has
positive partners), SGD momentum 0.9 (Nesterov), weight decay 5e-4, the backbone at 0.1× the
new layers' learning rate, step decay ×0.1; the 512-d descriptor is the bottleneck's BN output
(no ReLU); the verification classifier (the seed's ``verif_net``: FC + BN, dropout 0.75,
FC(512, 2)) sees the product of the two L2-normalised descriptors; ``alpha`` = 1 weights the
verification loss; test-time features are the descriptor of the image plus its flip,
L2-normalised, compared with the cosine distance. layumi trains on ``train_all`` (train +
val); reidcore's readers give the whole training part, which is that. No torch imported here.

Learning rate (issue 16). The seed's lr 0.1 for the new layers (0.01 for the backbone) was
tuned for ResNet-50 with shuffled batches, and its README warns the learning rate is "far
from optimal". With P×K batches it overshoots: on the Market-1501 holdout (MobileNetV2,
128×64) the identification loss rose above ln(501) = 6.2 in the first iterations and was
still 5.3 after 9 epochs (rank-1 13.8 %). On frozen backbone features the head alone reached
an identification loss of 2.65 after 600 iterations at lr 0.01 against 3.68 at lr 0.1
(``benchmarks/dcnn_head_probe.py``, ``benchmarks/results/dcnn_head_probe.json``), so the
default is lr 0.01 (backbone 0.001); ``--lr 0.1`` restores the seed's. After 150 full
training iterations the pre-fix settings had wrecked the ImageNet features (rank-1 1.7 %,
mAP 1.6 %, below the untrained network's 13.9 % / 6.2 %); these defaults kept them (11.4 % /
6.0 %) (``benchmarks/results/dcnn_fix_market1501_holdout.json``).
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
    lr: float = field(0.01, "learning rate of the new layers (seed: 0.1, which overshoots with P×K batches)")
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
    dropout: float = field(0.5, "dropout before the identity classifier (seed: 0.5)")
    bottleneck_relu: bool = field(False, "ReLU after the bottleneck's BN (seed: none)")
    alpha: float = field(1.0, "weight of the verification loss (seed: --alpha)")
    verification_layer: str = field("product", "product (x*y, layumi) | square ((x-y)^2, the paper)")
    verification_normalize: bool = field(
        True, "L2-normalise the descriptors before the verification layer (seed: yes)")
    verification_hidden: bool = field(
        True, "verification head FC(512, 512) + BN before FC(512, 2), as the seed's verif_net")
    verification_dropout: float = field(0.75, "dropout before the verification classifier (seed: 0.75)")
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
                            dropout=cfg.dropout, relu=cfg.bottleneck_relu)

    def build_criterion(self, cfg: DCNNConfig, info: CriterionInfo | None = None):
        from reidcore.losses import Criterion
        from reidcore.registry import create_loss

        loss = create_loss("identification_verification", dim=cfg.embedding_dim, alpha=cfg.alpha,
                           layer=cfg.verification_layer, positive_ratio=cfg.positive_ratio,
                           dropout=cfg.verification_dropout, label_smoothing=cfg.label_smoothing,
                           normalize=cfg.verification_normalize, hidden=cfg.verification_hidden)
        return Criterion({"idver": (1.0, loss)})
