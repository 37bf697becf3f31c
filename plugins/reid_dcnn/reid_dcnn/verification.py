"""The verification part: pair sampling inside a P×K batch and the square/product layer."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

LAYERS = ("product", "square")


class VerificationHead(nn.Module):
    """Same/different-identity classifier on a pair of descriptors.

    The descriptors are L2-normalised first (``normalize=True``, the seed's ``model.py``:
    ``ClassBlock`` returns ``f / ||f||`` and the verification sees ``pf * f``), so the layer's
    output is bounded whatever the descriptors' scale. ``layer="product"``: ``f = x * y``
    (layumi's PyTorch version, default); ``"square"``: ``f = (x - y)^2`` (the paper's square
    layer, Zheng et al. TOMM 2017, Sec. 3.2, eq. 3). Both are symmetric in ``(x, y)``. Then,
    as the seed's ``verif_net`` (``ClassBlock(512, 2, dropout=0.75)``) when ``hidden=True``:
    FC(dim, dim) + BN → dropout → FC(dim, 2) initialised ``N(0, 0.001^2)``; with
    ``hidden=False`` dropout and FC(dim, 2) (PyTorch's default initialisation).

    Forward: ``x (N, D), y (N, D)`` → logits ``(N, 2)`` (class 1 = same identity).

    Raises:
        ValueError: unknown ``layer``.
    """

    def __init__(self, dim: int = 512, layer: str = "product", dropout: float = 0.75,
                 normalize: bool = True, hidden: bool = True):
        super().__init__()
        if layer not in LAYERS:
            raise ValueError(f"unknown verification layer {layer!r}; known: {', '.join(LAYERS)}")
        self.layer = layer
        self.normalize = bool(normalize)
        self.hidden = None
        if hidden:
            self.hidden = nn.Sequential(nn.Linear(dim, dim), nn.BatchNorm1d(dim))
            nn.init.kaiming_normal_(self.hidden[0].weight, a=0, mode="fan_out")
            nn.init.zeros_(self.hidden[0].bias)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(dim, 2)
        if hidden:
            nn.init.normal_(self.fc.weight, std=0.001)
            nn.init.zeros_(self.fc.bias)

    def pair_feature(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The square/product layer's output ``(N, D)`` (after the optional L2 normalisation)."""
        if self.normalize:
            x, y = F.normalize(x, dim=1), F.normalize(y, dim=1)
        return x * y if self.layer == "product" else (x - y).pow(2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        f = self.pair_feature(x, y)
        if self.hidden is not None:
            f = self.hidden(f)
        return self.fc(self.dropout(f))


def sample_pairs(pids: torch.Tensor, positive_ratio: float = 0.5,
                 generator: torch.Generator | None = None):
    """One partner per image of a batch: a positive with probability ``positive_ratio``.

    For anchor ``i`` a positive partner is another image of the same pid, a negative one an
    image of another pid (chosen uniformly). Anchors without any positive in the batch get a
    negative. With P×K batches (K ≥ 2) the fraction of positive pairs is ``positive_ratio``
    in expectation.

    Args:
        pids: ``(B,)`` int64 identity labels.
        positive_ratio: in [0, 1].
        generator: a torch generator for reproducible pairs (on the CPU).

    Returns:
        ``(first (N,), second (N,), same (N,))``: int64 index tensors and int64 labels (1 = same).

    Raises:
        ValueError: ``positive_ratio`` outside [0, 1], or a batch with a single pid.
    """
    if not 0.0 <= positive_ratio <= 1.0:
        raise ValueError(f"positive_ratio must be in [0, 1], got {positive_ratio}")
    p = pids.detach().cpu()
    n = len(p)
    same = p[:, None] == p[None, :]
    eye = torch.eye(n, dtype=torch.bool)
    pos_mask = same & ~eye
    neg_mask = ~same
    if not neg_mask.any():
        raise ValueError("verification pairs need at least two identities in a batch")
    want_pos = torch.rand(n, generator=generator) < positive_ratio
    want_pos &= pos_mask.any(1)
    choose_from = torch.where(want_pos[:, None], pos_mask, neg_mask).float()
    has_any = choose_from.sum(1) > 0
    first = torch.arange(n)[has_any]
    second = torch.multinomial(choose_from[has_any], 1, generator=generator).squeeze(1)
    labels = (p[first] == p[second]).long()
    return first.to(pids.device), second.to(pids.device), labels.to(pids.device)
