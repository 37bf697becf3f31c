from __future__ import annotations

import math

import pytest

from reidcore.engine.schedules import lr_factor


def test_trinet_schedule_matches_paper():
    kw = dict(schedule="trinet", iterations=25000, decay_start_iteration=15000)
    assert lr_factor(0, **kw) == 1.0
    assert lr_factor(14999, **kw) == 1.0
    assert lr_factor(15000, **kw) == 1.0
    assert math.isclose(lr_factor(20000, **kw), 0.001 ** 0.5)
    assert math.isclose(lr_factor(25000, **kw), 0.001)


def test_multistep_and_warmup():
    kw = dict(schedule="multistep", iterations=100, milestones=(10, 20), gamma=0.1)
    assert [lr_factor(i, **kw) for i in (0, 9, 10, 19, 20)] == pytest.approx([1, 1, .1, .1, .01])
    w = dict(schedule="constant", iterations=100, warmup_iterations=10, warmup_factor=0.1)
    assert lr_factor(0, **w) == pytest.approx(0.1)
    assert lr_factor(5, **w) == pytest.approx(0.55)
    assert lr_factor(10, **w) == 1.0


def test_unknown_schedule():
    with pytest.raises(ValueError, match="unknown schedule 'cosinus'"):
        lr_factor(0, schedule="cosinus", iterations=10)
