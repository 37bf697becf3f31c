"""Clean stop on SIGINT/SIGTERM: finish the current batch, save, exit (as triplet-reid does)."""

from __future__ import annotations

import signal
import threading


class GracefulStop:
    """Context manager that turns SIGINT/SIGTERM into a flag checked between batches.

    A second SIGINT while stopping restores Python's default (KeyboardInterrupt).
    Outside the main thread it does nothing (signals can only be caught there).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, _frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        self.signum = signum

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
