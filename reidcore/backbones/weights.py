"""Loading pretrained weights into backbones, shared by every backbone factory.

A backbone factory takes ``pretrained``:

* ``"none"`` (or ``None`` / ``""``): keep the random initialisation;
* ``"imagenet"``: torchvision's ImageNet weights (downloaded by torchvision into
  ``$TORCH_HOME``; not available offline);
* anything else: the path of a local state dict saved with ``torch.save``. It is
  read with ``torch.load(weights_only=True)``, may be wrapped as
  ``{"state_dict": ...}`` or ``{"model": ...}``, may carry a ``module.`` prefix
  (``DataParallel``), and may be the state dict of the full torchvision model:
  the classifier keys (``fc.*`` / ``classifier.*``) are dropped.

After dropping those keys the file must match the backbone exactly: any missing
or unexpected key, or any shape mismatch, raises
:class:`~reidcore.errors.WeightsError` naming the file. (A missing
``num_batches_tracked`` buffer is tolerated: old torchvision checkpoints lack it.)

``in_channels != 3`` replaces the first convolution with one taking
``in_channels`` inputs (e.g. RGB plus pose maps): the (pretrained) RGB filters
are copied into input channels 0..2 and the extra channels start small (see
:func:`expand_input_channels`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from reidcore.errors import WeightsError
from reidcore.safe_load import UnreadableFileError, UnsafeFileError, safe_torch_load

NONE_VALUES = ("none", "")
IMAGENET = "imagenet"
EXTRA_CHANNEL_STD_FACTOR = 0.01
"""Extra input channels start at ``N(0, (0.01 * std(RGB filters))^2)``."""

_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")
_MAX_LISTED = 5


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.pth``/``.pt`` file (on the CPU).

    Unwraps ``{"state_dict": sd}``, ``{"model": sd}`` (and ``model_state_dict``,
    ``net``) and strips a ``module.`` prefix present on every key.

    Returns:
        ``{key: tensor}`` with the file's dtypes.

    Raises:
        WeightsError: the file does not exist, cannot be read by
            ``torch.load(weights_only=True)`` (truncated, corrupt, or holding Python
            objects whose unpickling could run code: refused, nothing runs), or holds no
            mapping of tensors.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsError(
            f"pretrained weights file not found: {str(file)!r} "
            "(pass --pretrained imagenet, none, or the path of a state dict .pth file)"
        )
    try:
        obj = safe_torch_load(file, what="pretrained weights file")
    except (UnsafeFileError, UnreadableFileError) as exc:  # the message names the file
        raise WeightsError(str(exc)) from None
    for _ in range(3):  # nested wrappers such as {"model": {"state_dict": ...}}
        if isinstance(obj, Mapping) and not _is_tensor_mapping(obj):
            inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not obj or not _is_tensor_mapping(obj):
        keys = list(obj)[:_MAX_LISTED] if isinstance(obj, Mapping) else []
        raise WeightsError(
            f"pretrained weights file {str(file)!r} holds no state dict (a mapping of "
            f"parameter names to tensors); found {type(obj).__name__}"
            + (f" with keys {keys}" if keys else "")
        )
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _is_tensor_mapping(obj: Mapping) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def drop_keys(
    state: Mapping[str, torch.Tensor], prefixes: Iterable[str]
) -> dict[str, torch.Tensor]:
    """``state`` without the keys starting with any of ``prefixes`` (e.g. ``"fc."``)."""
    prefixes = tuple(prefixes)
    return {k: v for k, v in state.items() if not (prefixes and k.startswith(prefixes))}


def load_exact(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``module``, requiring the same keys and shapes.

    Values are cast to the module's dtypes. Missing ``num_batches_tracked``
    buffers are tolerated (they keep their initial value).

    Raises:
        WeightsError: missing keys, unexpected keys or shape mismatches; the
            message names ``source`` and lists up to five of each.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in state
        if k in expected and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        parts = []
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        ):
            if items:
                more = (
                    f" ... (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
                )
                parts.append(f"{len(items)} {label}: {', '.join(items[:_MAX_LISTED])}{more}")
        raise WeightsError(
            f"pretrained weights {source} do not match the {type(module).__name__} "
            f"backbone ({len(expected)} tensors expected, {len(state)} in the file): "
            + "; ".join(parts)
        )
    module.load_state_dict(dict(state), strict=False)


def expand_input_channels(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A copy of ``conv`` taking ``in_channels`` inputs instead of 3.

    For ``in_channels > 3`` the RGB filters are copied into input channels 0..2
    and the extra input channels are drawn from ``N(0, (0.01 * std(w_rgb))^2)``, so
    the network starts out computing (almost) the same features from the image
    while the extra maps (e.g. pose confidence maps) can still learn. For
    ``in_channels < 3`` every input channel gets ``sum(w_rgb) / in_channels``
    (a grey image repeated gives the same response as the RGB one).

    Raises:
        ValueError: ``in_channels < 1``.
    """
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    if in_channels == conv.in_channels:
        return conv
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
    ).to(device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        old = conv.weight
        rgb = old.shape[1]
        if in_channels > rgb:
            new.weight.normal_(0.0, EXTRA_CHANNEL_STD_FACTOR * float(old.std()))
            new.weight[:, :rgb] = old
        else:
            new.weight.copy_((old.sum(1, keepdim=True) / in_channels).expand_as(new.weight))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _replace_module(root: nn.Module, dotted: str, new: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def initialise_backbone(
    module: nn.Module,
    pretrained: str | os.PathLike | None,
    *,
    first_conv: str,
    in_channels: int = 3,
    imagenet: Callable[[], Mapping[str, torch.Tensor]] | None = None,
    drop_prefixes: Iterable[str] = (),
) -> nn.Module:
    """Load ``pretrained`` into ``module`` and adapt its first conv to ``in_channels``.

    Args:
        module: a freshly built backbone with a 3-channel first convolution.
        pretrained: ``"none"``, ``"imagenet"`` or a state-dict path (module docstring).
        first_conv: dotted name of the first ``nn.Conv2d`` (``"conv1"``, ``"features.0.0"``).
        in_channels: input channels of the returned backbone.
        imagenet: returns torchvision's ImageNet state dict (may download).
        drop_prefixes: key prefixes removed from the loaded state dict (the
            torchvision classifier: ``("fc.",)``, ``("classifier.",)``).

    Returns:
        ``module`` itself, modified in place.

    Raises:
        WeightsError: missing or unreadable file, keys or shapes not matching,
            or ImageNet weights that cannot be downloaded.
        ValueError: ``in_channels < 1``.
    """
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    state: Mapping[str, torch.Tensor] | None = None
    spec = "none" if pretrained is None else str(pretrained)
    if spec.strip().lower() in NONE_VALUES:
        source = "none"
    elif spec.strip().lower() == IMAGENET:
        if imagenet is None:
            raise WeightsError(f"{type(module).__name__} has no ImageNet weights")
        source = f"'imagenet' ({type(module).__name__})"
        try:
            state = imagenet()
        except Exception as exc:  # noqa: BLE001 - network / cache failures
            raise WeightsError(
                f"cannot get torchvision's ImageNet weights for {type(module).__name__}: "
                f"{type(exc).__name__}: {exc}. Offline, pass --pretrained PATH to a local "
                "state dict, or --pretrained none"
            ) from exc
    else:
        source = f"file {spec!r}"
        state = load_state_dict_file(spec)

    conv = module.get_submodule(first_conv)
    if state is not None:
        state = drop_keys(state, drop_prefixes)
        weight = state.get(f"{first_conv}.weight")
        if (
            in_channels != conv.in_channels
            and weight is not None
            and weight.ndim == 4
            and (weight.shape[1] == in_channels)
        ):
            # a checkpoint of a backbone that already takes in_channels inputs
            _replace_module(module, first_conv, expand_input_channels(conv, in_channels))
            load_exact(module, state, source)
            return module
        load_exact(module, state, source)
    if in_channels != conv.in_channels:
        _replace_module(
            module, first_conv, expand_input_channels(module.get_submodule(first_conv), in_channels)
        )
    return module
