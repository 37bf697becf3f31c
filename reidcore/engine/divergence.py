"""Divergence guard: stop on a NaN/inf or exploding loss, never checkpoint non-finite weights.

A loss *explodes* when it exceeds ``factor`` times its reference, the larger of the median of
the last ``window`` losses and the median of the run's first :data:`INITIAL` losses (the
loss's natural scale; it keeps a loss that converged to 0, e.g. a hard-margin triplet loss,
from making every later batch an explosion). The loss of iteration ``i`` is computed from the
weights of checkpoint ``i - 1``; a checkpoint is *confirmed* when the loss computed from its
weights was finite and at most ``sqrt(factor)`` times the reference. When training diverges
the message names the newest confirmed checkpoint, which rotation never deleted, and the
newer checkpoints are renamed aside (``*.pt.diverged``) so that ``--resume`` (e.g. with a
lower ``--lr``) starts from it.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from reidcore.engine import checkpoint
from reidcore.engine.loop import Hook, TrainLoop
from reidcore.errors import TrainingDivergedError

log = logging.getLogger("reidcore")

INITIAL = 10  # losses that define the loss's natural scale
DIVERGED_SUFFIX = ".diverged"


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every element of every tensor is finite (one device sync)."""
    flags = [torch.isfinite(t).all() for t in tensors if t.is_floating_point()]
    return bool(torch.stack(flags).all()) if flags else True


class DivergenceGuard(Hook):
    """The divergence hook (see the module docstring).

    Args:
        exp_dir: the experiment (or stage) folder holding ``checkpoints/``.
        factor: explosion factor (> 1); ``0`` turns the explosion test off (NaN/inf still stop).
        window: losses in the running median.
        parameters: returns the tensors checked before a checkpoint is written.
        main: whether this process renames files (rank 0).

    Raises (from :meth:`after_step` and :meth:`check_before_save`):
        TrainingDivergedError: the loss is NaN/inf or exploded, or a parameter is not finite.
    """

    def __init__(self, exp_dir: Path, factor: float = 1000.0, window: int = 100,
                 parameters: Callable[[], Iterable[torch.Tensor]] = lambda: (),
                 main: bool = True):
        if factor < 0 or 0 < factor <= 1:
            raise ValueError(f"--divergence-factor must be 0 (off) or > 1, got {factor}")
        self.exp_dir, self.factor, self.parameters, self.main = Path(exp_dir), factor, parameters, main
        self.losses: deque[float] = deque(maxlen=window)
        self.initial: list[float] = []
        self.confirmed: int | None = None
        self.pending: list[int] = []
        self.last_loss = 0.0

    @property
    def protected(self) -> int | None:
        """The iteration of the newest confirmed checkpoint (rotation keeps it)."""
        return self.confirmed

    def reference(self) -> float:
        """``max(median of the window, median of the first losses)``; 0 before any loss."""
        if not self.losses:
            return 0.0
        return max(statistics.median(self.losses), statistics.median(self.initial))

    def observe(self, iteration: int, loss: float) -> None:
        """Check the loss of ``iteration`` (computed from the weights of ``iteration - 1``)."""
        self.last_loss = loss
        step = iteration - 1
        if not math.isfinite(loss):
            self._diverged(f"training loss became {loss} at iteration {step}")
        ref = self.reference()
        if self.factor and self.losses and loss > self.factor * ref:
            self._diverged(f"training loss exploded at iteration {step}: {loss:.4g} is more than "
                           f"{self.factor:g} times its running median {ref:.4g}")
        if not self.losses or not self.factor or loss <= math.sqrt(self.factor) * ref:
            if step in self.pending:
                self.confirmed = step
            self.pending = [p for p in self.pending if p > step]
        self.losses.append(loss)
        if len(self.initial) < INITIAL:
            self.initial.append(loss)

    def after_step(self, loop: TrainLoop) -> None:
        self.observe(loop.iteration, loop.stats["loss"])

    def check_before_save(self, iteration: int) -> None:
        """Refuse to checkpoint ``iteration`` unless the last loss and every parameter are finite."""
        if not math.isfinite(self.last_loss) or not all_finite(self.parameters()):
            self._diverged(f"a parameter is not finite at iteration {iteration} (checkpoint "
                           "not written)")

    def saved(self, iteration: int) -> None:
        """Record that the checkpoint of ``iteration`` was written (unconfirmed for now)."""
        self.pending.append(iteration)

    def state_dict(self) -> dict[str, Any]:
        return {"losses": list(self.losses), "initial": list(self.initial),
                "confirmed": self.confirmed, "pending": list(self.pending)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.losses.clear()
        self.losses.extend(float(v) for v in state.get("losses", []))
        self.initial = [float(v) for v in state.get("initial", [])]
        self.confirmed = state.get("confirmed")
        self.pending = [int(p) for p in state.get("pending", [])]

    def _diverged(self, what: str) -> None:
        kept = None if self.confirmed is None else checkpoint.checkpoint_path(self.exp_dir,
                                                                               self.confirmed)
        moved = []
        if self.main:
            for it, path in checkpoint.list_checkpoints(self.exp_dir):
                if self.confirmed is None or it > self.confirmed:
                    path.rename(path.with_name(path.name + DIVERGED_SUFFIX))
                    moved.append(path.name)
        if kept is not None:
            where = f"the newest checkpoint written before that is {kept} (kept)"
        else:
            where = "no checkpoint was written before that"
        if moved:
            where += f"; later checkpoints renamed to *{DIVERGED_SUFFIX}: {', '.join(moved)}"
        raise TrainingDivergedError(f"{what}; {where}. Lower --lr or check the data "
                                    "(resume with --resume and new flags).")
