"""Recipes ``views``, ``pose-maps`` and ``pse`` (Sarfraz et al., CVPR 2018; the seed's trainers).

* ``views`` trains the view predictor alone (the seed's ``trainer_views.py`` with
  ``--trainable-scopes=.../3Views``): P×K batches over the three view classes, labels from
  ``extras["view"]`` (RAP, synthetic) or pseudo-labels from keypoints
  (:func:`reid_pse.views.view_labels`); images without a view label are left out.
* ``pose-maps`` is the pose-map baseline: RGB + pose maps into a single-branch network, trained
  in the seed's two steps: first only the new layers (the widened first convolution,
  ``pre_logits`` and the ``classifier``), then the whole network from that checkpoint.
* ``pse`` is the full Pose-Sensitive Embedding, staged as the seed README describes: (1) the view
  predictor (recipe ``views``; on ``--view-dataset``, default the training set's keypoint
  pseudo-labels), (2) the new layers (first conv, ``view_units``, ``pre_logits``,
  ``classifier``) from that checkpoint with the ``classifier`` excluded, (3) the whole network.
  ``--no-staged`` trains one stage with the given ``--init-checkpoint``,
  ``--checkpoint-exclude-scopes`` and ``--trainable-scopes``, like one seed command.

The identity loss is softmax cross-entropy on the ``classifier`` (paper Sec. 3.1); an optional
batch-hard triplet term (``--triplet-loss-weight``, default 0: off as in the paper) needs
reid-trinet. ``--max-train-minutes`` is shared among the stages in proportion to their
iterations. This module imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from reidcore.recipe import CriterionInfo, Recipe, Stage, TrainConfig, field

if TYPE_CHECKING:  # pragma: no cover
    import torch


@attrs.define(kw_only=True)
class PoseConfig(TrainConfig):
    """TrainConfig plus the pose-map input and the PSE head."""

    dataset: str = field("market1501-pose-maps", "dataset with keypoints (NAME-pose-maps)")
    model: str = field("pse", "model name")
    sigma: float | None = field(None, "pose-map Gaussian std in input pixels (default: DeeperCut's radius scaled to --height)")
    pose_channels: bool = field(True, "feed the pose maps with the image (--no-pose-channels: RGB only, trained the same way; the ablation's baseline)")
    embedding_dim: int = field(1024, "size of pre_logits, the embedding")
    label_smoothing: float = field(0.0, "label smoothing of the identity cross-entropy (paper: 0)")
    triplet_loss_weight: float = field(0.0, "weight of an extra batch-hard triplet term on the embedding (paper: 0, off)")
    metric: str = field("cosine", "evaluation distance: cosine (softmax-trained features) | euclidean | ...")
    batch_p: int = field(16, "identities per P×K batch")
    batch_k: int = field(4, "images per identity in a P×K batch")


@attrs.define(kw_only=True)
class ViewsConfig(PoseConfig):
    """Config of the view predictor's training."""

    batch_p: int = field(3, "view classes per batch (front, back, side)")
    batch_k: int = field(16, "images per view class in a batch")
    iterations: int = field(2000, "training iterations")
    decay_start_iteration: int = field(1000, "trinet schedule: iteration where exponential decay starts")
    trainable_scopes: str = field("view_predictor", "parameter-name prefixes trained (the seed: 3Views)")
    view_holdout: float = field(0.2, "share of the view-labelled identities held out from view training to measure view accuracy (0: none)",
                                validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)])


@attrs.define(kw_only=True)
class PSEConfig(PoseConfig):
    """The full PSE with its staged training."""

    staged: bool = field(True, "train the seed's stages (views, new layers, all); --no-staged: one stage")
    view_dataset: str | None = field(None, "dataset for the view stage (e.g. rap; default: --dataset with keypoint pseudo-labels)")
    view_data: str | None = field(None, "folder of --view-dataset")
    view_iterations: int = field(2000, "iterations of stage 1, the view predictor")
    view_batch_k: int = field(16, "images per view class in stage 1 (3 classes per batch)")
    view_holdout: float = field(0.2, "share of the view-labelled identities held out from stage 1 to measure view accuracy (0: none)",
                                validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)])
    new_layers_iterations: int = field(5000, "iterations of stage 2, the new layers only")
    iterations: int = field(20000, "iterations of stage 3, the whole network")
    decay_start_iteration: int = field(12000, "trinet schedule of stage 3: where exponential decay starts")


def _share(cfg: TrainConfig, iterations: int, total: int) -> float | None:
    if not cfg.max_train_minutes:
        return None
    return cfg.max_train_minutes * iterations / max(total, 1)


