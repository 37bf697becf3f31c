"""Issue 13, the newcomer's path: a staged experiment keeps only what --resume and export need
(the demo left about 1 GB: every stage's checkpoints with Adam state)."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from tiny_plugin import TINY_FLAGS

from reidcore.cli import main
from reidcore.engine import checkpoint

TINY = [*TINY_FLAGS, "--no-tensorboard"]


@pytest.fixture(scope="module")
def plugin(tiny_plugin_module):
    return tiny_plugin_module


@pytest.fixture(scope="module")
def data(tiny_data_module):
    return tiny_data_module


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _run(data, exp, *flags):
    return main(["run", "tiny-staged", "--dataset", "tiny", "--data", str(data), "--experiment",
                 str(exp), *TINY, "--iterations", "3", "--checkpoint-every", "1", *flags])


def test_a_finished_staged_run_keeps_the_final_weights_only(plugin, data, tmp_path, capsys):
    exp = tmp_path / "exp"
    assert _run(data, exp) == 0
    assert _files(exp) == [
        "args.json", "embeddings/gallery.h5", "embeddings/query.h5", "report.json",
        "stages/1-head/args.json", "stages/1-head/outcome.json",
        "stages/2-all/args.json", "stages/2-all/checkpoints/checkpoint-0000003.pt",
        "train.log"]
    assert not (exp / "stages" / "1-head" / "checkpoints").exists()
    outcome = json.loads((exp / "stages" / "1-head" / "outcome.json").read_text())
    assert outcome["iteration"] == 2 and outcome["stopped"] == "done"
    final = torch.load(exp / "stages" / "2-all" / "checkpoints" / "checkpoint-0000003.pt",
                       weights_only=True)
    assert final["weights_only"] and "optimizer" not in final and final["iteration"] == 3
    report = json.loads((exp / "report.json").read_text())
    assert [s["iteration"] for s in report["stages"]] == [2, 3]

    # export and load_trained read the final weights; the report names the same model
    from reidcore.trained import load_trained

    assert load_trained(exp).checkpoint["model_sha256"] == report["checkpoint"]["model_sha256"]
    assert main(["export", "--experiment", str(exp), "--format", "torchscript",
                 "--output", str(tmp_path / "m.pt")]) == 0

    # --resume re-evaluates the same weights without training or new files
    capsys.readouterr()
    files = _files(exp)
    assert main(["run", "--resume", "--experiment", str(exp)]) == 0
    out = capsys.readouterr().out
    assert "finished earlier at iteration 2" in out and "using its final weights" in out
    assert "kept the final weights only" not in out  # nothing left to change
    again = json.loads((exp / "report.json").read_text())
    assert again["checkpoint"]["model_sha256"] == report["checkpoint"]["model_sha256"]
    assert [s["iteration"] for s in again["stages"]] == [2, 3]
    assert _files(exp) == files

    # training further needs the optimizer state that was dropped: refused, nothing changed
    before = (exp / "args.json").read_bytes()
    assert main(["run", "--resume", "--experiment", str(exp), "--iterations", "5"]) != 0
    assert "keeps its final weights only" in capsys.readouterr().err
    assert (exp / "args.json").read_bytes() == before


def test_keep_stage_checkpoints_keeps_everything(plugin, data, tmp_path):
    exp = tmp_path / "exp"
    assert _run(data, exp, "--keep-stage-checkpoints") == 0
    assert [it for it, _ in checkpoint.list_checkpoints(exp / "stages" / "1-head")] == [1, 2]
    assert [it for it, _ in checkpoint.list_checkpoints(exp / "stages" / "2-all")] == [2, 3]
    assert "optimizer" in checkpoint.load_latest(exp / "stages" / "2-all")
    assert not (exp / "stages" / "1-head" / "outcome.json").exists()


def test_interrupted_second_stage_keeps_its_checkpoint_and_resumes(plugin, data, tmp_path,
                                                                   monkeypatch, capsys):
    from reidcore.engine import trainer

    real, calls = trainer.build_train_loader, []

    def loader(*a, **kw):
        calls.append(1)
        batches = real(*a, **kw)
        if len(calls) != 2:  # stage 2-all: SIGTERM after its first batch
            return batches

        def stopped():
            for i, batch in enumerate(batches):
                if i == 1:
                    os.kill(os.getpid(), signal.SIGTERM)
                yield batch
        return stopped()

    monkeypatch.setattr(trainer, "build_train_loader", loader)
    exp = tmp_path / "exp"
    assert _run(data, exp) == 128 + signal.SIGTERM
    assert checkpoint.list_checkpoints(exp / "stages" / "1-head") == []
    assert (exp / "stages" / "1-head" / "outcome.json").is_file()
    kept = checkpoint.list_checkpoints(exp / "stages" / "2-all")
    assert kept and "optimizer" in checkpoint.load_latest(exp / "stages" / "2-all")
    monkeypatch.setattr(trainer, "build_train_loader", real)
    capsys.readouterr()
    assert main(["run", "--resume", "--experiment", str(exp)]) == 0
    assert f"resumed from iteration {kept[-1][0]}" in capsys.readouterr().out
    report = json.loads((exp / "report.json").read_text())
    assert report["status"] == "done" and report["stages"][-1]["iteration"] == 3
    assert [it for it, _ in checkpoint.list_checkpoints(exp / "stages" / "2-all")] == [3]
