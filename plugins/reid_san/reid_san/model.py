"""SAN's networks: the re-ID encoder SA-Enc and the texture decoder SA-Dec.

Jin, Lan, Zeng, Wei, Chen, "Semantics-Aligned Representation Learning for Person
Re-identification", AAAI 2020 (arXiv:1905.13143), Sec. 3.2 and Fig. 2:

* **SA-Enc** (:class:`SAEncoder`, registered model ``san``): a backbone's last feature map
  ``f_e4`` (ResNet-50 with last stride 1 in the authors' ``resnet50_fc512``), global
  average pooling, then ``Linear(C, 512) + BatchNorm1d + ReLU``: the 512-d re-ID feature;
  an identity classifier on it for the ID loss. In training mode it also returns the
  feature map that SA-Dec decodes.
* **SA-Dec** (:class:`SADecoder`): regresses the person's full, densely aligned texture
  image from ``f_e4``; the feature maps of its up-sampling blocks carry the perceptual
  triplet constraints. It is used only for training: it lives in the training criterion
  (:class:`reid_san.losses.SANCriterion`), never in the model, so the trained model's
  state dict, the evaluated network and the exported graph hold no decoder (the paper:
  "In inference, the SA-Dec is discarded").

Our decoder decodes the last feature map only (any registered backbone); the authors'
decoder also adds 1x1-projected skip connections from ResNet-50's ``layer1..layer3``.
Its up blocks follow theirs (a residual block, ReLU, x2 bilinear up-sampling and a 3x3
convolution); it ends with a sigmoid, so textures are RGB in ``[0, 1]`` (theirs are
linear outputs for targets in ``[-1, 1]``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from reidcore.registry import create_backbone


class SAEncoder(nn.Module):
    """SA-Enc: backbone -> global average pool -> Linear(C, D) + BN + ReLU (the re-ID feature).

    Args:
        backbone: a registered backbone name (``python -m reidcore list backbones``).
        pretrained: the backbone's weights: ``"imagenet"``, ``"none"`` or a state-dict path.
        embedding_dim: ``D``, the re-ID feature size (512 in the authors' ``resnet50_fc512``).
        num_classes: if > 0, an identity classifier ``Linear(D, num_classes)`` whose
            ``"logits"`` are returned in training mode only.
        last_stride: 1 (the authors' ``resnet50_fc512``: a 16x8 map for 256x128 input) or 2.
        in_channels: input channels (3 for RGB).
        backbone_kwargs: other keyword arguments of the backbone factory.

    Forward:
        images ``(B, in_channels, H, W)`` float32 -> ``{"embedding": (B, D) float32}``;
        in training mode also ``"feature_map"`` ``(B, C, h, w)`` (the backbone's output,
        SA-Dec's input, in the autocast dtype) and ``"logits"`` ``(B, num_classes)``
        float32 when ``num_classes > 0``.

    Raises:
        ValueError: ``embedding_dim`` < 1 or ``num_classes`` < 0.
        reidcore.errors.UnknownNameError: unknown backbone name.
        reidcore.errors.WeightsError: pretrained weights missing or not matching.
    """

    def __init__(self, backbone: str = "resnet50", pretrained: str = "imagenet",
                 embedding_dim: int = 512, num_classes: int = 0, last_stride: int = 1,
                 in_channels: int = 3, backbone_kwargs: dict[str, Any] | None = None):
        super().__init__()
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.backbone = create_backbone(backbone, pretrained=pretrained, in_channels=in_channels,
                                        last_stride=last_stride, **(backbone_kwargs or {}))
        self.out_channels = int(self.backbone.out_channels)
        self.embedding_dim = int(embedding_dim)
        self.num_classes = int(num_classes)
        # the authors' fc512 head: Linear (with bias) + BatchNorm1d + ReLU, N(0, 0.01) init
        self.fc = nn.Linear(self.out_channels, embedding_dim)
        self.bn = nn.BatchNorm1d(embedding_dim)
        self.classifier = nn.Linear(embedding_dim, num_classes) if num_classes > 0 else None
        for layer in (self.fc, self.classifier):
            if layer is not None:
                nn.init.normal_(layer.weight, std=0.01)
                nn.init.zeros_(layer.bias)

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """The backbone's last feature map ``f_e4`` ``(B, C, h, w)`` (SA-Dec's input)."""
        return self.backbone(images)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        fmap = self.backbone(images)
        embedding = F.relu(self.bn(self.fc(fmap.mean(dim=(2, 3)))))
        out = {"embedding": embedding.float()}
        if self.training:
            out["feature_map"] = fmap
            if self.classifier is not None:
                out["logits"] = self.classifier(embedding).float()
        return out


def _two_adic(n: int) -> int:
    """The exponent of 2 in ``n`` (``n`` > 0)."""
    k = 0
    while n % 2 == 0:
        n //= 2
        k += 1
    return k


def decoder_blocks_for(feature_height: int, texture_size: int) -> int:
    """How many x2 up-sampling blocks take a map of ``feature_height`` rows to ``texture_size``.

    ``round(log2(texture_size / feature_height))``, at least 1 and at most the power of 2
    dividing ``texture_size`` (the decoder starts from a ``texture_size / 2**n`` square).
    Examples: 16 rows (ResNet-50, stride 16, 256x128 input) to 256: 4 blocks, as the
    authors'; 8 rows (128x64 input, stride 16) to 64: 3 blocks.

    Raises:
        ValueError: a size < 1.
    """
    if feature_height < 1 or texture_size < 1:
        raise ValueError(f"sizes must be >= 1, got feature height {feature_height}, "
                         f"texture size {texture_size}")
    import math

    n = round(math.log2(texture_size / feature_height))
    return int(min(max(n, 1), _two_adic(texture_size)))


class ResidualBlock(nn.Module):
    """``x + BN(conv3x3(ReLU(BN(conv3x3(x)))))`` at constant channels and size."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpBlock(nn.Module):
    """One SA-Dec block: residual block, ReLU, x2 bilinear up-sampling, reflection-padded conv3x3.

    ``(B, in, s, s)`` -> ``(B, out, 2s, 2s)`` (the authors' ``ConvResBlock(direction="up")``).
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.res = ResidualBlock(in_channels)
        self.conv = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(in_channels, out_channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.res(x))
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.conv(x)


class SADecoder(nn.Module):
    """SA-Dec: the encoder's feature map -> a ``texture_size``² texture image in ``[0, 1]``.

    Layers: ``Conv1x1(in_channels, width) + BN + ReLU`` (the authors' ``reduce_dim``), a
    bilinear resize of the ``(h, w)`` map to the ``s0 x s0`` start square
    (``s0 = texture_size / 2**blocks``; the person's 2:1 map is stretched to the square
    texture, the authors stretch their 2:1 output instead), ``blocks`` :class:`UpBlock`
    halving the channels each time (at least 16), then a reflection-padded 7x7
    convolution to RGB and a sigmoid.

    Args:
        in_channels: channels ``C`` of the encoder's feature map.
        texture_size: side ``T`` of the output texture (the paper: 256).
        blocks: number of x2 up-sampling blocks (see :func:`decoder_blocks_for`); ``T``
            must be divisible by ``2**blocks``.
        width: channels after the 1x1 reduction (512, as the authors').

    Forward:
        ``(B, C, h, w)`` any float dtype -> ``{"texture": (B, 3, T, T)`` in ``[0, 1]``,
        ``"features": [(B, c_i, s0 * 2**i, s0 * 2**i) for i = 1..blocks]}`` (the up
        blocks' outputs, where the perceptual triplet constraints apply).

    Raises:
        ValueError: ``blocks`` < 1, ``T`` not divisible by ``2**blocks``, ``width`` < 16.
    """

    def __init__(self, in_channels: int, texture_size: int = 256, blocks: int = 4,
                 width: int = 512):
        super().__init__()
        if blocks < 1:
            raise ValueError(f"the decoder needs at least one up-sampling block, got {blocks}")
        if texture_size % (2 ** blocks):
            raise ValueError(f"texture size {texture_size} is not divisible by 2**{blocks}")
        if width < 16:
            raise ValueError(f"decoder width must be >= 16, got {width}")
        self.texture_size = int(texture_size)
        self.start = self.texture_size // 2 ** blocks
        self.reduce = nn.Sequential(nn.Conv2d(in_channels, width, 1, bias=False),
                                    nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        chans = [width]
        for _ in range(blocks):
            chans.append(max(chans[-1] // 2, 16))
        self.ups = nn.ModuleList(UpBlock(a, b) for a, b in zip(chans[:-1], chans[1:], strict=True))
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(chans[-1], 3, 7))

    def forward(self, fmap: torch.Tensor) -> dict[str, Any]:
        if fmap.ndim != 4:
            raise ValueError(f"SA-Dec expects a (B, C, h, w) feature map, got {tuple(fmap.shape)}")
        x = self.reduce(fmap)
        if x.shape[-2:] != (self.start, self.start):
            x = F.interpolate(x, size=(self.start, self.start), mode="bilinear",
                              align_corners=False)
        features = []
        for up in self.ups:
            x = up(x)
            features.append(x)
        return {"texture": torch.sigmoid(self.head(x)), "features": features}


class TextureGenerator(nn.Module):
    """SAN-PG at inference: SA-Enc's feature map decoded by SA-Dec (``san textures``).

    Forward: normalised images ``(B, 3, H, W)`` float32 -> textures ``(B, 3, T, T)``
    float32 in ``[0, 1]``.
    """

    def __init__(self, encoder: SAEncoder, decoder: SADecoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder.feature_map(images))["texture"].float()
