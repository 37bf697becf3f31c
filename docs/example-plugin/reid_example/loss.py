"""Contrastive loss over every pair of a P×K batch (Hadsell, Chopra, LeCun, CVPR 2006, eq. 4)."""

from __future__ import annotations

import torch
from torch import nn


class ContrastiveLoss(nn.Module):
    """``mean over pairs of: same * d² + (1 - same) * max(0, margin - d)²``, d euclidean.

    Forward: ``(outputs {"embedding": (B, D)}, pids (B,) int64)`` → scalar float32.
    ``last_stats["active_negatives"]``: fraction of negative pairs inside the margin.

    Raises:
        ValueError: ``margin`` is not positive.
    """

    def __init__(self, margin: float = 1.0):
        super().__init__()
        if margin <= 0:
            raise ValueError(f"contrastive margin must be > 0, got {margin}")
        self.margin = float(margin)
        self.last_stats: dict[str, float] = {}

    def forward(self, outputs: dict[str, torch.Tensor], pids: torch.Tensor) -> torch.Tensor:
        e = outputs["embedding"].float()
        d = torch.cdist(e, e).clamp_min(1e-12)
        same = (pids[:, None] == pids[None, :]).float()
        off_diag = 1.0 - torch.eye(len(pids), device=e.device)
        neg = torch.relu(self.margin - d)
        loss = (same * d.pow(2) + (1 - same) * neg.pow(2)) * off_diag
        with torch.no_grad():
            n_neg = ((1 - same) * off_diag).sum().clamp_min(1)
            self.last_stats = {"active_negatives": float(((neg > 0) * (1 - same)).sum() / n_neg)}
        return loss.sum() / off_diag.sum()
