"""Hook specifications of the ``reidcore`` entry-point group.

A plugin is a module (named by an entry point of group ``reidcore``) holding
hook implementations marked with :data:`hookimpl`. Every hook takes no argument
and returns a mapping ``{name: target}``. A target is either the object itself
or a ``"package.module:attribute"`` string that the core imports on first use,
so that listing plugins never imports torch or a plugin's heavy modules.

Example (``reid_trinet/plugin.py``)::

    from reidcore.hookspecs import hookimpl

    @hookimpl
    def reid_models():
        return {"trinet": "reid_trinet.model:TriNet"}

The core builds one registry per hook (see :mod:`reidcore.registry`) and
credits every name to the plugin that registered it. The hook specifications
are the only list of registry kinds: each is declared with
:func:`registry_hookspec` (its singular kind, e.g. ``"loss"``), the plural is
the hook name without ``reid_`` (``"losses"``), and :data:`KINDS` collects
them in definition order. ``python -m reidcore list PLURAL``, the typed getters
of :mod:`reidcore.registry` and the ``plugins`` table are all derived from it.

When two plugins register the same name in one registry, the first-party (or,
between third-party plugins, the earlier-loaded) one wins and the clash is
reported; with ``REIDCORE_STRICT_PLUGINS=1`` it is a
:class:`~reidcore.errors.DuplicateNameError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import pluggy

PROJECT = "reidcore"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Target = Any  # an object, or a "module:attr" string resolved lazily

KIND_ATTRIBUTE = "reidcore_kind"
TARGET_ATTRIBUTE = "reidcore_target"


def registry_hookspec(kind: str, target: str = "callable") -> Callable[[Callable], Callable]:
    """Declare a hook specification that feeds the registry of ``kind``.

    Args:
        kind: the singular registry kind (``"loss"``); the plural is the hook name
            without its ``reid_`` prefix (``reid_losses`` -> ``"losses"``).
        target: what every resolved target must be: ``"callable"`` or ``"class"``.
    """
    if target not in ("callable", "class"):
        raise ValueError(f"target must be 'callable' or 'class', not {target!r}")

    def decorate(fn: Callable) -> Callable:
        setattr(fn, KIND_ATTRIBUTE, kind)
        setattr(fn, TARGET_ATTRIBUTE, target)
        return hookspec(fn)

    return decorate


@registry_hookspec("dataset")
def reid_datasets() -> Mapping[str, Target]:
    """Dataset readers.

    Target: a callable ``reader(root: pathlib.Path | None, **kwargs) -> reidcore.data.Split``.
    ``root`` is the ``--data`` folder (``None`` when the user gave none; a reader
    with an embedded default such as ``synthetic`` then uses its own). The reader
    raises :class:`reidcore.errors.DatasetError` naming the missing folder or file
    and describing the expected layout.
    """


@registry_hookspec("backbone")
def reid_backbones() -> Mapping[str, Target]:
    """Feature-map backbones.

    Target: a callable ``factory(pretrained: str = "none", in_channels: int = 3,
    last_stride: int = 2) -> torch.nn.Module`` whose forward maps images
    ``(B, in_channels, H, W)`` float32 to a feature map ``(B, out_channels, h, w)``.
    Keywords (the core and its recipes pass all three; a factory may take more, given
    by a model's ``backbone_kwargs``):

    * ``pretrained``: ``"imagenet"`` (torchvision's weights, downloaded), a path to
      a local state dict, or ``"none"``;
    * ``in_channels``: input channels (e.g. RGB plus pose maps); the first
      convolution is widened, keeping the RGB filters;
    * ``last_stride``: 2, or 1 to remove the last down-sampling (Luo et al. 2019).

    Required attribute: ``out_channels`` (int). Optional, used by plugins when present
    (every core backbone has them, :class:`reidcore.backbones.FeatureBackbone`):
    ``output_stride`` (int, input pixels per feature-map cell), ``first_conv_name``
    (dotted name of the first ``Conv2d``) and ``first_conv``, and
    ``split_last_stage() -> (trunk, last_stage)``: cuts the module in place so that
    ``last_stage(trunk(x))`` is the unsplit forward, ``trunk`` keeping its parameter
    names and updating ``out_channels``; raises ``RuntimeError`` when already split.
    """


@registry_hookspec("model")
def reid_models() -> Mapping[str, Target]:
    """Re-ID models.

    Target: a callable ``factory(**kwargs) -> torch.nn.Module``. The module's
    forward takes images ``(B, C, H, W)`` float32 and returns a ``dict`` with at
    least ``"embedding"``: ``(B, D)`` float32; training-only heads add keys such
    as ``"logits"``: ``(B, num_classes)``. The module has an ``embedding_dim``
    int attribute.
    """


@registry_hookspec("loss")
def reid_losses() -> Mapping[str, Target]:
    """Losses.

    Target: a callable ``factory(**kwargs) -> torch.nn.Module`` whose forward
    takes ``(outputs: dict[str, Tensor], pids: Tensor (B,) int64)`` and returns a
    scalar float32 tensor. A loss may expose ``last_stats: dict[str, float]``
    (e.g. the fraction of active triplets) for logging.
    """


@registry_hookspec("recipe", target="class")
def reid_recipes() -> Mapping[str, Target]:
    """Recipes: a method's model, losses and the paper's default hyper-parameters.

    Target: a subclass of :class:`reidcore.recipe.Recipe` (instantiated without
    arguments). Its ``config_class`` is an attrs class whose fields become the
    ``run``/``train`` CLI flags. The recipe module must not import torch at
    import time (``--help`` stays fast).
    """


@registry_hookspec("command")
def reid_commands() -> Mapping[str, Target]:
    """Extra CLI verbs: ``python -m reidcore NAME ...``.

    Target: a callable ``command(argv: list[str]) -> int`` that parses its own
    arguments and returns the process exit code.
    """


@registry_hookspec("excluder")
def reid_excluders() -> Mapping[str, Target]:
    """Evaluation protocols ("excluders"), usable as ``evaluate --excluder NAME``.

    Target: a callable ``excluder(q_pid: int, q_camid: int, g_pids: ndarray (n_g,) int64,
    g_camids: ndarray (n_g,) int64, q_index: int) -> ndarray (n_g,) bool``, ``True``
    for the gallery items the query ignores (see :mod:`reidcore.evaluation.protocols`).
    It is called once per query. The core registers ``market1501``, ``diagonal``,
    ``cuhk03`` and ``none`` (evaluated by the rank kernel without calling them).
    """


@registry_hookspec("reranker")
def reid_rerankers() -> Mapping[str, Target]:
    """Re-rankers, usable as ``evaluate --rerank NAME`` and ``run --rerank NAME``.

    Target: a callable ``reranker(query: ndarray (n_q, D) float32, gallery: ndarray
    (n_g, D) float32, *, metric: str = "euclidean", **kwargs) -> ndarray (n_q, n_g)``
    float32 of re-ranked distances (smaller = more similar); ``metric`` names a
    :data:`reidcore.evaluation.METRICS` distance and ``kwargs`` are the re-ranker's own
    hyper-parameters, each with a default. The core registers ``k-reciprocal``
    (Zhong et al., CVPR 2017; :mod:`reidcore.evaluation.rerank_kreciprocal`); the PSE
    plugin registers ``ecn``.
    """


@registry_hookspec("keypoint_estimator")
def reid_keypoint_estimators() -> Mapping[str, Target]:
    """Body-keypoint estimators that fill in keypoints for images without them.

    Target: a callable ``estimator(paths: Sequence[str], **options) -> ndarray (N, J, 3)``
    float32 of ``x, y`` in pixels of each image (0-based) and a confidence in ``[0, 1]`` per
    joint (0 = not found), in the Market-1501 body-point joint order (J = 14: head, neck,
    right shoulder, elbow, wrist, left shoulder, elbow, wrist, right hip, knee, ankle, left
    hip, knee, ankle; ``reid_datasets.joints``). reid-pse ships ``keypointrcnn``
    (torchvision's Keypoint R-CNN, COCO's 17 keypoints mapped to the 14) and calls an
    estimator from ``python -m reidcore pse keypoints --estimator NAME`` and from its
    ``*-pose-maps`` datasets with ``--dataset-option keypoint_estimator=NAME`` (further
    ``keypoint_<option>=VALUE`` dataset options reach the estimator as ``option=VALUE``).
    """


@attrs.frozen
class Kind:
    """One registry kind, read from its hook specification.

    Attributes:
        name: singular (``"keypoint_estimator"``), the key of :func:`reidcore.registry.registry`.
        plural: the hook name without ``reid_`` (``"keypoint_estimators"``), the word of
            ``python -m reidcore list PLURAL``.
        hook: the hook name (``"reid_keypoint_estimators"``).
        target: ``"callable"`` or ``"class"``: what every resolved target must be.
    """

    name: str
    plural: str
    hook: str
    target: str


def _kinds() -> tuple[Kind, ...]:
    kinds = []
    for hook, fn in list(globals().items()):
        kind = getattr(fn, KIND_ATTRIBUTE, None)
        if callable(fn) and hook.startswith("reid_") and kind is not None:
            kinds.append(Kind(kind, hook.removeprefix("reid_"), hook, getattr(fn, TARGET_ATTRIBUTE)))
    return tuple(kinds)


KINDS: tuple[Kind, ...] = _kinds()
"""Every registry kind, in the order the hook specifications are defined above."""

HOOK_NAMES: tuple[str, ...] = tuple(k.hook for k in KINDS)
"""The registry hooks' names (``reid_datasets``, ...)."""
