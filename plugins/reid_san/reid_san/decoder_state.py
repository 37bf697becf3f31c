"""SA-Dec's weights from a trained ``san``/``san-pg`` experiment or checkpoint.

SA-Dec is trained with the criterion (:class:`reid_san.losses.SANCriterion` owns it as its
``decoder`` submodule), so it is stored in the checkpoint's ``"criterion"`` state under
:data:`DECODER_PREFIX`, and is absent from the model's (``"model"``) state. The checkpoint is
found and read through the core's public loaders (:func:`reidcore.trained.locate_checkpoint`,
:func:`reidcore.trained.load_checkpoint_file`: ``weights_only``, staged experiments).

Used by :mod:`reid_san.generator` (``san textures``) and by the recipe's ``--init-decoder``;
it imports neither, so the two do not import each other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reidcore.errors import ExperimentError

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Prefix of SA-Dec's keys in the criterion state (``SANCriterion.decoder``).
DECODER_PREFIX = "decoder."


def decoder_keys(state: dict[str, Any], where: str | os.PathLike) -> dict[str, torch.Tensor]:
    """SA-Dec's state dict (prefix removed) from a loaded checkpoint ``state``.

    Raises:
        ExperimentError: the checkpoint's criterion state has no ``decoder.*`` key (names
            ``where``).
    """
    crit = state.get("criterion") or {}
    dec = {k[len(DECODER_PREFIX):]: v for k, v in crit.items() if k.startswith(DECODER_PREFIX)}
    if not dec:
        raise ExperimentError(
            f"{where} holds no SA-Dec weights (no 'decoder.*' in the checkpoint's criterion "
            "state): it was not trained by san-pg/san with a reconstruction or perceptual weight")
    return dec


def load_decoder_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """SA-Dec's state dict from a ``san``/``san-pg`` experiment folder or checkpoint file.

    Raises:
        ExperimentError: no checkpoint, or the checkpoint has no decoder weights.
    """
    from reidcore.trained import load_checkpoint_file, locate_checkpoint

    _train_dir, ckpt = locate_checkpoint(Path(path))
    return decoder_keys(load_checkpoint_file(ckpt), Path(path))
