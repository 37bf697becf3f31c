"""Pseudo ground-truth textures from a trained SAN-PG (the authors' ``generate_texture.py``).

Jin et al., AAAI 2020, Sec. 3.3: SAN-PG (SA-Enc + SA-Dec trained with the reconstruction
loss on paired synthetic data) predicts a texture image for every re-ID training image;
those pseudo textures then supervise SAN's decoder. The authors' script resizes each image to
128x64, decodes it and writes a 64x64 texture under the image's file name. Here the input
size and normalisation are the SAN-PG experiment's own (``height``, ``width``, ImageNet
mean/std, exactly as at training), the texture is SA-Dec's ``texture_size`` or ``size``, and
each texture is written as ``OUTPUT/<image stem>.png`` (the layout
:func:`reid_san.textures.attach_textures` reads) through a temporary file and a rename.

SA-Dec's weights come from the checkpoint's criterion state (:mod:`reid_san.decoder_state`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from reid_san.decoder_state import decoder_keys
from reid_san.textures import write_png_atomic
from reidcore.errors import DatasetError, ExperimentError

log = logging.getLogger("reidcore")

#: Image file extensions read from an input folder (compared case-insensitively).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


def load_texture_generator(model: str | os.PathLike, device: str | torch.device = "cpu"):
    """``(TextureGenerator in eval mode on device, config)`` of a trained SAN-PG (or SAN).

    Args:
        model: an experiment folder (its newest checkpoint) or a checkpoint file inside an
            experiment's ``checkpoints/`` folder.
        device: where to run it.

    Raises:
        ExperimentError: no checkpoint, not a san/san-pg experiment, or no decoder weights.
    """
    from reid_san.model import TextureGenerator
    from reid_san.recipe import SANConfig
    from reidcore.trained import load_trained

    trained = load_trained(Path(model), "cpu")  # the one loader: weights_only, staged folders
    cfg, recipe, exp_dir = trained.config, trained.recipe, trained.directory
    if not isinstance(cfg, SANConfig) or not hasattr(recipe, "build_decoder"):
        raise ExperimentError(f"{exp_dir} was trained by recipe {trained.recipe_name!r}; "
                              "textures need a san-pg (or san) experiment")
    decoder_state = decoder_keys(trained.state, Path(model))
    encoder = trained.model
    decoder = recipe.build_decoder(cfg)
    decoder.load_state_dict(decoder_state)
    generator = TextureGenerator(encoder, decoder).float().eval().to(device)
    log.info("texture generator: %s (%s, iteration %s), %dx%d input -> %dx%d textures", exp_dir,
             trained.recipe_name, trained.checkpoint["checkpoint_iteration"], cfg.height, cfg.width,
             decoder.texture_size, decoder.texture_size)
    return generator, cfg


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files directly inside ``folder`` (:data:`IMAGE_EXTENSIONS`), sorted by name.

    Raises:
        DatasetError: ``folder`` is not a folder, holds no image, or two images share a
            file stem (their textures would collide; both are named).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"input folder {folder} does not exist")
    images = sorted(p for p in folder.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise DatasetError(f"input folder {folder} holds no image "
                           f"({', '.join(IMAGE_EXTENSIONS)})")
    seen: dict[str, Path] = {}
    for p in images:
        if p.stem in seen:
            raise DatasetError(f"images {seen[p.stem]} and {p} share the stem {p.stem!r}; their "
                               f"textures would both be {p.stem}.png")
        seen[p.stem] = p
    return images


def to_uint8_images(textures: torch.Tensor, size: int | None = None) -> list[np.ndarray]:
    """Textures ``(B, 3, T, T)`` in ``[0, 1]`` -> uint8 ``(size, size, 3)`` arrays (PIL bilinear
    resize when ``size`` differs from ``T``; ``None`` keeps ``T``)."""
    arr = (textures.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    out = []
    for t in arr.permute(0, 2, 3, 1).cpu().numpy():
        if size is not None and size != t.shape[0]:
            t = np.asarray(Image.fromarray(t).resize((size, size), Image.Resampling.BILINEAR))
        out.append(np.ascontiguousarray(t))
    return out


def generate_textures(generator: torch.nn.Module, images: Sequence[Path], output: str | os.PathLike,
                      height: int, width: int, *, size: int | None = None, batch_size: int = 64,
                      workers: int = 0, overwrite: bool = False,
                      device: str | torch.device = "cpu") -> int:
    """Write ``OUTPUT/<stem>.png``, the generator's texture, for every image.

    Images are resized to ``height x width`` and ImageNet-normalised (as ``embed`` does).
    Existing textures are kept unless ``overwrite`` (an interrupted run resumes).

    Args:
        generator: images ``(B, 3, height, width)`` -> textures ``(B, 3, T, T)`` in ``[0, 1]``.
        images: the image files.
        output: the texture folder (created).
        size: side of the written textures (None: ``T``); the authors write 64.
        batch_size, workers: DataLoader settings.

    Returns:
        The number of textures written.

    Raises:
        ImageReadError: an image cannot be decoded (named).
        ValueError: ``size`` or ``batch_size`` < 1.
        Interrupted: SIGINT/SIGTERM arrived (``exit_code`` ``128 + signal``; the textures
            written so far are complete files, and running again writes only the rest).
    """
    from torch.utils.data import DataLoader

    from reidcore.data.dataset import ImageDataset
    from reidcore.data.records import Sample
    from reidcore.data.transforms import to_normalized
    from reidcore.interrupts import Interrupted, interruptible

    if size is not None and size < 1:
        raise ValueError(f"texture size must be >= 1, got {size}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    output = Path(output).expanduser()
    output.mkdir(parents=True, exist_ok=True)
    todo = [Path(p) for p in images if overwrite or not (output / f"{Path(p).stem}.png").exists()]
    if len(todo) < len(images):
        log.info("textures: %d of %d already in %s (kept)", len(images) - len(todo), len(images),
                 output)
    if not todo:
        return 0
    dataset = ImageDataset([Sample(str(p), -1, -1) for p in todo], None, height, width,
                           to_normalized())
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=False)
    generator = generator.eval()
    written = 0
    try:
        with torch.no_grad(), interruptible("texture generation"):
            for x, _labels, idx in loader:
                textures = generator(x.to(device))
                for i, tex in zip(idx.tolist(), to_uint8_images(textures, size), strict=True):
                    write_png_atomic(output / f"{todo[i].stem}.png", tex)
                    written += 1
    except Interrupted:
        log.info("textures: wrote %d of %d in %s before the signal; the same command writes "
                 "the rest", written, len(todo), output)
        raise
    log.info("textures: wrote %d in %s", written, output)
    return written


def texture_l1(generator: torch.nn.Module, samples: Sequence[Any], height: int, width: int,
               texture_size: int, *, batch_size: int = 64,
               device: str | torch.device = "cpu") -> float:
    """Mean absolute error of the generator's textures against the samples' true textures.

    The SAN-PG reconstruction error (``L_Rec``, Jin et al. AAAI 2020, Sec. 3.2) on paired
    data, e.g. the unseen identities of ``synthetic-textures`` (query + gallery): images
    resized to ``height x width`` and normalised, no augmentation; targets resized to
    ``texture_size`` (the generator's output size) and scaled to ``[0, 1]``.

    Args:
        samples: records with ``extras["texture"]``.

    Returns:
        The mean over all pixels and channels, in ``[0, 1]`` units.

    Raises:
        DatasetError: a sample has no texture (named).
        ValueError: no sample, or the generator's output size is not ``texture_size``.
    """
    from torch.utils.data import DataLoader

    from reid_san.dataset import TextureDataset

    if not samples:
        raise ValueError("texture_l1 needs at least one sample")
    dataset = TextureDataset(samples, None, height, width, texture_size, pad=0, flip=False)
    total, count = 0.0, 0
    generator = generator.eval()
    with torch.no_grad():
        for inputs, _labels, _idx in DataLoader(dataset, batch_size=batch_size):
            pred = generator(inputs["image"].to(device)).float().cpu()
            if pred.shape != inputs["texture"].shape:
                raise ValueError(f"generator textures {tuple(pred.shape[1:])} differ from the "
                                 f"targets {tuple(inputs['texture'].shape[1:])}")
            total += float((pred - inputs["texture"]).abs().sum())
            count += pred.numel()
    return total / count
