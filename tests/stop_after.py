"""Test helper: a SIGTERM delivered after a chosen training iteration (tests import it)."""

from __future__ import annotations

import os
import signal

from reidcore.engine import hooks

ORIGINAL_AFTER_STEP = hooks.StopHook.after_step


def sigterm_after(monkeypatch, iteration: int) -> None:
    """SIGTERM this process after training iteration ``iteration`` (before StopHook looks);
    ``monkeypatch.setattr(hooks.StopHook, "after_step", ORIGINAL_AFTER_STEP)`` disarms it."""
    def after_step(self, loop):
        if loop.iteration == iteration:
            os.kill(os.getpid(), signal.SIGTERM)
        ORIGINAL_AFTER_STEP(self, loop)

    monkeypatch.setattr(hooks.StopHook, "after_step", after_step)
