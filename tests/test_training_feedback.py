"""Training feedback: TensorBoard event files (scalars, histograms, evaluation) and the progress bar."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import tiny_plugin
from test_run import tiny_args

from reidcore.cli import main
from reidcore.hookspecs import hookimpl
from reidcore.testing import registered_plugin


class StatsRecipe(tiny_plugin.TinyRecipe):
    """The tiny recipe with a criterion that also reports sub-losses and a fraction."""

    name = "tiny-stats"

    def build_criterion(self, cfg):
        base = super().build_criterion(cfg)

        class WithStats(type(base)):
            def forward(self, outputs, pids):
                loss, stats = super().forward(outputs, pids)
                return loss, {**stats, "loss/triplet": stats["loss"],
                              "triplet/active_fraction": 0.5}

        return WithStats()


def _stats_plugin() -> types.ModuleType:
    module = types.ModuleType("tiny_stats_plugin")
    module.reid_recipes = hookimpl(lambda: {"tiny-stats": StatsRecipe})
    return module


def _events(exp: Path):
    pytest.importorskip("tensorboard", reason="needs the tensorboard extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(exp), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def test_tensorboard_scalars_histograms_and_evaluation(tiny_plugin, tiny_data, tmp_path, capsys):
    pytest.importorskip("tensorboard", reason="needs the tensorboard extra")
    exp = tmp_path / "exp"
    with registered_plugin(_stats_plugin(), "tiny-stats"):
        args = tiny_args(tiny_data, exp, "--iterations", "4", "--log-every", "2",
                         "--eval-untrained")
        args[1] = "tiny-stats"
        assert main(args) == 0
    assert list(exp.glob("events.out.tfevents.*")), "no event file in the experiment folder"
    acc = _events(exp)
    tags = acc.Tags()
    for tag in ("train/loss", "train/loss/triplet", "train/triplet/active_fraction", "train/lr",
                "train/images_per_second", "eval/rank1", "eval/rank5", "eval/mAP"):
        assert tag in tags["scalars"], (tag, tags["scalars"])
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [e.step for e in acc.Scalars("train/images_per_second")] == [2, 4]
    assert acc.Scalars("train/triplet/active_fraction")[0].value == pytest.approx(0.5)
    assert acc.Scalars("train/lr")[0].value == pytest.approx(0.01)
    # the untrained network at step 0, the trained one at the last iteration
    import json

    report = json.loads((exp / "report.json").read_text())
    rank1 = {e.step: e.value for e in acc.Scalars("eval/rank1")}
    assert rank1 == pytest.approx({0: report["untrained"]["rank1"], 4: report["rank1"]})
    assert acc.Scalars("eval/mAP")[-1].value == pytest.approx(report["mAP"])
    assert {"train/embedding", "train/embedding_norm"} <= set(tags["histograms"])
    assert [e.step for e in acc.Histograms("train/embedding")] == [2, 4]


def test_training_without_tensorboard_logs_one_line(tiny_plugin, tiny_data, tmp_path,
                                                    monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    exp = tmp_path / "exp"
    assert main(tiny_args(tiny_data, exp, "--iterations", "3")) == 0
    log = (exp / "train.log").read_text()
    assert log.count("TensorBoard logging is off") == 1
    assert "reidcore[tensorboard]" in log and "rank-1" in capsys.readouterr().out
    assert not list(exp.glob("events.out.tfevents.*"))


def test_no_tensorboard_flag(tiny_plugin, tiny_data, tmp_path):
    exp = tmp_path / "exp"
    assert main(tiny_args(tiny_data, exp, "--iterations", "2", "--no-tensorboard")) == 0
    assert not list(exp.glob("events.out.tfevents.*"))
    assert "TensorBoard logging is off" not in (exp / "train.log").read_text()


def test_progress_bar_on_a_terminal_keeps_log_lines(tiny_plugin, tiny_data, tmp_path,
                                                    monkeypatch, capsys):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    exp = tmp_path / "exp"
    assert main(tiny_args(tiny_data, exp, "--iterations", "3", "--no-tensorboard")) == 0
    out = capsys.readouterr().out
    assert "train:" in out and "img/s" in out and ("it/s" in out or "s/it" in out)
    assert (exp / "train.log").read_text().count("iter ") == 3
    assert "train:" not in (exp / "train.log").read_text()


def test_no_progress_bar_when_not_a_terminal_or_disabled(tiny_plugin, tiny_data, tmp_path,
                                                         monkeypatch, capsys):
    exp = tmp_path / "exp"
    assert main(tiny_args(tiny_data, exp, "--iterations", "2", "--no-tensorboard")) == 0
    assert "train:" not in capsys.readouterr().out  # pytest's stdout is not a terminal
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    exp2 = tmp_path / "exp2"
    assert main(tiny_args(tiny_data, exp2, "--iterations", "2", "--no-progress",
                          "--no-tensorboard")) == 0
    assert "train:" not in capsys.readouterr().out
