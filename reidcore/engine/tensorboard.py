"""TensorBoard event files in the experiment folder (``tensorboard --logdir EXPERIMENT``).

TensorBoard is optional (``pip install 'reidcore[tensorboard]'``). Without it,
:func:`open_writer` logs one line saying that TensorBoard logging is off and returns a
writer whose methods do nothing, so training never depends on it.

Tags written:

* training, every iteration: ``train/<stat>`` for every stat the criterion returns
  (``train/loss``, ``train/loss/triplet``, ``train/triplet/active_fraction``, ...) and
  ``train/lr``;
* training, every ``log_every`` iterations: ``train/images_per_second`` and the histograms
  ``train/embedding`` (the batch's embedding values) and ``train/embedding_norm``;
* after evaluation (:func:`log_report`): ``eval/rank1``, ``eval/rank5``, ``eval/rank10``,
  ``eval/rank20``, ``eval/mAP`` at the last training iteration, and the untrained network's
  ``eval/...`` at step 0 when the run evaluated it (``--eval-untrained``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("reidcore")

EXTRA_HINT = "pip install 'reidcore[tensorboard]'"
EVAL_KEYS = ("rank1", "rank5", "rank10", "rank20", "mAP")


class NullWriter:
    """A writer that drops everything (TensorBoard missing or disabled)."""

    enabled = False

    def scalars(self, step: int, values: Mapping[str, float], prefix: str = "") -> None:
        """Ignored."""

    def histogram(self, tag: str, values: Any, step: int) -> None:
        """Ignored."""

    def close(self) -> None:
        """Nothing to close."""


class Writer(NullWriter):
    """A thin wrapper of ``torch.utils.tensorboard.SummaryWriter``.

    Args:
        summary_writer: the open ``SummaryWriter``.
    """

    enabled = True

    def __init__(self, summary_writer: Any):
        self._w = summary_writer

    def scalars(self, step: int, values: Mapping[str, float], prefix: str = "") -> None:
        """Write each ``values[name]`` as scalar ``prefix + name`` at ``step``."""
        for name, value in values.items():
            self._w.add_scalar(f"{prefix}{name}", float(value), step)

    def histogram(self, tag: str, values: Any, step: int) -> None:
        """Write a histogram of ``values`` (a tensor or array of any shape) at ``step``."""
        self._w.add_histogram(tag, values, step)

    def close(self) -> None:
        """Flush the events to disk and close the file."""
        self._w.close()


def open_writer(exp_dir: Path, purge_step: int | None = None, *, enabled: bool = True,
                quiet: bool = False) -> NullWriter:
    """A :class:`Writer` of event files in ``exp_dir``, or a :class:`NullWriter`.

    Args:
        exp_dir: the experiment folder (the event files go directly into it).
        purge_step: when resuming, the checkpoint's iteration: events of a previous
            attempt at or after it are hidden by TensorBoard, so curves do not overlap.
        enabled: ``False`` gives a :class:`NullWriter` (``--no-tensorboard``).
        quiet: do not log the "TensorBoard logging is off" line.
    """
    if not enabled:
        return NullWriter()
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch raises ImportError when the tensorboard package is missing
        if not quiet:
            log.info("TensorBoard logging is off: the tensorboard package is not installed "
                     "(%s)", EXTRA_HINT)
        return NullWriter()
    return Writer(SummaryWriter(log_dir=str(exp_dir), purge_step=purge_step))


def log_report(exp_dir: Path, report: Mapping[str, Any], *, enabled: bool = True) -> None:
    """Write a run's evaluation (``report.json`` content) as ``eval/...`` scalars.

    The trained network's rank-1/5/10/20 and mAP go at step ``report["train"]["iteration"]``,
    the untrained network's (``report["untrained"]``, when present) at step 0. Does nothing
    when TensorBoard is not installed (training already said so) or ``enabled`` is false.
    """
    writer = open_writer(Path(exp_dir), enabled=enabled, quiet=True)
    try:
        step = int(report.get("train", {}).get("iteration", 0))
        for key, at in (("untrained", 0), (None, step)):
            source = report.get(key) if key else report
            if isinstance(source, Mapping):
                writer.scalars(at, {k: source[k] for k in EVAL_KEYS if k in source}, "eval/")
    finally:
        writer.close()
