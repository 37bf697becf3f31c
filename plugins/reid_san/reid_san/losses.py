"""SAN's losses (Jin et al., AAAI 2020, Sec. 3.2, Fig. 2) and the criterion that holds SA-Dec.

The total loss is a weighted sum; a term of weight 0 is removed (not built, not computed):

* ``id``: identity cross-entropy with label smoothing on SA-Enc's logits (``L_ID``);
* ``triplet``: batch-hard triplet loss on the 512-d re-ID feature (``L_Triplet``; reid-trinet's
  ``batch_hard``, the authors' hard-mining triplet with margin 0.3 on Euclidean distances);
* ``reconstruction``: the L1 distance between SA-Dec's texture and the (pseudo) ground-truth
  texture (``L_Rec``; the authors' ``nn.L1Loss``), or L2 (mean squared error);
* ``perceptual``: triplet re-ID constraints on SA-Dec's feature maps (``L_TR``, "Triplet ReID
  constraints over the feature maps as the perceptual losses"): for each up block's output,
  a hinge ``relu(d(a, p) - d(a, n) + margin)`` with ``d`` the mean squared difference of the
  two flattened maps (the authors' ``nn.MSELoss``, margin 0.3), summed over the blocks as the
  authors do. They draw one fixed (anchor, positive, negative) per identity of the P×K batch;
  we mine the batch-hard positive and negative of every anchor, as for ``triplet``.

:class:`SANCriterion` owns SA-Dec, so the decoder is trained (the trainer optimises and
checkpoints a criterion's parameters) but never part of the model used for inference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from reidcore.losses import Criterion

#: Terms that need SA-Dec's output.
DECODER_TERMS = ("reconstruction", "perceptual")
RECONSTRUCTION_NORMS = ("l1", "l2")


class TextureReconstructionLoss(nn.Module):
    """``L_Rec``: mean absolute (``"l1"``) or squared (``"l2"``) error of the decoded texture.

    Forward:
        ``outputs["texture"]`` ``(B, 3, T, T)`` in ``[0, 1]`` and ``outputs["target_texture"]``
        of the same shape -> scalar float32 (computed in float32). ``pids`` is unused.

    Raises:
        ValueError: unknown norm, or the two textures' shapes differ (the message gives both:
            set ``--texture-size`` to the decoder's output size).
        KeyError: either texture is missing.
    """

    def __init__(self, norm: str = "l1"):
        super().__init__()
        if norm not in RECONSTRUCTION_NORMS:
            raise ValueError(f"unknown reconstruction norm {norm!r}; choose l1 or l2")
        self.norm = norm
        self.last_stats: dict[str, float] = {}

    def extra_repr(self) -> str:
        return f"norm={self.norm!r}"

    def forward(self, outputs: Mapping[str, torch.Tensor], pids: torch.Tensor) -> torch.Tensor:
        for key in ("texture", "target_texture"):
            if key not in outputs:
                raise KeyError(f"texture reconstruction needs {key!r} (SA-Dec's output and the "
                               "training targets' 'texture')")
        pred, target = outputs["texture"].float(), outputs["target_texture"].float()
        if pred.shape != target.shape:
            raise ValueError(f"decoded textures {tuple(pred.shape)} and target textures "
                             f"{tuple(target.shape)} differ in shape")
        loss = F.l1_loss(pred, target) if self.norm == "l1" else F.mse_loss(pred, target)
        with torch.no_grad():
            self.last_stats = {"mae": float((pred - target).abs().mean())}
        return loss


def mean_squared_distances(x: torch.Tensor) -> torch.Tensor:
    """Pairwise mean squared differences of the rows of ``x``.

    Args:
        x: ``(B, ...)`` any float dtype; each sample is flattened to ``D`` values.

    Returns:
        ``(B, B)`` float32 ``||x_i - x_j||^2 / D`` (what ``nn.MSELoss`` gives for one pair),
        computed from the Gram matrix in float32 with autocast off, clamped at 0.
    """
    flat = x.reshape(x.shape[0], -1)
    with torch.autocast(device_type=x.device.type, enabled=False):
        flat = flat.float()
        sq = flat.square().sum(1)
        d = (sq[:, None] + sq[None, :] - 2.0 * flat @ flat.T).clamp_min(0.0)
    return d / flat.shape[1]


class FeatureMapTripletLoss(nn.Module):
    """``L_TR``: batch-hard triplet hinge on each of SA-Dec's feature maps, summed over maps.

    For each map and anchor ``a`` of the batch: ``relu(margin + max_p d(a, p) - min_n d(a, n))``
    with ``d`` from :func:`mean_squared_distances`, ``p`` the other images of ``a``'s identity
    and ``n`` the images of other identities; averaged over anchors that have both.

    Args:
        margin: hinge margin ``>= 0`` (the authors: 0.3).

    Forward:
        ``outputs["decoder_features"]`` (a list of ``(B, c_i, s_i, s_i)`` maps) and ``pids``
        ``(B,)`` -> scalar float32. ``last_stats``: ``active_fraction`` (anchors with a
        positive hinge, over all maps) and ``block{i}`` (each map's term).

    Raises:
        ValueError: a negative margin; a batch without any positive pair or without any
            negative pair (sample P×K batches with P >= 2 and K >= 2).
        KeyError: ``outputs`` has no ``"decoder_features"``.
    """

    def __init__(self, margin: float = 0.3):
        super().__init__()
        if not float(margin) >= 0.0:
            raise ValueError(f"perceptual triplet margin must be >= 0, got {margin!r}")
        self.margin = float(margin)
        self.last_stats: dict[str, float] = {}

    def extra_repr(self) -> str:
        return f"margin={self.margin}"

    def forward(self, outputs: Mapping[str, Sequence[torch.Tensor]],
                pids: torch.Tensor) -> torch.Tensor:
        if "decoder_features" not in outputs:
            raise KeyError("the perceptual triplet loss needs SA-Dec's 'decoder_features'")
        maps = list(outputs["decoder_features"])
        pids = torch.as_tensor(pids, device=maps[0].device)
        same = pids[:, None] == pids[None, :]
        positive = same & ~torch.eye(len(pids), dtype=torch.bool, device=pids.device)
        negative = ~same
        valid = positive.any(1) & negative.any(1)
        if not bool(valid.any()):
            raise ValueError(
                f"perceptual triplet loss: no anchor of the {len(pids)}-image batch has both a "
                "positive and a negative; sample P×K batches with P >= 2 and K >= 2")
        total, active, stats = None, [], {}
        for i, fmap in enumerate(maps, start=1):
            d = mean_squared_distances(fmap)
            d_pos = d.masked_fill(~positive, float("-inf")).amax(1)[valid]
            d_neg = d.masked_fill(~negative, float("inf")).amin(1)[valid]
            hinge = F.relu(d_pos - d_neg + self.margin)
            term = hinge.mean()
            total = term if total is None else total + term
            active.append(hinge.detach() > 0)
            stats[f"block{i}"] = float(term.detach())
        stats["active_fraction"] = float(torch.cat(active).float().mean())
        self.last_stats = stats
        return total


def run_decoder(decoder: nn.Module, fmap: torch.Tensor) -> dict:
    """``decoder(fmap)`` in the feature map's precision.

    The trainer calls the criterion outside its autocast region; a feature map produced under
    autocast (float16/bfloat16 on CUDA) is decoded under autocast of the same dtype, a float32
    one in float32.
    """
    if fmap.dtype in (torch.float16, torch.bfloat16):
        with torch.autocast(device_type=fmap.device.type, dtype=fmap.dtype):
            return decoder(fmap)
    return decoder(fmap.float())


class SANCriterion(nn.Module):
    """SAN's training loss: SA-Dec plus the weighted terms of this module's docstring.

    Args:
        terms: ``{name: (weight, loss module)}`` as for :class:`reidcore.losses.Criterion`
            (weight 0 drops a term); names in :data:`DECODER_TERMS` read SA-Dec's output,
            ``reconstruction`` also the targets' ``"texture"``.
        decoder: SA-Dec, or None when no decoder term has a non-zero weight; it is dropped
            (no parameters) when every decoder term's weight is 0.

    Forward:
        ``criterion(outputs, pids, targets=None)`` with the model's training outputs
        (``"embedding"``, ``"logits"``, ``"feature_map"`` ``(B, C, h, w)``), ``pids`` ``(B,)``
        int64 and ``targets`` (``{"texture": (B, 3, T, T)`` float32 in ``[0, 1]}``) ->
        ``(loss scalar float32, stats dict)`` with ``"loss"``, ``"loss/<term>"`` and each
        term's ``"<term>/<stat>"``.

    Raises:
        ValueError: every weight is 0, or a decoder term has a weight but ``decoder`` is None.
        KeyError: the model gave no ``"feature_map"`` (it must, in training mode) or the
            targets have no ``"texture"`` while ``reconstruction`` is on.
    """

    def __init__(self, terms: Mapping[str, tuple[float, nn.Module]],
                 decoder: nn.Module | None = None):
        super().__init__()
        self.terms = Criterion(terms)
        needs_decoder = [n for n in DECODER_TERMS if n in self.terms.terms]
        if needs_decoder and decoder is None:
            raise ValueError(f"loss terms {', '.join(needs_decoder)} need SA-Dec; no decoder given")
        self.decoder = decoder if needs_decoder else None

    @property
    def weights(self) -> dict[str, float]:
        """The kept (non-zero) term weights."""
        return dict(self.terms.weights)

    def forward(self, outputs: Mapping[str, torch.Tensor], pids: torch.Tensor,
                targets: Mapping[str, torch.Tensor] | None = None):
        merged = dict(outputs)
        if self.decoder is not None:
            if "feature_map" not in outputs:
                raise KeyError("SA-Dec needs the model's 'feature_map' output (SAEncoder returns "
                               "it in training mode)")
            decoded = run_decoder(self.decoder, outputs["feature_map"])
            merged["texture"] = decoded["texture"]
            merged["decoder_features"] = decoded["features"]
        if "reconstruction" in self.terms.terms:
            if not targets or "texture" not in targets:
                raise KeyError("the reconstruction loss needs the training targets' 'texture' "
                               "(train with reid_san.dataset.TextureDataset)")
            merged["target_texture"] = targets["texture"]
        return self.terms(merged, pids)
