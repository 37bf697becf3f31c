"""The ``san`` and ``san-pg`` recipes (Jin et al., AAAI 2020, arXiv:1905.13143).

``san``: SA-Enc trained for re-ID with SA-Dec regressing each training image's texture
(Sec. 3.2). Defaults follow the seed's training command (README "Training and evaluation")
and the authors' ``args.py`` / ``main.py``:

* ``-a resnet50_fc512``: ResNet-50 with last stride 1, a 512-d ``Linear + BN + ReLU`` feature
  (``--backbone resnet50 --last-stride 1 --embedding-dim 512``), 256x128 input;
* ``--train-batch-size 64 --train-sampler RandomIdentitySampler`` with ``--num-instances 4``:
  P×K = 16×4;
* ``--optim amsgrad --lr 8e-04``, weight decay 5e-4 (``args.py``);
* ``--label-smooth`` (epsilon 0.1), ``--margin 0.3`` hard-margin batch-hard triplet, both
  weighted 1 (``--lambda-xent 1 --lambda-htri 1``);
* ``--max-epoch 300 --warm-up-epoch 20 --stepsize 40 80 ... 280``, ``--gamma 0.5``: 20
  warm-up epochs rising from 8e-6 (``0.01 x lr``; theirs exponential, ours linear), then 300
  epochs with the lr halved every 40. In iterations, at 115 per epoch (CUHK03 labeled:
  7,365 training images / 64): 36,800 iterations, warm-up 2,300, milestones at epochs
  20 + 40k -> 6,900, 11,500, ..., 34,500;
* texture terms: L1 reconstruction (weight 1) and the perceptual triplet constraints on the
  decoder's maps (margin 0.3, weight 1); 256x256 textures. The authors step the texture terms
  with a second Adam (lr 1e-5, betas 0.5/0.999) after the re-ID step; we optimise the weighted
  sum of all terms with one optimiser, as the paper's joint training describes.

Textures (``--textures``): ``auto`` uses the samples' own ``extras["texture"]`` (``pit``,
``synthetic-textures``) or else the authors' folder beside the data,
``DATA/texture_<dataset>/`` (:func:`reid_san.textures.texture_folder`); a folder path uses
that folder, e.g. pseudo textures written by ``python -m reidcore san textures`` with a
trained SAN-PG, or keypoint-warped ones by ``python -m reidcore san keypoint-textures``.
With ``--reconstruction-weight 0`` no texture is read.

``san-pg``: SAN-PG, SA-Enc + SA-Dec trained with the reconstruction loss only on paired
(person, texture) data (Sec. 3.3; ``--dataset synthetic-textures`` or ``pit``). The authors
publish no SAN-PG training settings; ours: AMSGrad at 3e-4, 20,000 iterations, lr halved at
10,000 and 15,000. Train it with ``python -m reidcore train san-pg`` on ``pit`` (which has no
query/gallery to evaluate); ``run`` also evaluates its encoder on ``synthetic-textures``.

This module imports no torch (``--help`` stays fast); the builders import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from reidcore.recipe import CriterionInfo, Recipe, TrainConfig, field

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Iterations per epoch used to convert the seed's epochs (CUHK03 labeled, 7,365 images / 64).
SEED_EPOCH = 115
TEXTURE_SOURCES = ("auto", "dataset")


@attrs.define(kw_only=True)
class SANConfig(TrainConfig):
    """TrainConfig plus SAN's model, loss weights and texture settings (the seed's defaults)."""

    model: str = field("san", "model name (san: SA-Enc)")
    backbone: str = field("resnet50", "SA-Enc backbone (resnet50_fc512: resnet50, last stride 1)")
    last_stride: int = field(1, "stride of the backbone's last stage: 1 (resnet50_fc512) or 2")
    embedding_dim: int = field(512, "re-ID feature size (fc512)")
    batch_p: int = field(16, "identities per batch (64 / --num-instances 4)")
    batch_k: int = field(4, "images per identity (--num-instances 4)")
    optimizer: str = field("amsgrad", "adam | amsgrad | sgd (seed: --optim amsgrad)")
    lr: float = field(8e-4, "base learning rate (seed: --lr 8e-04)")
    weight_decay: float = field(5e-4, "weight decay (args.py: 5e-4)")
    schedule: str = field("multistep", "trinet | multistep | constant")
    iterations: int = field(320 * SEED_EPOCH, "iterations (20 warm-up + 300 epochs x 115)")
    milestones: tuple[int, ...] = field(
        tuple((20 + e) * SEED_EPOCH for e in range(40, 300, 40)),
        "multistep: iterations where lr x= gamma (seed: --stepsize 40 ... 280 after warm-up)",
        converter=tuple)
    gamma: float = field(0.5, "multistep lr factor (args.py: --gamma 0.5)")
    warmup_iterations: int = field(20 * SEED_EPOCH, "linear warm-up (seed: --warm-up-epoch 20)")
    warmup_factor: float = field(0.01, "lr factor at the first warm-up iteration (8e-6 / 8e-4)")
    # losses (weight 0 removes a term)
    id_weight: float = field(1.0, "weight of the identity cross-entropy (--lambda-xent)")
    label_smoothing: float = field(0.1, "label smoothing epsilon of the identity loss (--label-smooth)")
    triplet_weight: float = field(1.0, "weight of the batch-hard triplet loss (--lambda-htri)")
    margin: str = field("0.3", "triplet margin: a number (seed: 0.3) or soft")
    triplet_metric: str = field("euclidean", "triplet distance: euclidean | sqeuclidean | cityblock")
    reconstruction_weight: float = field(1.0, "weight of the texture reconstruction loss L_Rec (0: off)")
    reconstruction_loss: str = field("l1", "reconstruction distance: l1 (the authors') | l2")
    perceptual_weight: float = field(1.0, "weight of the triplet constraints on SA-Dec's maps (0: off)")
    perceptual_margin: float = field(0.3, "margin of the decoder-map triplet constraints")
    # textures and SA-Dec
    textures: str = field("auto", "texture targets: auto | dataset | PATH of a texture folder")
    texture_size: int = field(256, "side of SA-Dec's texture output and of the targets (multiple of 16)")
    decoder_width: int = field(512, "SA-Dec channels after the 1x1 reduction")
    decoder_blocks: int = field(0, "SA-Dec x2 up-sampling blocks (0: from the feature map's height)")
    init_decoder: str | None = field(
        None, "initialise SA-Dec from this san/san-pg experiment folder or checkpoint (new runs only)")


@attrs.define(kw_only=True)
class SANPGConfig(SANConfig):
    """SAN-PG: SA-Enc + SA-Dec with the reconstruction loss only, on paired data."""

    dataset: str = field("synthetic-textures", "paired dataset: synthetic-textures | pit | ...")
    id_weight: float = field(0.0, "weight of the identity cross-entropy (SAN-PG: 0)")
    triplet_weight: float = field(0.0, "weight of the batch-hard triplet loss (SAN-PG: 0)")
    perceptual_weight: float = field(0.0, "weight of the decoder-map triplet constraints (SAN-PG: 0)")
    lr: float = field(3e-4, "base learning rate (ours: SAN-PG's are not published)")
    iterations: int = field(20000, "iterations")
    milestones: tuple[int, ...] = field((10000, 15000), "multistep: iterations where lr x= gamma",
                                        converter=tuple)
    warmup_iterations: int = field(0, "linear warm-up iterations")


def _check_weights(cfg: SANConfig) -> None:
    for name in ("id_weight", "triplet_weight", "reconstruction_weight", "perceptual_weight"):
        value = getattr(cfg, name)
        if not value >= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {value}")


def uses_decoder(cfg: SANConfig) -> bool:
    """Whether training needs SA-Dec (a reconstruction or perceptual weight above 0)."""
    return cfg.reconstruction_weight > 0 or cfg.perceptual_weight > 0


def texture_samples(cfg: SANConfig, samples: list) -> list:
    """``samples`` with ``extras["texture"]`` set as ``cfg.textures`` says.

    ``auto``: the samples' own textures when every sample has one, else the authors' folder
    ``cfg.data/texture_<cfg.dataset>``; ``dataset``: the samples' own (required); a path:
    that texture folder (:func:`reid_san.textures.attach_textures`).

    Raises:
        DatasetError: a missing folder, a missing texture (named), or ``auto``/``dataset``
            without textures and without ``--data``.
    """
    from reid_san.textures import attach_textures, texture_folder
    from reidcore.errors import DatasetError

    own = all(s.extras.get("texture") for s in samples)
    if cfg.textures in TEXTURE_SOURCES:
        if own:
            return list(samples)
        if cfg.textures == "dataset":
            raise DatasetError(f"--textures dataset: dataset {cfg.dataset!r} gives no texture "
                               "per image; pass --textures DIR (a texture folder)")
        if cfg.data is None:
            raise DatasetError(
                f"dataset {cfg.dataset!r} gives no textures; pass --textures DIR (e.g. written "
                "by 'python -m reidcore san textures') or --data DATA with DATA/texture_"
                f"{cfg.dataset}/")
        return attach_textures(samples, texture_folder(cfg.data, cfg.dataset))
    return attach_textures(samples, cfg.textures)


class SANRecipe(Recipe):
    """SAN: SA-Enc for re-ID plus SA-Dec's texture supervision (Jin et al. AAAI 2020)."""

    name = "san"
    description = ("SAN: ResNet-50 fc512 + texture decoder (L1 reconstruction, decoder-map "
                   "triplets), ID + batch-hard triplet, AMSGrad")
    paper = ("X. Jin, C. Lan, W. Zeng, G. Wei, Z. Chen. Semantics-Aligned Representation "
             "Learning for Person Re-identification. AAAI 2020, arXiv:1905.13143")
    config_class = SANConfig

    def build_model(self, cfg: SANConfig, num_classes: int) -> torch.nn.Module:
        """SA-Enc (``create_model(cfg.model)``); a classifier only when ``id_weight > 0``."""
        from reidcore.registry import create_model

        return create_model(cfg.model, backbone=cfg.backbone, pretrained=cfg.pretrained,
                            embedding_dim=cfg.embedding_dim, last_stride=cfg.last_stride,
                            num_classes=num_classes if cfg.id_weight > 0 else 0)

    def feature_map_shape(self, cfg: SANConfig) -> tuple[int, int, int]:
        """``(C, h, w)`` of the encoder's training ``feature_map`` for ``height x width`` input.

        Found by running the encoder on PyTorch's ``meta`` device (no weights, no compute).
        """
        import torch

        with torch.device("meta"):
            encoder = self.build_model(attrs.evolve(cfg, pretrained="none"), 0).train()
            fmap = encoder(torch.empty(2, 3, cfg.height, cfg.width))["feature_map"]
        return int(fmap.shape[1]), int(fmap.shape[2]), int(fmap.shape[3])

    def build_decoder(self, cfg: SANConfig) -> torch.nn.Module:
        """SA-Dec for this config's encoder and ``texture_size`` (``decoder_blocks`` 0: auto).

        Raises:
            ValueError: ``texture_size`` not a multiple of 16, or not divisible by
                ``2 ** decoder_blocks``.
        """
        from reid_san.model import SADecoder, decoder_blocks_for
        from reid_san.texture_layout import check_size

        size = check_size(cfg.texture_size)
        channels, h, _w = self.feature_map_shape(cfg)
        blocks = cfg.decoder_blocks or decoder_blocks_for(h, size)
        return SADecoder(channels, size, blocks, cfg.decoder_width)

    def build_criterion(self, cfg: SANConfig, info: CriterionInfo | None = None) -> torch.nn.Module:
        """:class:`reid_san.losses.SANCriterion` with SA-Dec when a decoder term is on.

        Raises:
            ValueError: a negative weight, all weights 0, a bad margin or norm.
        """
        from reid_trinet.recipe import parse_margin_text

        from reid_san.losses import FeatureMapTripletLoss, SANCriterion, TextureReconstructionLoss
        from reidcore.losses import CrossEntropyLoss
        from reidcore.registry import create_loss

        _check_weights(cfg)
        terms: dict[str, tuple[float, Any]] = {}
        if cfg.id_weight > 0:
            terms["id"] = (cfg.id_weight, CrossEntropyLoss(label_smoothing=cfg.label_smoothing))
        if cfg.triplet_weight > 0:
            terms["triplet"] = (cfg.triplet_weight, create_loss(
                "batch_hard", margin=parse_margin_text(cfg.margin), metric=cfg.triplet_metric))
        if cfg.reconstruction_weight > 0:
            terms["reconstruction"] = (cfg.reconstruction_weight,
                                       TextureReconstructionLoss(cfg.reconstruction_loss))
        if cfg.perceptual_weight > 0:
            terms["perceptual"] = (cfg.perceptual_weight,
                                   FeatureMapTripletLoss(cfg.perceptual_margin))
        if not terms:
            raise ValueError("every SAN loss weight is 0 (--id-weight, --triplet-weight, "
                             "--reconstruction-weight, --perceptual-weight); nothing to train")
        decoder = None
        if uses_decoder(cfg):
            decoder = self.build_decoder(cfg)
            if cfg.init_decoder:
                from reid_san.decoder_state import load_decoder_state

                decoder.load_state_dict(load_decoder_state(cfg.init_decoder))
        return SANCriterion(terms, decoder)

    def train_dataset(self, cfg: SANConfig, split: Any, labels: list[int]) -> Any:
        """:class:`reid_san.dataset.TextureDataset` (images + textures, one flip for both)
        when the reconstruction loss is on, else the plain image dataset."""
        if cfg.reconstruction_weight <= 0:
            return super().train_dataset(cfg, split, labels)
        from reid_san.dataset import TextureDataset

        return TextureDataset(texture_samples(cfg, split.train), labels, cfg.height, cfg.width,
                              cfg.texture_size, pad=cfg.pad, flip=cfg.flip,
                              erasing_p=cfg.erasing_p, cache=cfg.cache_images)


class SANPGRecipe(SANRecipe):
    """SAN-PG: the texture generator (SA-Enc + SA-Dec, reconstruction loss only)."""

    name = "san-pg"
    description = ("SAN-PG: SA-Enc + SA-Dec trained to regress textures on paired data "
                   "(pseudo texture generator)")
    config_class = SANPGConfig
