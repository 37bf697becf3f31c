"""Feature-map backbones built from torchvision: ``resnet18``, ``resnet50``, ``mobilenet_v2``.

Each factory ``(pretrained="none", in_channels=3, last_stride=2) -> nn.Module``
returns a module whose forward maps images ``(B, in_channels, H, W)`` float32 to
the last feature map ``(B, out_channels, H/s, W/s)`` (``s`` = 32, or 16 with
``last_stride=1``), before any pooling. The classifier (ResNet ``avgpool``/``fc``,
MobileNetV2 ``classifier``) is dropped, and the remaining submodules keep
torchvision's names, so torchvision state dicts load unchanged:

* ResNets: ``conv1``, ``bn1``, ``layer1`` .. ``layer4`` (``out_channels`` 512 / 2048);
* MobileNetV2: ``features`` (keys ``features.*``; ``out_channels`` 1280).

``pretrained`` is ``"none"``, ``"imagenet"`` (torchvision's weights, downloaded)
or the path of a local state dict; see :mod:`reidcore.backbones.weights` for the
accepted layouts and the :class:`~reidcore.errors.WeightsError` raised on a
missing file or mismatched keys.

``last_stride=1`` removes the stride of the last down-sampling stage (Luo et al.
2019, "Bag of Tricks", Sec. 4.2), doubling the feature map's height and width
without changing any weight shape. TriNet (Hermans et al. 2017, Sec. 4.1) uses
the plain stride 2, the default.

Every returned module is a :class:`FeatureBackbone`, the public surface plugins build on
(documented with the ``reid_backbones`` hook): ``out_channels``, ``output_stride``,
``first_conv_name`` / ``first_conv`` / ``in_channels`` and ``split_last_stage() ->
(trunk, last_stage)``. Plugins reach these through :func:`reidcore.registry.create_backbone`,
never by importing this module.
"""

from __future__ import annotations

import os

import torch
import torchvision
from torch import nn

from reidcore.backbones.weights import initialise_backbone

__all__ = ["FeatureBackbone", "ResNetBackbone", "MobileNetV2Backbone", "resnet18", "resnet50", "mobilenet_v2"]

Pretrained = str | os.PathLike | None


def _check_last_stride(last_stride: int) -> int:
    if last_stride not in (1, 2):
        raise ValueError(f"last_stride must be 1 or 2, got {last_stride!r}")
    return int(last_stride)


class FeatureBackbone(nn.Module):
    """What every core backbone offers plugins (the public backbone contract).

    Attributes:
        out_channels: channels of the forward's feature map (after :meth:`split_last_stage`:
            the trunk's).
        output_stride: input pixels per feature-map cell along each side (32; 16 with
            ``last_stride=1``; 16 for a split trunk); an ``H x W`` input gives an
            ``H/s x W/s`` map when ``H`` and ``W`` are multiples of ``s``.
        first_conv_name: dotted name of the first ``nn.Conv2d`` (``"conv1"``,
            ``"features.0.0"``), the one that ``in_channels`` widens; usable as a
            ``--trainable-scopes`` prefix.
    """

    first_conv_name = ""  # set by each subclass; out_channels, output_stride by __init__
    __jit_unused_properties__ = ["first_conv", "in_channels", "is_split"]  # torch.jit.script

    @property
    def first_conv(self) -> nn.Conv2d:
        """The first convolution (takes ``in_channels`` inputs)."""
        return self.get_submodule(self.first_conv_name)

    @property
    def in_channels(self) -> int:
        """Input channels of :attr:`first_conv`."""
        return self.first_conv.in_channels

    @property
    def is_split(self) -> bool:
        """Whether :meth:`split_last_stage` has cut off the last stage."""
        return getattr(self, "_split", False)

    def _cut_last_stage(self) -> nn.Module:
        """Detach and return the last stage (each subclass defines it)."""
        raise NotImplementedError(f"{type(self).__name__} does not define its last stage")

    def split_last_stage(self) -> tuple[nn.Module, nn.Module]:
        """Cut the backbone, in place, before its last stage: ``(trunk, last_stage)``.

        The trunk is this module: its forward now stops before the last stage, and its
        parameter names are unchanged (``layer1..3`` / ``features.0..13``; the last stage's
        parameters leave it). ``last_stage(trunk(x))`` equals the unsplit forward of ``x``.
        ``out_channels`` becomes the trunk's (ResNet-18 256, ResNet-50 1024, MobileNetV2 96)
        and ``output_stride`` 16; the last stage maps those channels to the former
        ``out_channels``, carrying the ``last_stride`` setting. Used for branches that each
        own a copy of the last stage (PSE's view units, Sarfraz et al. 2018, Sec. 3.1).

        Raises:
            RuntimeError: the backbone is already split.
        """
        if self.is_split:
            raise RuntimeError(f"{type(self).__name__} is already split before its last stage")
        last = self._cut_last_stage()
        conv = next(m for m in last.modules() if isinstance(m, nn.Conv2d))
        self.out_channels = int(conv.in_channels)
        self.output_stride = 16
        self._split = True
        return self, last


