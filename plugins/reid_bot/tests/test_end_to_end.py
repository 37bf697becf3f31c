"""``python -m reidcore run bot`` end to end on the generated ``synthetic`` dataset (tiny sizes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch


@pytest.mark.slow
def test_run_bot_on_synthetic_with_center_loss(tmp_path):
    exp = tmp_path / "exp"
    env = {**os.environ, "REIDCORE_CACHE": str(tmp_path / "cache")}
    res = subprocess.run(
        [sys.executable, "-m", "reidcore", "run", "bot", "--dataset", "synthetic",
         "--backbone", "resnet18", "--pretrained", "none", "--height", "64", "--width", "32",
         "--batch-p", "4", "--batch-k", "4", "--iterations", "4", "--warmup-iterations", "2",
         "--milestones", "3", "--center-loss", "--workers", "0", "--no-progress",
         "--no-tensorboard", "--experiment", str(exp)],
        capture_output=True, text=True, timeout=900, env=env,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((exp / "report.json").read_text())
    assert report["recipe"] == "bot" and report["num_valid_queries"] > 0
    assert report["metric"] == "cosine" and report["train"]["iteration"] == 4
    args = json.loads((exp / "args.json").read_text())
    config = args["config"]
    assert config["center_loss"] is True and config["last_stride"] == 1
    log = (exp / "train.log").read_text()
    assert "center/mean_distance" in log and "triplet/active_fraction" in log
    ckpt = sorted((exp / "checkpoints").glob("*.pt"))[-1]
    state = torch.load(ckpt, weights_only=False)
    centers = state["criterion"]["terms.center.centers"]
    assert centers.shape == (state["num_classes"], 512)
    assert "rank-1" in res.stdout
