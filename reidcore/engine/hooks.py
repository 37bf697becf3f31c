"""The trainer's hooks: stop (signals, time budget), freeze, log + TensorBoard, progress bar, checkpoints.

Each hook is one behaviour of :class:`reidcore.engine.loop.TrainLoop`; the divergence guard is in
:mod:`reidcore.engine.divergence`. Hooks that write files do so only on the main process
(rank 0 under ``torchrun``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from reidcore.engine import checkpoint, scopes
from reidcore.engine.loop import Hook, TrainLoop
from reidcore.engine.signals import GracefulStop

log = logging.getLogger("reidcore")


class StopHook(Hook):
    """Stop after the current batch on SIGINT/SIGTERM (any iteration, the last included) or
    when ``time.monotonic()`` passes ``deadline``.

    Args:
        deadline: monotonic time in seconds at which training stops (``math.inf``: none);
            the budget does not apply to the last iteration (the run is then done).
        agree: turns this process's ``[signum or 0, over budget]`` into every rank's
            decision (:meth:`reidcore.engine.distributed.DataParallel.agree`).
    """

    def __init__(self, deadline: float = math.inf,
                 agree: Callable[[list[int]], list[int]] = lambda v: list(v)):
        self.deadline, self.agree = deadline, agree
        self._signals = GracefulStop()

    def before_train(self, loop: TrainLoop) -> None:
        self._signals.__enter__()

    def after_step(self, loop: TrainLoop) -> None:
        over = loop.iteration < loop.max_iter and time.monotonic() >= self.deadline
        sig, over = self.agree([self._signals.signum or 0, int(over)])
        if sig:
            loop.stop("signal", sig)
        elif over:
            loop.stop("budget")

    def close(self, loop: TrainLoop) -> None:
        self._signals.__exit__(None, None, None)


class FreezeHook(Hook):
    """Layer freezing by parameter-name scopes (``--trainable-scopes``).

    The constructor freezes every parameter outside ``trainable_scopes`` (so that the
    optimizer built next sees only the trainable ones, see
    :func:`reidcore.engine.scopes.apply_trainable_scopes`); ``before_train`` puts the model
    in training mode with the normalisation layers of frozen parts in eval mode (their
    running statistics stay as loaded).

    Raises:
        ValueError: a scope matches no parameter.
    """

    def __init__(self, model: torch.nn.Module, trainable_scopes: str):
        self.model = model
        self.trainable, self.frozen = scopes.apply_trainable_scopes(model, trainable_scopes)
        if self.frozen:
            log.info("training %d parameter tensors in scopes %r; %d frozen", self.trainable,
                     trainable_scopes, self.frozen)

    def before_train(self, loop: TrainLoop) -> None:
        self.model.train()
        scopes.freeze_batchnorm_of_frozen(self.model)


class LogHook(Hook):
    """A log line every ``log_every`` iterations and at the last one; TensorBoard events.

    Log line: ``iter I/T loss L lr R N img/s`` and the step's other statistics. TensorBoard
    (``writer``, a :class:`reidcore.engine.tensorboard.NullWriter` when off): every step's
    statistics and lr as ``train/...``; at each log line ``train/images_per_second`` and
    histograms of the batch's embeddings (``outputs()["embedding"]``) and their norms.

    Args:
        writer: the TensorBoard writer (closed by :meth:`close`).
        log_every: iterations between log lines (> 0).
        lr: returns the current learning rate.
        outputs: returns the last step's model outputs.
    """

    def __init__(self, writer: Any, log_every: int, lr: Callable[[], float],
                 outputs: Callable[[], Any]):
        self.writer, self.log_every, self.lr, self.outputs = writer, log_every, lr, outputs

    def before_train(self, loop: TrainLoop) -> None:
        self._t, self._images = time.monotonic(), loop.images

    def after_step(self, loop: TrainLoop) -> None:
        it, stats, lr = loop.iteration, loop.stats, self.lr()
        self.writer.scalars(it, {**stats, "lr": lr}, "train/")
        if it % self.log_every and it != loop.max_iter:
            return
        now = time.monotonic()
        rate = (loop.images - self._images) / max(now - self._t, 1e-9)
        extra = " ".join(f"{k} {v:.4g}" for k, v in stats.items() if k != "loss")
        log.info("iter %d/%d loss %.4f lr %.3g %.1f img/s %s", it, loop.max_iter, stats["loss"],
                 lr, rate, extra)
        self._t, self._images = now, loop.images
        if self.writer.enabled:
            self.writer.scalars(it, {"images_per_second": rate}, "train/")
            emb = self.outputs()["embedding"].detach().float().cpu()
            self.writer.histogram("train/embedding", emb, it)
            self.writer.histogram("train/embedding_norm", emb.norm(dim=1), it)

    def close(self, loop: TrainLoop) -> None:
        self.writer.close()


class ProgressHook(Hook):
    """A tqdm bar on stdout (loss, lr, images/s) with log lines printed above it.

    Shown only when ``enabled`` and stdout is a terminal (log files and CI output keep the
    log lines alone).
    """

    def __init__(self, enabled: bool, lr: Callable[[], float]):
        self.enabled = enabled and sys.stdout.isatty()
        self.lr, self.bar = lr, None
        self._redirect = contextlib.ExitStack()

    def before_train(self, loop: TrainLoop) -> None:
        if not self.enabled:
            return
        from tqdm.auto import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        self.bar = tqdm(total=loop.max_iter, initial=loop.iteration, desc="train", unit="it",
                        file=sys.stdout, dynamic_ncols=True, leave=False)
        self._redirect.enter_context(logging_redirect_tqdm(loggers=[log], tqdm_class=type(self.bar)))
        self._t, self._images, self._rate = time.monotonic(), loop.images, 0.0

    def after_step(self, loop: TrainLoop) -> None:
        if self.bar is None:
            return
        now = time.monotonic()
        rate = (loop.images - self._images) / max(now - self._t, 1e-9)
        self._rate = rate if self._rate == 0 else 0.7 * self._rate + 0.3 * rate
        self._t, self._images = now, loop.images
        if self.bar.total != loop.max_iter:  # a re-fitted schedule (budget.RefitHook)
            self.bar.total = loop.max_iter
        self.bar.set_postfix_str(f"loss {loop.stats['loss']:.4f} lr {self.lr():.3g} "
                                 f"{self._rate:.1f} img/s", refresh=False)
        self.bar.update(1)

    def close(self, loop: TrainLoop) -> None:
        self._redirect.close()
        if self.bar is not None:
            self.bar.close()


class CheckpointHook(Hook):
    """A checkpoint every ``every`` iterations and when the loop ends (done, budget, signal).

    Before writing, ``guard.check_before_save`` verifies that the loss and every parameter
    are finite (:class:`reidcore.engine.divergence.DivergenceGuard`). Rotation keeps the
    newest ``keep`` checkpoints plus ``guard.protected`` (the newest one known to precede
    any loss explosion). Only the main process writes and deletes.

    Args:
        exp_dir: the experiment (or stage) folder.
        save: writes the checkpoint of an iteration and returns its path.
        every: iterations between checkpoints (> 0).
        guard: the divergence guard.
        keep: how many of the newest checkpoints rotation keeps.
        main: whether this process writes files.
    """

    def __init__(self, exp_dir: Path, save: Callable[[int], Path], every: int, guard: Any,
                 keep: int = 2, main: bool = True):
        self.exp_dir, self.save, self.every, self.guard = Path(exp_dir), save, every, guard
        self.keep, self.main = keep, main
        self.path: Path | None = None

    def _write(self, iteration: int) -> None:
        self.guard.check_before_save(iteration)
        self.guard.saved(iteration)  # the guard's state goes into the checkpoint
        if not self.main:
            return
        self.path = self.save(iteration)
        protected = self.guard.protected
        for it, old in checkpoint.list_checkpoints(self.exp_dir)[:-self.keep]:
            if it != protected:
                old.unlink(missing_ok=True)

    def after_step(self, loop: TrainLoop) -> None:
        if (loop.iteration % self.every == 0 and loop.iteration < loop.max_iter
                and loop.stopped is None):
            self._write(loop.iteration)

    def after_train(self, loop: TrainLoop) -> None:
        self._write(loop.iteration)
