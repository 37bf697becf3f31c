"""Issue 13: a run prints a line at least every 30 s even without a progress bar."""

from __future__ import annotations

import logging
import threading

import pytest

from reidcore.heartbeat import Heartbeat


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.got = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        if "still busy" in record.getMessage():
            self.got.set()


@pytest.fixture
def lines():
    logger = logging.getLogger("reidcore")
    level, handler = logger.level, _Lines()
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_silence_brings_a_line_naming_the_activity(lines):
    with Heartbeat(lambda: "stage 2-all", every=0.05, tick=0.01) as beat:
        assert lines.got.wait(10)
    assert any(line.startswith("... still busy with stage 2-all") for line in lines.lines)
    assert beat not in logging.getLogger("reidcore").handlers  # detached on exit


def test_it_reattaches_when_the_handlers_are_replaced(lines):
    logger = logging.getLogger("reidcore")
    with Heartbeat(lambda: "training", every=0.05, tick=0.01) as beat:
        logger.removeHandler(beat)  # as experiment.setup_logging does when train.log opens
        assert lines.got.wait(10)
    assert beat not in logger.handlers


def test_disabled_starts_no_thread_and_bad_interval_is_refused(lines):
    with Heartbeat(lambda: "x", every=0.01, enabled=False) as beat:
        assert beat._thread is None and beat not in logging.getLogger("reidcore").handlers
    with pytest.raises(ValueError, match="positive"):
        Heartbeat(lambda: "x", every=0)
