"""The training loop: ``run_step(batch) -> stats`` plus hooks (as fast-reid's ``engine/train_loop.py``).

Behaviour around the step (checkpoints, log lines and TensorBoard, the progress bar, stopping
on a signal, a time budget or divergence, layer freezing) lives in :class:`Hook` subclasses
(:mod:`reidcore.engine.hooks`, :mod:`reidcore.engine.divergence`), never as a branch here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any


class Hook:
    """A training hook; every method is a no-op unless overridden.

    Order: ``before_train`` once, ``after_step`` after every iteration (``loop.iteration`` is
    then the number of completed iterations, ``loop.stats`` the step's statistics),
    ``after_train`` once when the loop ended without an exception, ``close`` always (in
    reverse hook order, also after an exception).
    """

    def before_train(self, loop: TrainLoop) -> None:
        """Called once before the first step."""

    def after_step(self, loop: TrainLoop) -> None:
        """Called after every step."""

    def after_train(self, loop: TrainLoop) -> None:
        """Called once after the last step when no exception was raised."""

    def close(self, loop: TrainLoop) -> None:
        """Release resources (files, progress bars, signal handlers); always called."""


class TrainLoop:
    """Iterate ``run_step`` from ``start`` to ``max_iter`` unless a hook stops the loop first.

    Attributes:
        iteration: completed iterations.
        max_iter: the last iteration of the schedule.
        stats: the last step's statistics (``{"loss": float, ...}``).
        stopped: ``None`` while running, then ``"done"``, ``"budget"`` or ``"signal"``.
        signum: the signal that stopped the loop, if any.
        images: images trained on in this call (global batch under DDP).
        seconds: wall-clock seconds of the loop itself (set before ``after_train``).
    """

    def __init__(self, hooks: Sequence[Hook], start: int, max_iter: int):
        self.hooks = list(hooks)
        self.iteration, self.max_iter = start, max_iter
        self.stats: dict[str, float] = {}
        self.stopped: str | None = None
        self.signum: int | None = None
        self.images, self.seconds = 0, 0.0

    def run_step(self, batch: Any) -> dict[str, float]:
        """Train on one batch; returns its statistics (at least ``"loss"``)."""
        raise NotImplementedError

    def stop(self, reason: str, signum: int | None = None) -> None:
        """Ask the loop to end after the current iteration (``"signal"`` or ``"budget"``)."""
        if self.stopped is None:
            self.stopped, self.signum = reason, signum

    def train(self, batches: Iterator[Any]) -> None:
        """Run the loop over ``batches``; hooks see every step."""
        t0 = time.monotonic()
        try:
            for h in self.hooks:
                h.before_train(self)
            while self.iteration < self.max_iter and self.stopped is None:
                self.stats = self.run_step(next(batches))
                self.iteration += 1
                for h in self.hooks:
                    h.after_step(self)
            self.stopped = self.stopped or "done"
            self.seconds = time.monotonic() - t0
            for h in self.hooks:
                h.after_train(self)
        finally:
            for h in reversed(self.hooks):
                h.close(self)
