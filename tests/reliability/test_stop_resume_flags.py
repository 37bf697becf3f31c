"""SIGTERM in the last iteration, optimizer flags on --resume, --fit-schedule-to-budget.

Before: a SIGTERM in the last iteration was swallowed (the run embedded, evaluated and
exited 0); ``--lr``/``--weight-decay``/``--momentum`` given with ``--resume`` were recorded
in args.json but silently ignored (the optimizer's state won); a budgeted run stopped
mid-schedule.
"""

from __future__ import annotations

import json

import torch
from stop_after import ORIGINAL_AFTER_STEP, sigterm_after
from test_run import tiny_args

from reidcore.cli import main
from reidcore.engine import budget, hooks


def _state(exp, iteration):
    return torch.load(exp / "checkpoints" / f"checkpoint-{iteration:07d}.pt", weights_only=False)


def test_sigterm_in_the_last_iteration_is_honoured(tiny_plugin, tiny_data, tmp_path, monkeypatch,
                                                   capsys):
    exp = tmp_path / "exp"
    sigterm_after(monkeypatch, 4)
    assert main(tiny_args(tiny_data, exp, "--iterations", "4", "--no-tensorboard")) == 143
    assert "--resume --experiment" in (exp / "train.log").read_text()
    assert not (exp / "report.json").exists() and _state(exp, 4)["iteration"] == 4
    monkeypatch.undo()
    assert main(["run", "--resume", "--experiment", str(exp)]) == 0  # embeds and evaluates
    assert json.loads((exp / "report.json").read_text())["train"]["iteration"] == 4


def test_optimizer_flags_on_resume_are_applied_and_logged(tiny_plugin, tiny_data, tmp_path,
                                                          monkeypatch):
    exp = tmp_path / "exp"
    sigterm_after(monkeypatch, 2)
    assert main(tiny_args(tiny_data, exp, "--iterations", "4", "--optimizer", "sgd",
                          "--schedule", "constant", "--no-tensorboard")) == 143
    monkeypatch.undo()
    assert main(["train", "--resume", "--experiment", str(exp), "--lr", "0.05",
                 "--weight-decay", "0.001", "--momentum", "0.5"]) == 0
    log = (exp / "train.log").read_text()
    for change in ("group 0 lr 0.01 -> 0.05", "group 0 weight_decay 0 -> 0.001",
                   "group 0 momentum 0.9 -> 0.5"):
        assert f"resume: {change} (applied to the restored optimizer)" in log
    group = _state(exp, 4)["optimizer"]["param_groups"][0]
    assert (group["lr"], group["weight_decay"], group["momentum"]) == (0.05, 0.001, 0.5)


def test_optimizer_change_on_resume_is_refused(tiny_plugin, tiny_data, tmp_path, monkeypatch,
                                               capsys):
    exp = tmp_path / "exp"
    sigterm_after(monkeypatch, 1)
    assert main(tiny_args(tiny_data, exp, "--iterations", "3", "--no-tensorboard")) == 143
    monkeypatch.undo()
    assert main(["train", "--resume", "--experiment", str(exp), "--optimizer", "sgd"]) == 2
    assert "--optimizer sgd cannot continue the adam state" in capsys.readouterr().err


def test_fit_schedule_to_budget_scales_records_and_resumes(tiny_plugin, tiny_data, tmp_path,
                                                           monkeypatch):
    timed = []
    monkeypatch.setattr(budget, "fitted_iterations",
                        lambda total, spent, per_it: timed.append((total, per_it)) or 6)
    flags = ("--iterations", "100", "--decay-start-iteration", "50", "--warmup-iterations", "10",
             "--no-tensorboard", "--max-train-minutes", "60")
    exp = tmp_path / "fit"
    sigterm_after(monkeypatch, 3)
    assert main(tiny_args(tiny_data, exp, *flags, "--fit-schedule-to-budget")) == 143
    assert timed and timed[0][0] == 3600 and timed[0][1] > 0
    record = json.loads((exp / "schedule.json").read_text())
    assert {k: record[k] for k in budget.FIELDS} == {
        "iterations": 6, "decay_start_iteration": 3, "milestones": [], "warmup_iterations": 1}
    assert record["planned"]["iterations"] == 100 and record["budget_fraction"] == budget.SAFETY
    monkeypatch.setattr(hooks.StopHook, "after_step", ORIGINAL_AFTER_STEP)
    assert main(["run", "--resume", "--experiment", str(exp)]) == 0
    assert len(timed) == 1  # the resumed run read the record instead of timing again
    report = json.loads((exp / "report.json").read_text())
    assert report["train"]["iteration"] == 6 and report["train"]["iterations"] == 6
    assert "using the fitted schedule recorded" in (exp / "train.log").read_text()
    # the timed iterations were thrown away: the same as a plain run of the fitted schedule
    plain = tmp_path / "plain"
    monkeypatch.undo()
    assert main(tiny_args(tiny_data, plain, "--iterations", "6", "--decay-start-iteration", "3",
                          "--warmup-iterations", "1", "--no-tensorboard")) == 0
    a, b = _state(exp, 6)["model"], _state(plain, 6)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fit_schedule_times_real_iterations(tiny_plugin, tiny_data, tmp_path, monkeypatch):
    """The timing trains WARMUP untimed and TIMED timed steps. Before: the second call of
    the finished timing loop trained nothing, so a step "took" ~0 s and a 15-minute budget
    became millions of iterations."""
    from reidcore.engine.trainer import Trainer

    steps, timed = [], []
    original = Trainer.run_step

    def run_step(self, batch):
        steps.append(self.iteration)
        return original(self, batch)

    monkeypatch.setattr(Trainer, "run_step", run_step)
    monkeypatch.setattr(budget, "fitted_iterations",
                        lambda total, spent, per_it: timed.append(per_it) or 2)
    assert main(tiny_args(tiny_data, tmp_path / "fit", "--iterations", "10", "--no-tensorboard",
                          "--max-train-minutes", "60", "--fit-schedule-to-budget")) == 0
    assert len(steps) == budget.WARMUP + budget.TIMED + 2
    assert steps[:budget.WARMUP + budget.TIMED] == list(range(budget.WARMUP + budget.TIMED))


def test_fit_schedule_needs_a_budget(tiny_plugin, tiny_data, tmp_path, capsys):
    assert main(tiny_args(tiny_data, tmp_path / "e", "--iterations", "3",
                          "--fit-schedule-to-budget")) == 2
    assert "--fit-schedule-to-budget needs --max-train-minutes" in capsys.readouterr().err


def test_report_records_the_schedule_length(tiny_plugin, tiny_data, tmp_path):
    exp = tmp_path / "exp"
    assert main(tiny_args(tiny_data, exp, "--iterations", "2")) == 0
    assert json.loads((exp / "report.json").read_text())["train"]["iterations"] == 2
