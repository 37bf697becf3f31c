"""The ``example`` recipe: ExampleNet trained with the contrastive loss (no torch imported here)."""

from __future__ import annotations

import attrs

from reidcore.recipe import Recipe, TrainConfig, field


@attrs.define(kw_only=True)
class ExampleConfig(TrainConfig):
    """TrainConfig with this recipe's defaults and its own fields (each one a CLI flag)."""

    dataset: str = field("example-colours", "dataset name")
    model: str = field("example-net", "model name")
    backbone: str = field("resnet18", "backbone name")
    pretrained: str = field("none", "backbone weights: imagenet | PATH | none")
    height: int = field(32, "input height")
    width: int = field(16, "input width")
    pad: int = field(2, "padding before the random crop")
    batch_p: int = field(4, "identities per batch")
    batch_k: int = field(3, "images per identity")
    iterations: int = field(200, "training iterations")
    decay_start_iteration: int = field(100, "start of the exponential decay")
    embedding_dim: int = field(64, "embedding size")
    margin: float = field(1.0, "contrastive margin")


class ExampleRecipe(Recipe):
    name = "example"
    description = "example plugin: ExampleNet + contrastive loss on toy colour identities"
    paper = "Hadsell, Chopra, LeCun. Dimensionality Reduction by Learning an Invariant Mapping. CVPR 2006"
    config_class = ExampleConfig

    def build_model(self, cfg: ExampleConfig, num_classes: int):
        from reidcore.registry import create_model

        return create_model(cfg.model, backbone=cfg.backbone, pretrained=cfg.pretrained,
                            embedding_dim=cfg.embedding_dim)

    def build_criterion(self, cfg: ExampleConfig):
        from reidcore.losses import Criterion
        from reidcore.registry import create_loss

        return Criterion({"contrastive": (1.0, create_loss("contrastive", margin=cfg.margin))})
