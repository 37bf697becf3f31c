"""SIGINT/SIGTERM outside the training loop (embedding, evaluation): stop at once, cleanly.

Training stops between batches (:class:`reidcore.engine.signals.GracefulStop`). Embedding
and evaluation write their files atomically and can simply be run again, so there a signal
raises :class:`Interrupted`, the command prints one line and exits with ``128 + signal``;
``run --resume`` then repeats that phase.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from reidcore.errors import ReidError


class Interrupted(ReidError):
    """A SIGINT/SIGTERM arrived during ``phase``; ``exit_code`` is ``128 + signum``."""

    def __init__(self, signum: int, phase: str):
        self.signum, self.phase = int(signum), phase
        super().__init__(f"stopped by {signal.Signals(self.signum).name} during {phase}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextlib.contextmanager
def interruptible(phase: str) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` (main thread only;
    elsewhere the block runs unchanged). Previous handlers are restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, _frame):
        raise Interrupted(signum, phase)

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
