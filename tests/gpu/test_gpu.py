"""The trainer's CUDA paths: AMP (bf16 / fp16 + grad scaler), channels_last, fused optimizers,
torch.compile, and DDP with one process on CUDA (NCCL). Skipped without CUDA.

Run them with ``nox -s gpu`` (or ``pytest tests/gpu``) on a machine with a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reidcore.cli import main

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (torch.cuda.is_available() is False)"),
]

TESTS = Path(__file__).resolve().parent.parent
TINY = ["--height", "32", "--width", "16", "--batch-p", "3", "--batch-k", "2", "--pad", "2",
        "--workers", "0", "--log-every", "1", "--pretrained", "none", "--lr", "0.01",
        "--embed-batch-size", "16", "--no-tensorboard", "--device", "cuda"]


def train_args(data: Path, exp: Path, *extra: str) -> list[str]:
    return ["train", "tiny", "--dataset", "tiny", "--data", str(data), "--experiment", str(exp),
            *TINY, *extra]


def last_checkpoint(exp: Path) -> dict:
    path = sorted((exp / "checkpoints").glob("checkpoint-*.pt"))[-1]
    return torch.load(path, weights_only=False, map_location="cpu")


def test_amp_step_bf16_and_fused_optimizer(tiny_plugin, tiny_data, tmp_path):
    from reidcore.engine.device import amp_dtype

    exp = tmp_path / "exp"
    assert main(train_args(tiny_data, exp, "--iterations", "3", "--amp")) == 0
    state = last_checkpoint(exp)
    assert state["iteration"] == 3
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert state["optimizer"]["param_groups"][0]["fused"] is True
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    assert amp_dtype(torch.device("cuda"), True) == expected


def test_amp_fp16_uses_the_grad_scaler(tiny_plugin, tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    exp = tmp_path / "exp"
    assert main(train_args(tiny_data, exp, "--iterations", "3", "--amp")) == 0
    state = last_checkpoint(exp)
    assert state["scaler"] and state["scaler"]["scale"] > 0  # an enabled GradScaler
    assert all(torch.isfinite(v).all() for v in state["model"].values())


@pytest.mark.parametrize("channels_last", [True, False])
def test_channels_last_model_and_batches(tiny_plugin, tiny_data, tmp_path, channels_last):
    import tiny_plugin as tp

    from reidcore.engine.trainer import train
    from reidcore.registry import get_recipe, load_dataset

    recipe = get_recipe("tiny")
    cfg = recipe.default_config(dataset="tiny", data=str(tiny_data), height=32, width=16,
                                batch_p=3, batch_k=2, workers=0, pretrained="none",
                                iterations=2, tensorboard=False, progress=False, device="cuda",
                                channels_last=channels_last)
    model = tp.tiny_model()
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(
        (args[0].is_cuda, args[0].is_contiguous(memory_format=torch.channels_last))))
    train(recipe, cfg, load_dataset("tiny", str(tiny_data)), tmp_path / "exp", model=model)
    conv = model.backbone[0].weight
    assert seen and all(on_cuda for on_cuda, _ in seen)
    assert all(cl == channels_last for _, cl in seen)
    assert conv.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_compile_matches_eager(tiny_plugin, tiny_data, tmp_path):
    common = ("--iterations", "3", "--no-amp", "--no-flip", "--pad", "0", "--optimizer", "sgd",
              "--momentum", "0")
    assert main(train_args(tiny_data, tmp_path / "eager", *common)) == 0
    assert main(train_args(tiny_data, tmp_path / "compiled", *common, "--compile")) == 0
    eager, compiled = last_checkpoint(tmp_path / "eager"), last_checkpoint(tmp_path / "compiled")
    for name, value in eager["model"].items():  # state dict keys unchanged by compile
        torch.testing.assert_close(compiled["model"][name], value, rtol=1e-4, atol=1e-5)


RUNNER = """
import sys
sys.path.insert(0, {tests!r})
import tiny_plugin
from reidcore.cli import main
from reidcore.testing import registered_plugin
with registered_plugin(tiny_plugin, "tiny"):
    raise SystemExit(main(sys.argv[1:]))
"""


def test_ddp_one_process_on_cuda(tiny_data, tmp_path):
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER.format(tests=str(TESTS)))
    exp = tmp_path / "exp"
    args = ["run", "tiny", "--dataset", "tiny", "--data", str(tiny_data), "--experiment", str(exp),
            *TINY, "--iterations", "4", "--checkpoint-every", "2", "--gather-embeddings"]
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
         str(runner), *args],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = json.loads((exp / "report.json").read_text())
    assert report["train"]["world_size"] == 1 and report["train"]["device"] == "cuda:0"
    assert report["train"]["iteration"] == 4 and 0 <= report["mAP"] <= 1
    assert "data-parallel on 1 processes (cuda)" in (exp / "train.log").read_text()
