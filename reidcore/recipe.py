"""Recipes: a method's model, losses and default hyper-parameters, as one attrs config.

A recipe is a subclass of :class:`Recipe` registered through the ``reid_recipes``
hook. Its ``config_class`` (a subclass of :class:`TrainConfig`) lists every
hyper-parameter with the paper's default; each field becomes a CLI flag of
``python -m reidcore run RECIPE`` (``batch_p`` -> ``--batch-p``), so every default
can be overridden. This module imports no torch: ``--help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:  # pragma: no cover
    import torch


#: evaluation distances (:data:`reidcore.evaluation.METRICS`; kept here so --help needs no torch)
METRIC_NAMES = ("euclidean", "sqeuclidean", "cityblock", "cosine")
#: AP definitions (:data:`reidcore.evaluation.AP_DEFINITIONS`)
AP_NAMES = ("step", "trapezoid")
#: query averaging (:data:`reidcore.evaluation.AVERAGES`)
AVERAGE_NAMES = ("valid", "all")
#: test-time crops and aggregators (:mod:`reidcore.engine.embed`)
CROP_NAMES = ("none", "center", "five")
AGGREGATOR_NAMES = ("mean", "normalized_mean")
#: tracklet pooling of video datasets (:data:`reidcore.evaluation.video.POOLINGS`)
POOLING_NAMES = ("mean", "max")
OPTIMIZER_NAMES = ("adam", "amsgrad", "sgd")
SCHEDULE_NAMES = ("trinet", "multistep", "constant")

#: help groups of the config flags, in the order ``--help`` shows them
GROUPS = ("data", "model", "optimisation", "schedule", "evaluation", "run")


def field(default: Any, help: str, *, group: str | None = None, minimum: float | None = None,
          above: float | None = None, maximum: float | None = None,
          choices: tuple[str, ...] | None = None, registry: str | None = None,
          extra_choices: tuple[str, ...] = (), flag: bool = True, **kw: Any) -> Any:
    """An attrs field with its CLI help text and the constraints checked when a config is made.

    Args:
        default: the recipe default.
        help: the flag's help text.
        group: ``--help`` section (:data:`GROUPS`); a recipe's own fields default to its section.
        minimum, maximum: inclusive bounds of a number; ``above``: an exclusive lower bound.
        choices: the allowed strings.
        registry: a registry kind (``"excluder"``, ``"reranker"``, ...) whose names are allowed
            (checked by :func:`check_registered` and at parse time, not on construction);
            ``extra_choices`` are allowed besides them (e.g. ``"none"``).
        flag: False for a field without its own ``--flag`` (set through another option).

    A subclass that re-declares a field (``lr: float = 1e-3``, or with :func:`field`) keeps
    the base field's help, group and constraints unless it gives its own.
    """
    meta = {"help": help, **kw.pop("metadata", {})}
    for key, value in (("group", group), ("minimum", minimum), ("above", above),
                       ("maximum", maximum), ("choices", choices), ("registry", registry)):
        if value is not None:
            meta[key] = value
    if extra_choices:
        meta["extra_choices"] = tuple(extra_choices)
    if not flag:
        meta["flag"] = False
    return attrs.field(default=default, metadata=meta, **kw)


def default(value: Any) -> Any:
    """Change an inherited field's default in a recipe config, keeping its help and checks::

        @attrs.define(kw_only=True)
        class MyConfig(TrainConfig):
            lr: float = default(1e-3)
    """
    return attrs.field(default=value)


def field_spec(config_class: type, name: str) -> dict[str, Any]:
    """The merged metadata of field ``name``: the nearest class's own values first, then
    those of the classes it derives from (help, group, bounds, choices, registry)."""
    spec: dict[str, Any] = {}
    for klass in config_class.__mro__:
        if not attrs.has(klass):
            continue
        f = getattr(attrs.fields(klass), name, None)
        if f is None:
            continue
        for key, value in f.metadata.items():
            spec.setdefault(key, value)
    return spec


def check_value(name: str, value: Any, spec: dict[str, Any]) -> str | None:
    """Why ``value`` breaks the static constraints of ``spec`` (a message), or None."""
    if value is None or isinstance(value, bool):
        return None
    flag = "--" + name.replace("_", "-")
    if isinstance(value, int | float):
        if "minimum" in spec and value < spec["minimum"]:
            return f"{flag} must be >= {spec['minimum']}, got {value}"
        if "above" in spec and not value > spec["above"]:
            return f"{flag} must be > {spec['above']}, got {value}"
        if "maximum" in spec and value > spec["maximum"]:
            return f"{flag} must be <= {spec['maximum']}, got {value}"
    if "choices" in spec and value not in spec["choices"]:
        import difflib

        close = difflib.get_close_matches(str(value), spec["choices"], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"{flag} {value!r} is not one of {', '.join(spec['choices'])}.{hint}"
    return None


def check_registered(cfg: Any) -> None:
    """Check every registry-backed name of ``cfg`` (excluder, re-ranker, dataset, ...).

    Raises:
        UnknownNameError: a name no plugin registers (lists the known ones, nearest first).
    """
    from reidcore.errors import UnknownNameError
    from reidcore.registry import registry

    options = getattr(cfg, "dataset_options", None)
    if options:
        from reidcore.dataset_options import check_options

        check_options(cfg.dataset, options)
    for f in attrs.fields(type(cfg)):
        spec = field_spec(type(cfg), f.name)
        kind = spec.get("registry")
        value = getattr(cfg, f.name)
        if kind is None or value is None or value in spec.get("extra_choices", ()):
            continue
        reg = registry(kind)
        if value not in reg:
            raise UnknownNameError(kind, value, [*reg.names(), *spec.get("extra_choices", ())],
                                   f"(--{f.name.replace('_', '-')})")


@attrs.define(kw_only=True)
class TrainConfig:
    """Hyper-parameters shared by every recipe (defaults: TriNet, Hermans et al. 2017, Sec. 4)."""

    # data
    dataset: str = field("synthetic", "dataset name (python -m reidcore list datasets)", group="data")
    data: str | None = field(None, "dataset root folder (default: the reader's own)", group="data")
    height: int = field(256, "network input height in pixels", group="data", minimum=1)
    width: int = field(128, "network input width in pixels", group="data", minimum=1)
    pad: int = field(10, "pixels of zero padding before the random crop back to height x width (0: off)",
                     group="data", minimum=0)
    flip: bool = field(True, "random horizontal flip during training", group="data")
    erasing_p: float = field(0.0, "probability of random erasing (Zhong et al. 2020) per training image",
                             group="data", minimum=0.0, maximum=1.0)
    cache_images: bool = field(False, "decode all training images into memory once (small datasets)", group="data")
    dataset_options: dict = field(
        attrs.Factory(dict), "dataset reader options (--dataset-option KEY=VALUE, repeatable)",
        group="data", flag=False)
    workers: int = field(2, "DataLoader worker processes (0: load in the main process)", group="data", minimum=0)
    # model
    model: str = field("trinet", "model name (python -m reidcore list models)", group="model")
    backbone: str = field("resnet50", "backbone name (resnet50, resnet18, mobilenet_v2, ...)", group="model")
    pretrained: str = field("imagenet", "backbone weights: imagenet | PATH to a state dict | none", group="model")
    # sampler
    batch_p: int = field(18, "identities per P×K batch", group="data", minimum=1)
    batch_k: int = field(4, "images per identity in a P×K batch", group="data", minimum=1)
    # optimisation
    optimizer: str = field("adam", "adam | amsgrad | sgd", group="optimisation", choices=OPTIMIZER_NAMES)
    lr: float = field(3e-4, "base learning rate", group="optimisation", above=0.0)
    weight_decay: float = field(0.0, "weight decay", group="optimisation", minimum=0.0)
    momentum: float = field(0.9, "SGD momentum", group="optimisation", minimum=0.0)
    backbone_lr_factor: float = field(1.0, "learning-rate multiplier of the pretrained backbone",
                                      group="optimisation", minimum=0.0)
    amp: bool = field(True, "mixed precision on CUDA (bf16 where supported, else fp16)", group="optimisation")
    device: str = field("auto", "auto | cpu | cuda | cuda:N", group="run")
    channels_last: bool = field(True, "channels_last memory format of model and input batches (CUDA only)",
                                group="optimisation")
    compile: bool = field(False, "torch.compile the model for training (first iterations compile)",
                          group="optimisation")
    gather_embeddings: bool = field(
        False, "DDP (torchrun): all-gather the batch's outputs so the loss mines the global P×K batch",
        group="optimisation")
    find_unused_parameters: bool = field(
        False, "DDP (torchrun): the model has parameters the loss does not use in every step",
        group="optimisation")
    seed: int = field(0, "random seed (sampler, augmentation, initialisation)", group="run")
    # schedule
    schedule: str = field("trinet", "trinet (constant, then exponential decay) | multistep | constant",
                          group="schedule", choices=SCHEDULE_NAMES)
    iterations: int = field(25000, "training iterations (batches)", group="schedule", minimum=1)
    decay_start_iteration: int = field(15000, "trinet schedule: iteration where exponential decay starts",
                                       group="schedule", minimum=0)
    final_lr_factor: float = field(1e-3, "trinet schedule: lr at the last iteration, relative to --lr",
                                   group="schedule", above=0.0)
    milestones: tuple[int, ...] = field((), "multistep schedule: iterations where lr is multiplied by --gamma",
                                        converter=tuple, group="schedule")
    gamma: float = field(0.1, "multistep schedule: lr factor at each milestone", group="schedule", above=0.0)
    warmup_iterations: int = field(0, "linear warm-up iterations from --warmup-factor x lr", group="schedule",
                                   minimum=0)
    warmup_factor: float = field(0.01, "lr factor at the first warm-up iteration", group="schedule", above=0.0)
    checkpoint_every: int = field(1000, "iterations between checkpoints", group="schedule", minimum=1)
    log_every: int = field(50, "iterations between log lines", group="run", minimum=1)
    progress: bool = field(True, "progress bar with loss, lr and images/s (only when stdout is a terminal)",
                           group="run")
    tensorboard: bool = field(True, "TensorBoard event files in the experiment folder (needs reidcore[tensorboard])",
                              group="run")
    max_train_minutes: float | None = field(None, "stop training cleanly after this many minutes (a CPU budget)",
                                            group="schedule", above=0.0)
    keep_stage_checkpoints: bool = field(
        False, "staged recipes: keep every stage's checkpoints with optimizer state (default: a stage's "
        "checkpoints go once the next stage has its own, and a finished run keeps its final weights only)",
        group="run")
    fit_schedule_to_budget: bool = field(
        False, "time the first iterations and scale --iterations, the decay start, milestones and warm-up "
        "so the whole schedule fits --max-train-minutes (recorded in schedule.json for --resume)",
        group="schedule")
    loss_lr: float | None = field(None, "learning rate of the loss's own parameters, e.g. centres of a center loss "
                                  "(default: --lr)", group="optimisation", above=0.0)
    divergence_factor: float = field(
        1000.0, "stop when the loss exceeds this many times its running median (0: only NaN/inf stop)",
        group="optimisation", minimum=0.0)
    # staged training (the PSE seed's --initial-checkpoint / --checkpoint-exclude-scopes / --trainable-scopes)
    init_checkpoint: str | None = field(
        None, "initialise the model from this checkpoint file or experiment folder (new runs only)", group="model")
    checkpoint_exclude_scopes: str = field(
        "", "comma-separated parameter-name prefixes NOT restored from --init-checkpoint (e.g. classifier,backbone.conv1)",
        group="model")
    trainable_scopes: str = field(
        "", "comma-separated parameter-name prefixes that are trained; the rest is frozen (empty: train all)",
        group="optimisation")
    # embedding and evaluation
    embed_batch_size: int = field(128, "batch size when computing embeddings", group="evaluation", minimum=1)
    flip_augment: bool = field(False, "test-time augmentation: add the horizontally flipped image", group="evaluation")
    crop_augment: str = field("none", "test-time crops: none | center | five (triplet-reid's embed.py)",
                              group="evaluation", choices=CROP_NAMES)
    aggregator: str = field("mean", "how augmented embeddings are combined: mean | normalized_mean",
                            group="evaluation", choices=AGGREGATOR_NAMES)
    metric: str = field("euclidean", "evaluation distance: euclidean | sqeuclidean | cityblock | cosine",
                        group="evaluation", choices=METRIC_NAMES)
    excluder: str = field("market1501", "evaluation protocol: market1501 | diagonal | cuhk03 | none, or a "
                          "plugin's (python -m reidcore list excluders)", group="evaluation", registry="excluder")
    rerank: str = field("none", "re-ranker evaluated besides the plain ranking: none | k-reciprocal | ecn (reid-pse) "
                        "(report.json 'reranked')", group="evaluation", registry="reranker",
                        extra_choices=("none",))
    ap: str = field("step", "AP definition: step (torchreid, fast-reid) | trapezoid (Market-1501 MATLAB)",
                    group="evaluation", choices=AP_NAMES)
    average: str = field("valid", "average over valid queries | all queries (MATLAB denominator)",
                         group="evaluation", choices=AVERAGE_NAMES)
    tracklet_pooling: str = field("mean", "video datasets (samples with a 'tracklet'): mean | max pooling of frame features",
                                  group="evaluation", choices=POOLING_NAMES)

    def __attrs_post_init__(self) -> None:
        """Check every field against its constraints (:func:`field`): a clear ValueError
        naming the flag and the value, before anything is written."""
        for f in attrs.fields(type(self)):
            problem = check_value(f.name, getattr(self, f.name), field_spec(type(self), f.name))
            if problem:
                raise ValueError(problem)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self, recurse=True, value_serializer=lambda _i, _f, v: list(v) if isinstance(v, tuple) else v)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields in args.json: {', '.join(unknown)}")
        return cls(**data)


@attrs.frozen
class CriterionInfo:
    """What :meth:`Recipe.build_criterion` learns about the model it trains.

    Attributes:
        num_classes: training identities (the classifier's outputs), e.g. a center loss's
            number of centres.
        embedding_dim: the model's embedding size ``D`` (its ``embedding_dim`` attribute),
            None when the model does not declare one.
    """

    num_classes: int
    embedding_dim: int | None = None


@attrs.frozen
class Stage:
    """One stage of a multi-stage recipe (see :meth:`Recipe.stages`).

    Attributes:
        name: folder name of the stage under ``EXPERIMENT/stages/`` (e.g. ``"1-views"``).
        recipe: the registered recipe that trains this stage.
        config: its complete config (a ``config_class`` instance of that recipe). An
            ``init_checkpoint`` of ``"previous"`` means the previous stage's experiment.
    """

    name: str
    recipe: str
    config: TrainConfig


class Recipe:
    """Base class of recipes. Subclasses set the class attributes and build methods.

    Extension points a recipe may override (defaults: RGB images, P×K over identities):
    :meth:`build_model`, :meth:`build_criterion`, :meth:`param_groups`,
    :meth:`train_labels`, :meth:`train_dataset`, :meth:`embed_dataset`,
    :meth:`flip_input` and :meth:`stages`.

    Attributes:
        name: the registered name (``run NAME``).
        description: one line shown by ``python -m reidcore list recipes``.
        paper: the paper the defaults come from.
        config_class: the attrs config (a :class:`TrainConfig` subclass).
    """

    name: str = ""
    description: str = ""
    paper: str = ""
    config_class: type[TrainConfig] = TrainConfig

    def default_config(self, **overrides: Any) -> TrainConfig:
        return self.config_class(**overrides)

    def build_model(self, cfg: TrainConfig, num_classes: int) -> torch.nn.Module:
        """The model to train; ``num_classes`` is the number of training identities."""
        raise NotImplementedError(f"recipe {self.name!r} does not define build_model")

    def build_criterion(self, cfg: TrainConfig, info: CriterionInfo | None = None) -> torch.nn.Module:
        """The training criterion, a module (the one criterion contract):

        ``criterion(outputs, pids, targets=None) -> (loss, stats)`` where ``outputs`` is the
        model's training output (a dict with ``"embedding"`` ``(B, D)``, ...), ``pids`` ``(B,)``
        int64 labels, ``targets`` the dataset's extra per-image targets (a dict; passed only
        when :meth:`train_dataset` yields dict inputs), ``loss`` a float32 scalar tensor and
        ``stats`` a ``dict[str, float]`` of logged statistics. ``reidcore.losses.Criterion``
        (a weighted sum of registered losses) follows it.

        ``info`` (:class:`CriterionInfo`) gives the number of classes and the embedding size.
        Trainable parameters of the criterion get their own optimizer group at ``--loss-lr``
        (default ``--lr``), or the groups of the criterion's ``param_groups(cfg)`` method
        when it defines one (``[{"params": [...], "lr": ...}, ...]``).
        """
        raise NotImplementedError(f"recipe {self.name!r} does not define build_criterion")

    def train_labels(self, cfg: TrainConfig, split: Any) -> list[int]:
        """Class label per training sample, the P×K sampler's classes (default: relabelled pids)."""
        return split.train_labels

    def train_dataset(self, cfg: TrainConfig, split: Any, labels: list[int]) -> Any:
        """The training ``torch.utils.data.Dataset`` of ``(inputs, label, index)``.

        ``inputs`` is a float32 tensor ``(C, H, W)`` given to the model, or a dict with
        the model input under ``"image"`` plus training targets (e.g. ``"texture"``),
        which the trainer moves to the device and passes to the criterion as
        ``criterion(outputs, labels, targets)``. Default: RGB images with
        :func:`reidcore.data.transforms.train_augment`.
        """
        from reidcore.data.dataset import ImageDataset
        from reidcore.data.transforms import train_augment

        return ImageDataset(split.train, labels, cfg.height, cfg.width,
                            train_augment(cfg.height, cfg.width, cfg.pad, cfg.flip, cfg.erasing_p),
                            cache=cfg.cache_images)

    def embed_dataset(self, cfg: TrainConfig, samples: Any, height: int, width: int) -> Any:
        """Test-time Dataset of ``(x float32 (C, height, width) normalised, label, index)``.

        ``height``/``width`` are larger than the network input when crops are taken.
        Default: RGB images resized and ImageNet-normalised.
        """
        from reidcore.data.dataset import ImageDataset
        from reidcore.data.transforms import to_normalized

        return ImageDataset(samples, None, height, width, to_normalized())

    def flip_input(self, x: torch.Tensor) -> torch.Tensor:
        """Horizontal mirror of a test batch ``(B, C, H, W)`` (test-time flip augmentation)."""
        import torch

        return torch.flip(x, dims=[-1])

    def stages(self, cfg: TrainConfig) -> list[Stage]:
        """Stages trained one after the other by ``run`` (default: none, a single training).

        When non-empty, ``run`` trains each stage in ``EXPERIMENT/stages/NAME/`` (each
        resumable), chaining ``init_checkpoint="previous"``, and evaluates the last stage's
        model with the last stage's recipe.
        """
        return []

    def extra_metrics(self, cfg: TrainConfig, split: Any, model: torch.nn.Module,
                      device: Any) -> dict[str, Any]:
        """Recipe-specific metrics of the trained ``model``, merged into report.json by ``run``.

        Called after the re-ID evaluation with the (last stage's) config and split; returns
        ``{key: JSON value}`` (default: none). E.g. reid-pse's ``views``/``pse``: the view
        predictor's held-out accuracy under ``"views"``.
        """
        return {}

    def format_extra_metrics(self, metrics: dict[str, Any]) -> str:
        """Text ``run`` prints below the report table for :meth:`extra_metrics` (default: none)."""
        return ""

    def param_groups(self, cfg: TrainConfig, model: torch.nn.Module) -> list[dict[str, Any]]:
        """Optimizer parameter groups: the backbone at ``lr * backbone_lr_factor``."""
        backbone = getattr(model, "backbone", None)
        if backbone is None or cfg.backbone_lr_factor == 1.0:
            return [{"params": [p for p in model.parameters() if p.requires_grad], "lr_factor": 1.0}]
        ids = {id(p) for p in backbone.parameters()}
        return [
            {"params": [p for p in backbone.parameters() if p.requires_grad], "lr_factor": cfg.backbone_lr_factor},
            {"params": [p for p in model.parameters() if p.requires_grad and id(p) not in ids], "lr_factor": 1.0},
        ]
