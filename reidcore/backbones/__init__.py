"""Feature-map backbones of the core (registered in :mod:`reidcore.builtins`).

* :func:`resnet18`, :func:`resnet50`, :func:`mobilenet_v2`
  (:mod:`reidcore.backbones.torchvision_backbones`): ``factory(pretrained="none",
  in_channels=3, last_stride=2) -> FeatureBackbone`` mapping ``(B, C, H, W)`` float32
  images to a ``(B, out_channels, h, w)`` feature map; :class:`FeatureBackbone` gives
  plugins ``out_channels``, ``output_stride``, ``first_conv_name`` / ``first_conv`` and
  ``split_last_stage()`` (the ``reid_backbones`` contract in :mod:`reidcore.hookspecs`);
* :mod:`reidcore.backbones.weights`: the shared loading of ImageNet or local
  state-dict weights, raising :class:`~reidcore.errors.WeightsError`.

Attributes are imported lazily so that ``import reidcore.backbones`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "resnet18": "reidcore.backbones.torchvision_backbones",
    "resnet50": "reidcore.backbones.torchvision_backbones",
    "mobilenet_v2": "reidcore.backbones.torchvision_backbones",
    "FeatureBackbone": "reidcore.backbones.torchvision_backbones",
    "ResNetBackbone": "reidcore.backbones.torchvision_backbones",
    "MobileNetV2Backbone": "reidcore.backbones.torchvision_backbones",
    "load_state_dict_file": "reidcore.backbones.weights",
    "initialise_backbone": "reidcore.backbones.weights",
    "expand_input_channels": "reidcore.backbones.weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
