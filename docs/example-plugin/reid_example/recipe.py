"""The ``example`` recipe: ExampleNet trained with the contrastive loss (no torch imported here)."""

from __future__ import annotations

import attrs

from reidcore.recipe import CriterionInfo, Recipe, TrainConfig, default, field


@attrs.define(kw_only=True)
class ExampleConfig(TrainConfig):
    """TrainConfig with this recipe's defaults and its own fields (each one a CLI flag)."""

    # the core's fields with this recipe's defaults: help text and checks stay the core's
    dataset: str = default("example-colours")
    model: str = default("example-net")
    backbone: str = default("resnet18")
    pretrained: str = default("none")
    height: int = default(32)
    width: int = default(16)
    pad: int = default(2)
    batch_p: int = default(4)
    batch_k: int = default(3)
    iterations: int = default(200)
    decay_start_iteration: int = default(100)
    embedding_dim: int = default(64)
    # this recipe's own fields, checked when the flags are parsed (before any folder exists)
    margin: float = field(1.0, "contrastive margin: distance beyond which negatives cost nothing",
                          group="optimisation", above=0.0)


class ExampleRecipe(Recipe):
    name = "example"
    description = "example plugin: ExampleNet + contrastive loss on toy colour identities"
    paper = "Hadsell, Chopra, LeCun. Dimensionality Reduction by Learning an Invariant Mapping. CVPR 2006"
    config_class = ExampleConfig

    def build_model(self, cfg: ExampleConfig, num_classes: int):
        from reidcore.registry import create_model

        return create_model(cfg.model, backbone=cfg.backbone, pretrained=cfg.pretrained,
                            embedding_dim=cfg.embedding_dim)

    def build_criterion(self, cfg: ExampleConfig, info: CriterionInfo):
        from reidcore.losses import Criterion
        from reidcore.registry import create_loss

        return Criterion({"contrastive": (1.0, create_loss("contrastive", margin=cfg.margin))})
