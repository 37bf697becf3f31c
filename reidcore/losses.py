"""Core losses: identity cross-entropy, and the weighted sum recipes train with."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


class CrossEntropyLoss(nn.Module):
    """Classification loss on ``outputs[logits_key]`` ``(B, num_classes)`` (default: identities).

    Args:
        label_smoothing: epsilon of label smoothing (Szegedy et al. 2016, Sec. 7);
            0 gives plain softmax cross-entropy.
        logits_key: which output holds the logits (e.g. ``"view_logits"`` for PSE's views).

    Computed in float32 whatever the autocast dtype.
    """

    def __init__(self, label_smoothing: float = 0.0, logits_key: str = "logits"):
        super().__init__()
        self.label_smoothing = float(label_smoothing)
        self.logits_key = logits_key
        self.last_stats: dict[str, float] = {}

    def forward(self, outputs: Mapping[str, torch.Tensor], pids: torch.Tensor) -> torch.Tensor:
        if self.logits_key not in outputs:
            raise KeyError(f"cross_entropy needs the model to output {self.logits_key!r}"
                           + (" (num_classes > 0)" if self.logits_key == "logits" else ""))
        logits = outputs[self.logits_key].float()
        loss = nn.functional.cross_entropy(logits, pids, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            self.last_stats = {"accuracy": (logits.argmax(1) == pids).float().mean().item()}
        return loss


class Criterion(nn.Module):
    """A weighted sum of named losses: ``total = sum(w_i * loss_i(outputs, pids))``.

    Terms with weight 0 are dropped (not even computed). ``forward(outputs, pids, targets=None)``
    (the criterion contract of :meth:`reidcore.recipe.Recipe.build_criterion`) returns
    ``(total, stats)`` where ``stats`` holds each term's value and its ``last_stats``
    prefixed by the term's name. Each term (a loss) is called ``term(outputs, pids)``; the
    dataset's ``targets`` are added to its ``outputs`` as ``"target_<name>"``.

    Raises:
        ValueError: no term has a non-zero weight.
    """

    def __init__(self, terms: Mapping[str, tuple[float, nn.Module]]):
        super().__init__()
        kept = {name: (float(w), m) for name, (w, m) in terms.items() if float(w) != 0.0}
        if not kept:
            raise ValueError(f"every loss weight is 0 (terms: {', '.join(terms)}); nothing to train")
        self.weights = {name: w for name, (w, _m) in kept.items()}
        self.terms = nn.ModuleDict({name: m for name, (_w, m) in kept.items()})

    def forward(self, outputs: Mapping[str, torch.Tensor], pids: torch.Tensor,
                targets: Mapping[str, torch.Tensor] | None = None):
        if targets:
            outputs = {**outputs, **{f"target_{k}": v for k, v in targets.items()}}
        total = None
        stats: dict[str, float] = {}
        for name, module in self.terms.items():
            value = module(outputs, pids)
            stats[f"loss/{name}"] = float(value.detach())
            for key, v in getattr(module, "last_stats", {}).items():
                stats[f"{name}/{key}"] = float(v)
            term = self.weights[name] * value
            total = term if total is None else total + term
        stats["loss"] = float(total.detach())
        return total, stats
