"""A line on the log when a run has been silent too long (a slow CPU, a long stage).

Without a progress bar (``--no-progress`` or output to a file) training prints one line every
``--log-every`` iterations and embedding prints nothing, so on 2 shared CPU cores a run can be
silent for minutes and look hung. :class:`Heartbeat` watches the ``reidcore`` logger from a
daemon thread and, after ``every`` seconds without a record, logs what the run is doing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("reidcore")


class Heartbeat(logging.Handler):
    """Context manager: log ``"... still busy with <what()> (N s since the last line)"`` whenever the
    ``reidcore`` logger has been silent for ``every`` seconds.

    Args:
        what: returns the current activity (e.g. ``"training stage 2-all"``); called from
            the watcher thread.
        every: seconds of silence (> 0) before a line; the next follows after as many again.
        enabled: False makes the context manager do nothing (e.g. a progress bar is shown).

    The watcher re-attaches itself when the logger's handlers are replaced (the experiment's
    ``train.log`` is opened after the run started). Raises ValueError for ``every <= 0``.
    """

    def __init__(self, what: Callable[[], str], every: float = 25.0, enabled: bool = True,
                 tick: float = 1.0) -> None:
        super().__init__(level=logging.DEBUG)
        if every <= 0:
            raise ValueError(f"heartbeat interval must be positive seconds, got {every}")
        self.what, self.every, self.enabled, self.tick = what, float(every), enabled, tick
        self.last = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.last = time.monotonic()

    def _watch(self) -> None:
        while not self._stop.wait(self.tick):
            if self not in log.handlers:
                log.addHandler(self)
            silent = time.monotonic() - self.last
            if silent >= self.every:
                log.info("... still busy with %s (%.0f s since the last line)", self.what(), silent)

    def __enter__(self) -> Heartbeat:
        if self.enabled:
            self.last = time.monotonic()
            log.addHandler(self)
            self._thread = threading.Thread(target=self._watch, name="reidcore-heartbeat",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        log.removeHandler(self)
