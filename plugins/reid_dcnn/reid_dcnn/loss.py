"""Identification + verification loss (Zheng et al. TOMM 2017, Sec. 3.3, eq. 5)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from reid_dcnn.verification import VerificationHead, sample_pairs


class IdentificationVerificationLoss(nn.Module):
    """``CE(identity of every image) + alpha * CE(same/different of sampled pairs)``.

    Every image of the batch is one side of a pair (its partner drawn by
    :func:`~reid_dcnn.verification.sample_pairs`), so identification covers both images of
    every pair, as in the Siamese network. The verification classifier lives in this loss
    (the trainer optimises and checkpoints loss parameters); it is not part of the inference
    model. ``alpha = 0`` is identification only.

    Forward: ``(outputs {"embedding": (B, D), "logits": (B, C)}, pids (B,))`` → scalar.
    ``last_stats``: ``id_loss``, ``verif_loss``, ``verif_accuracy``, ``positive_fraction``.

    ``dropout``, ``normalize`` and ``hidden`` configure the
    :class:`~reid_dcnn.verification.VerificationHead` (the seed's: 0.75, True, True).

    Raises:
        ValueError: ``alpha < 0``.
    """

    def __init__(self, dim: int = 512, alpha: float = 1.0, layer: str = "product",
                 positive_ratio: float = 0.5, dropout: float = 0.75, label_smoothing: float = 0.0,
                 normalize: bool = True, hidden: bool = True):
        super().__init__()
        if alpha < 0:
            raise ValueError(f"alpha (verification weight) must be >= 0, got {alpha}")
        self.alpha = float(alpha)
        self.positive_ratio = float(positive_ratio)
        self.label_smoothing = float(label_smoothing)
        self.verification = VerificationHead(dim, layer, dropout, normalize, hidden)
        self.last_stats: dict[str, float] = {}

    def forward(self, outputs: Mapping[str, torch.Tensor], pids: torch.Tensor) -> torch.Tensor:
        if "logits" not in outputs:
            raise KeyError("identification needs 'logits': build the model with num_classes > 0")
        id_loss = nn.functional.cross_entropy(outputs["logits"].float(), pids,
                                              label_smoothing=self.label_smoothing)
        stats = {"id_loss": float(id_loss.detach())}
        loss = id_loss
        if self.alpha > 0:
            first, second, same = sample_pairs(pids, self.positive_ratio)
            emb = outputs["embedding"].float()
            logits = self.verification(emb[first], emb[second]).float()
            verif = nn.functional.cross_entropy(logits, same)
            loss = loss + self.alpha * verif
            with torch.no_grad():
                stats.update(verif_loss=float(verif),
                             verif_accuracy=float((logits.argmax(1) == same).float().mean()),
                             positive_fraction=float(same.float().mean()))
        self.last_stats = stats
        return loss
