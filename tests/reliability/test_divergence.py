"""Divergence (issue 14, finding 4): NaN and exploding losses stop the run; the named checkpoint is good.

Before: after a NaN the checkpoint the message called "the last good checkpoint" held weights
of 6e35 that gave the NaN again on resume, and Adam with ``--lr 1e6`` ran to the end with a
loss near 1e15 and exited 0 with a report.
"""

from __future__ import annotations

import json
import re

import pytest
import torch
from test_run import tiny_args

from reidcore.cli import main


def _failed(exp) -> bool:
    """report.json marks the run failed and reports no trained result (issue 14)."""
    report = json.loads((exp / "report.json").read_text())
    return report["status"] == "failed" and "mAP" not in report and report["error"].startswith("TrainingDivergedError")


def _finite(path) -> bool:
    state = torch.load(path, map_location="cpu", weights_only=False)
    return all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_nan_names_a_finite_checkpoint_and_resume_from_it_trains(tiny_plugin, tiny_data,
                                                                 tmp_path, capsys):
    exp = tmp_path / "exp"
    code = main(tiny_args(tiny_data, exp, "--iterations", "12", "--checkpoint-every", "2",
                          "--nan-at-iteration", "7", "--no-tensorboard"))
    err = capsys.readouterr().err
    assert code == 2 and "loss became nan at iteration 7" in err, err
    named = re.search(r"(\S+checkpoint-\d+\.pt) \(kept\)", err).group(1)
    assert named.endswith("checkpoint-0000006.pt") and _finite(named)
    assert _failed(exp)
    # the named checkpoint is the one --resume continues from; with the fault removed it finishes
    assert main(["run", "--resume", "--experiment", str(exp), "--nan-at-iteration", "-1"]) == 0
    report = json.loads((exp / "report.json").read_text())
    assert report["train"]["iteration"] == 12
    assert "resumed from iteration 6" in (exp / "train.log").read_text()


def test_adam_huge_lr_stops_as_an_explosion(tiny_plugin, tiny_data, tmp_path, capsys):
    exp = tmp_path / "exp"
    code = main(tiny_args(tiny_data, exp, "--iterations", "40", "--checkpoint-every", "1",
                          "--optimizer", "adam", "--lr", "1e6", "--no-tensorboard"))
    err = capsys.readouterr().err
    assert code == 2, err
    # iteration 0's loss is normal; Adam's first step (size ~lr) makes iteration 1's huge
    assert "exploded at iteration 1" in err and "no checkpoint was written before that" in err
    assert _failed(exp)
    # checkpoint 1 holds the exploded weights: renamed aside, so --resume cannot pick it up
    assert not list((exp / "checkpoints").glob("checkpoint-*.pt"))
    assert [p.name for p in (exp / "checkpoints").glob("*.diverged")] == [
        "checkpoint-0000001.pt.diverged"]


def test_divergence_factor_zero_still_stops_on_nan(tiny_plugin, tiny_data, tmp_path, capsys):
    code = main(tiny_args(tiny_data, tmp_path / "exp", "--iterations", "6",
                          "--nan-at-iteration", "2", "--divergence-factor", "0"))
    assert code == 2 and "loss became nan at iteration 2" in capsys.readouterr().err


@pytest.mark.parametrize("factor", ["0.5", "-1"])
def test_bad_divergence_factor_is_refused(tiny_plugin, tiny_data, tmp_path, capsys, factor):
    code = main(tiny_args(tiny_data, tmp_path / "exp", "--iterations", "2",
                          "--divergence-factor", factor))
    assert code == 2 and "--divergence-factor" in capsys.readouterr().err
