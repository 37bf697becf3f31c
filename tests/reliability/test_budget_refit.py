"""--fit-schedule-to-budget re-fits once from the real iterations' speed (budget.RefitHook).

Before: the schedule was fitted from 5 timed iterations only; on the Market-1501 holdout a
dcnn run timed under a neighbour's start-up (0.91 s per iteration, then 0.49 s) used half its
15-minute budget, and a bot run timed 1.07 s, ran 1.18 s and was stopped at 750 of 808.
"""

from __future__ import annotations

import json

import pytest
import torch
from stop_after import ORIGINAL_AFTER_STEP, sigterm_after
from test_run import tiny_args

from reidcore.cli import main
from reidcore.engine import budget, hooks

FLAGS = ("--iterations", "100", "--decay-start-iteration", "50", "--warmup-iterations", "10",
         "--no-tensorboard", "--max-train-minutes", "60", "--fit-schedule-to-budget",
         "--checkpoint-every", "1000")


@pytest.fixture
def fits(monkeypatch):
    """budget.fitted_iterations answers 40 (the first fit), then ``fits.left`` (the re-fit)."""
    calls = []

    def fitted(total, spent, per_iteration):
        calls.append((total, spent, per_iteration))
        return 40 if len(calls) == 1 else fits.left

    fits = type("Fits", (), {"calls": calls, "left": 20})
    monkeypatch.setattr(budget, "fitted_iterations", fitted)
    return fits


def _model(exp, iteration):
    path = exp / "checkpoints" / f"checkpoint-{iteration:07d}.pt"
    return torch.load(path, weights_only=False)["model"]


def test_refit_rescales_records_and_resumes_exactly(tiny_plugin, tiny_data, tmp_path, fits,
                                                    monkeypatch):
    whole = tmp_path / "whole"
    assert main(tiny_args(tiny_data, whole, *FLAGS)) == 0
    at = max(budget.REFIT_MIN_STEPS, 2)  # ceil(5 % of 40) = 2 < REFIT_MIN_STEPS
    assert len(fits.calls) == 2 and fits.calls[1][0] == 3600 and fits.calls[1][2] > 0
    record = json.loads((whole / "schedule.json").read_text())
    assert {k: record[k] for k in budget.FIELDS} == {  # 100 planned → at + 20
        "iterations": at + 20, "decay_start_iteration": 15, "milestones": [],
        "warmup_iterations": 3}
    assert record["refit"]["iteration"] == at and record["refit"]["first"]["iterations"] == 40
    assert record["planned"]["iterations"] == 100
    report = json.loads((whole / "report.json").read_text())
    assert report["train"]["iteration"] == report["train"]["iterations"] == at + 20
    assert "schedule re-fit at iteration 10 to 30 iterations (fitted 40)" in (
        whole / "train.log").read_text()

    # stopped in the re-fit's own iteration, then resumed: the learning rate the re-fit set
    # for the next step is the one a resume computes from the recorded schedule
    split = tmp_path / "split"
    fits.calls.clear()
    sigterm_after(monkeypatch, at)
    assert main(tiny_args(tiny_data, split, *FLAGS)) == 143
    monkeypatch.setattr(hooks.StopHook, "after_step", ORIGINAL_AFTER_STEP)
    assert main(["run", "--resume", "--experiment", str(split)]) == 0
    assert len(fits.calls) == 2  # the resumed run timed nothing
    a, b = _model(whole, at + 20), _model(split, at + 20)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_resumed_run_never_refits(tiny_plugin, tiny_data, tmp_path, fits, monkeypatch):
    exp = tmp_path / "exp"
    sigterm_after(monkeypatch, 3)
    assert main(tiny_args(tiny_data, exp, *FLAGS)) == 143
    monkeypatch.setattr(hooks.StopHook, "after_step", ORIGINAL_AFTER_STEP)
    assert main(["run", "--resume", "--experiment", str(exp)]) == 0
    assert len(fits.calls) == 1
    record = json.loads((exp / "schedule.json").read_text())
    assert record["iterations"] == 40 and "refit" not in record
    assert json.loads((exp / "report.json").read_text())["train"]["iteration"] == 40


def test_refit_within_tolerance_keeps_the_schedule(tiny_plugin, tiny_data, tmp_path, fits):
    exp = tmp_path / "exp"
    fits.left = 40 - budget.REFIT_MIN_STEPS + 1  # 41: within 3 % of 40
    assert main(tiny_args(tiny_data, exp, *FLAGS)) == 0
    assert len(fits.calls) == 2
    record = json.loads((exp / "schedule.json").read_text())
    assert record["iterations"] == 40 and "refit" not in record
    assert "stay (within 3 % of the fit)" in (exp / "train.log").read_text()