def first_conv_scope(cfg: PoseConfig) -> str:
    """Scope of the widened first convolution, e.g. ``backbone.conv1``.

    The backbone's public ``first_conv_name`` (:func:`reid_pse.model.first_conv_name`); the
    backbone is built on the ``meta`` device, so no weight is allocated or initialised.
    """
    import torch

    from reid_pse.model import first_conv_name
    from reidcore.registry import create_backbone

    with torch.device("meta"):
        net = create_backbone(cfg.backbone, pretrained="none")
    return "backbone." + first_conv_name(net)


class _PoseRecipe(Recipe):
    """Shared parts: pose-map inputs, cross-entropy criterion, test-time flip of pose maps."""

    config_class = PoseConfig
    views = True
    paper = ("M. S. Sarfraz, A. Schumann, A. Eberle, R. Stiefelhagen. A Pose-Sensitive Embedding "
             "for Person Re-Identification with Expanded Cross Neighborhood Re-Ranking. CVPR 2018")

    def build_model(self, cfg: PoseConfig, num_classes: int) -> torch.nn.Module:
        from reid_pse.keypoints import NUM_JOINTS
        from reid_pse.model import PSENet

        return PSENet(backbone=cfg.backbone, pretrained=cfg.pretrained,
                      num_joints=NUM_JOINTS if cfg.pose_channels else 0,
                      views=self.views, embedding_dim=cfg.embedding_dim, num_classes=num_classes)

    def build_criterion(self, cfg: PoseConfig, info: CriterionInfo | None = None) -> torch.nn.Module:
        from reidcore.losses import Criterion, CrossEntropyLoss

        terms: dict[str, Any] = {"id": (1.0, CrossEntropyLoss(label_smoothing=cfg.label_smoothing))}
        if cfg.triplet_loss_weight:
            from reidcore.registry import create_loss

            terms["triplet"] = (cfg.triplet_loss_weight, create_loss("batch_hard", margin="soft"))
        return Criterion(terms)

    def train_dataset(self, cfg: PoseConfig, split: Any, labels: list[int]) -> Any:
        from reid_pse.dataset import PoseMapDataset
        from reid_pse.pose_maps import PoseTrainTransform, RGBOnly

        transform = PoseTrainTransform(cfg.height, cfg.width, cfg.pad, cfg.flip, cfg.erasing_p,
                                       cfg.sigma)
        return PoseMapDataset(self._train_samples(cfg, split), labels, cfg.height, cfg.width,
                              transform if cfg.pose_channels else RGBOnly(transform),
                              cache=cfg.cache_images)

    def _train_samples(self, cfg: PoseConfig, split: Any) -> list:
        return list(split.train)

    def embed_dataset(self, cfg: PoseConfig, samples: Any, height: int, width: int) -> Any:
        from reid_pse.dataset import PoseMapDataset
        from reid_pse.pose_maps import PoseTestTransform, RGBOnly

        sigma = cfg.sigma * height / cfg.height if cfg.sigma else None
        transform = PoseTestTransform(height, width, sigma)
        return PoseMapDataset(samples, None, height, width,
                              transform if cfg.pose_channels else RGBOnly(transform))

    def flip_input(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        from reid_pse.pose_maps import flip_pose_input

        return torch.flip(x, dims=[-1]) if x.shape[-3] == 3 else flip_pose_input(x)


class ViewsRecipe(_PoseRecipe):
    """The view predictor alone, on view labels or keypoint pseudo-labels."""

    name = "views"
    description = "PSE view predictor (front/back/side) on view labels or keypoint pseudo-labels"
    config_class = ViewsConfig

    def _labelled(self, cfg: ViewsConfig, split: Any) -> tuple[list, list[int]]:
        from reid_pse.view_eval import split_view_labelled

        train, held, labels = split_view_labelled(split.train, cfg.view_holdout)
        if not train:
            raise ValueError(f"{split.name}: no training image has a view label or keypoints to "
                             f"derive one from (outside the {len(held)} held out by "
                             f"--view-holdout {cfg.view_holdout})")
        return [split.train[i] for i in train], [int(labels[i]) for i in train]

    def train_labels(self, cfg: ViewsConfig, split: Any) -> list[int]:
        return self._labelled(cfg, split)[1]

    def _train_samples(self, cfg: ViewsConfig, split: Any) -> list:
        return self._labelled(cfg, split)[0]

    def extra_metrics(self, cfg: ViewsConfig, split: Any, model: torch.nn.Module,
                      device: Any) -> dict[str, Any]:
        """``{"views": ...}``: accuracy and confusion on the held-out view-labelled images."""
        from reid_pse.view_eval import view_accuracy

        return view_accuracy(model, cfg, split, device)

    def format_extra_metrics(self, metrics: dict[str, Any]) -> str:
        from reid_pse.view_eval import format_view_accuracy

        text = format_view_accuracy(metrics)
        return text and (text + "\n(the re-ID table above measures the embedding, which the "
                         "views recipe does not train: only the view predictor is trained)")

    def build_criterion(self, cfg: ViewsConfig, info: CriterionInfo | None = None) -> torch.nn.Module:
        from reidcore.losses import Criterion, CrossEntropyLoss

        return Criterion({"view": (1.0, CrossEntropyLoss(cfg.label_smoothing, logits_key="view_logits"))})


class PoseMapsRecipe(_PoseRecipe):
    """Pose-map input, single branch, trained new layers first, then everything."""

    name = "pose-maps"
    description = "pose-map baseline: RGB + pose maps, single branch, identity softmax (2 stages)"
    views = False

    def stages(self, cfg: PoseConfig) -> list[Stage]:
        if cfg.init_checkpoint or cfg.trainable_scopes:
            return []  # one explicit seed-style step
        new = max(1, cfg.iterations // 4)
        total = new + cfg.iterations
        first = attrs.evolve(
            cfg, iterations=new, decay_start_iteration=new // 2,
            trainable_scopes=f"{first_conv_scope(cfg)},pre_logits,classifier",
            max_train_minutes=_share(cfg, new, total))
        second = attrs.evolve(cfg, init_checkpoint="previous", max_train_minutes=_share(cfg, cfg.iterations, total))
        return [Stage("1-new-layers", self.name, first), Stage("2-all", self.name, second)]


class PSERecipe(_PoseRecipe):
    """The full PSE: view predictor, then new layers, then the whole network."""

    name = "pse"
    description = "Pose-Sensitive Embedding: pose maps + view predictor + 3 view units (3 stages)"
    config_class = PSEConfig

    def stages(self, cfg: PSEConfig) -> list[Stage]:
        if not cfg.staged:
            return []
        total = cfg.view_iterations + cfg.new_layers_iterations + cfg.iterations
        common = {f.name: getattr(cfg, f.name) for f in attrs.fields(ViewsConfig)
                  if f.name not in {"batch_p", "batch_k", "iterations", "decay_start_iteration",
                                    "trainable_scopes", "init_checkpoint",
                                    "checkpoint_exclude_scopes", "max_train_minutes"}}
        if cfg.view_dataset:
            common.update(dataset=cfg.view_dataset, data=cfg.view_data)
        views = ViewsConfig(**{**common, "batch_k": cfg.view_batch_k,
                               "iterations": cfg.view_iterations,
                               "decay_start_iteration": cfg.view_iterations // 2,
                               "max_train_minutes": _share(cfg, cfg.view_iterations, total),
                               "init_checkpoint": cfg.init_checkpoint,
                               "checkpoint_exclude_scopes": cfg.checkpoint_exclude_scopes})
        one = attrs.evolve(cfg, staged=False)
        new = attrs.evolve(
            one, iterations=cfg.new_layers_iterations,
            decay_start_iteration=cfg.new_layers_iterations // 2,
            init_checkpoint="previous", checkpoint_exclude_scopes="classifier",
            trainable_scopes=f"{first_conv_scope(cfg)},view_units,pre_logits,classifier",
            max_train_minutes=_share(cfg, cfg.new_layers_iterations, total))
        everything = attrs.evolve(one, init_checkpoint="previous", checkpoint_exclude_scopes="",
                                  trainable_scopes="",
                                  max_train_minutes=_share(cfg, cfg.iterations, total))
        return [Stage("1-views", "views", views), Stage("2-new-layers", self.name, new),
                Stage("3-all", self.name, everything)]

    def extra_metrics(self, cfg: PSEConfig, split: Any, model: torch.nn.Module,
                      device: Any) -> dict[str, Any]:
        """``{"views": ...}``: the final network's view predictor on the images held out from
        stage 1 (of ``--view-dataset`` when given, else of the training set)."""
        from reid_pse.view_eval import view_accuracy
        from reidcore.registry import load_dataset

        views = load_dataset(cfg.view_dataset, cfg.view_data) if cfg.view_dataset else split
        return view_accuracy(model, cfg, views, device)

    def format_extra_metrics(self, metrics: dict[str, Any]) -> str:
        from reid_pse.view_eval import format_view_accuracy

        return format_view_accuracy(metrics)