class ResNetBackbone(FeatureBackbone):
    """A torchvision ResNet without ``avgpool``/``fc``.

    Forward: ``(B, C, H, W)`` float -> ``(B, out_channels, h, w)``. Last stage: ``layer4``.

    Attributes:
        out_channels: channels of the output feature map (512 for ResNet-18/34,
            2048 for ResNet-50 and deeper).
        in_channels: input channels of ``conv1``.
    """

    first_conv_name = "conv1"

    def __init__(self, resnet: torchvision.models.ResNet, last_stride: int = 2):
        super().__init__()
        self.conv1 = resnet.conv1
        self.bn1 = resnet.bn1
        self.relu = resnet.relu
        self.maxpool = resnet.maxpool
        self.layer1 = resnet.layer1
        self.layer2 = resnet.layer2
        self.layer3 = resnet.layer3
        self.layer4 = resnet.layer4
        self.out_channels = int(resnet.fc.in_features)
        self.output_stride = 16 * _check_last_stride(last_stride)
        if last_stride == 1:
            for m in self.layer4[0].modules():
                if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
                    m.stride = (1, 1)

    def _cut_last_stage(self) -> nn.Module:
        last = self.layer4
        self.layer4 = nn.Identity()
        return last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


#: ``features[14]`` is the first (stride-2) block of MobileNetV2's 160-channel stage.
MOBILENET_LAST_STAGE = 14


class MobileNetV2Backbone(FeatureBackbone):
    """torchvision's MobileNetV2 ``features`` (without ``classifier``).

    Forward: ``(B, C, H, W)`` float -> ``(B, 1280, h, w)``. Last stage: ``features[14:]``
    (the 160/320-channel blocks and the last 1x1 conv).
    """

    first_conv_name = "features.0.0"

    def __init__(self, model: torchvision.models.MobileNetV2, last_stride: int = 2):
        super().__init__()
        self.features = model.features
        self.out_channels = int(model.last_channel)
        self.output_stride = 16 * _check_last_stride(last_stride)
        if last_stride == 1:
            # the last stride-2 layer: the depthwise conv of the first 160-channel block
            last = [
                m
                for m in self.features.modules()
                if isinstance(m, nn.Conv2d) and m.stride == (2, 2)
            ]
            last[-1].stride = (1, 1)

    def _cut_last_stage(self) -> nn.Module:
        blocks = list(self.features.children())
        self.features = nn.Sequential(*blocks[:MOBILENET_LAST_STAGE])
        return nn.Sequential(*blocks[MOBILENET_LAST_STAGE:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _imagenet(weights_enum):
    def get() -> dict[str, torch.Tensor]:
        return weights_enum.get_state_dict(progress=True)

    return get


def _resnet(constructor, weights, pretrained: Pretrained, in_channels: int,
            last_stride: int) -> ResNetBackbone:
    """A torchvision ResNet without ``avgpool``/``fc``, initialised as ``pretrained`` says."""
    module = ResNetBackbone(constructor(weights=None), last_stride)
    return initialise_backbone(module, pretrained, first_conv=ResNetBackbone.first_conv_name,
                               in_channels=in_channels,
                               imagenet=_imagenet(weights), drop_prefixes=("fc.",))


def resnet18(
    pretrained: Pretrained = "none", in_channels: int = 3, last_stride: int = 2
) -> ResNetBackbone:
    """ResNet-18 feature maps, ``out_channels`` 512 (He et al. 2016).

    ``"imagenet"`` loads ``ResNet18_Weights.IMAGENET1K_V1``.

    Raises:
        WeightsError: missing/unreadable weights file or mismatched keys.
        ValueError: ``last_stride`` not 1 or 2, ``in_channels < 1``.
    """
    return _resnet(torchvision.models.resnet18, torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
                   pretrained, in_channels, last_stride)


def resnet50(
    pretrained: Pretrained = "none", in_channels: int = 3, last_stride: int = 2
) -> ResNetBackbone:
    """ResNet-50 feature maps, ``out_channels`` 2048 (TriNet's backbone, Hermans et al. 2017).

    ``"imagenet"`` loads ``ResNet50_Weights.IMAGENET1K_V1`` (the original
    ImageNet training, as used by the paper, rather than torchvision's V2 recipe).

    Raises:
        WeightsError: missing/unreadable weights file or mismatched keys.
        ValueError: ``last_stride`` not 1 or 2, ``in_channels < 1``.
    """
    return _resnet(torchvision.models.resnet50, torchvision.models.ResNet50_Weights.IMAGENET1K_V1,
                   pretrained, in_channels, last_stride)


def mobilenet_v2(
    pretrained: Pretrained = "none", in_channels: int = 3, last_stride: int = 2
) -> MobileNetV2Backbone:
    """MobileNetV2 feature maps, ``out_channels`` 1280 (Sandler et al. 2018).

    ``"imagenet"`` loads ``MobileNet_V2_Weights.IMAGENET1K_V1``. A local file may
    hold only the ``features.*`` keys or the full model's state dict.

    Raises:
        WeightsError: missing/unreadable weights file or mismatched keys.
        ValueError: ``last_stride`` not 1 or 2, ``in_channels < 1``.
    """
    module = MobileNetV2Backbone(torchvision.models.mobilenet_v2(weights=None), last_stride)
    return initialise_backbone(
        module,
        pretrained,
        first_conv=MobileNetV2Backbone.first_conv_name,
        in_channels=in_channels,
        imagenet=_imagenet(torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1),
        drop_prefixes=("classifier.",),
    )
