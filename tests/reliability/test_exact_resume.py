"""Exact resume (issue 14, finding 2): the same weights (and report) whatever the workers and the
interruptions.

Tiny trinet on the synthetic dataset (resnet18, --pretrained none, 64×32, P×K 4×4) and the
staged pse recipe on synthetic-pose-maps: ``--workers 0`` and ``--workers 2`` train the same
weights, and SIGTERM at random iterations (the last one included) followed by ``--resume``
ends with weights bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path

import pytest
import torch

from reidcore.cli import main
from reidcore.engine import hooks

pytest.importorskip("reid_trinet", reason="needs the reid-trinet plugin")
pytest.importorskip("reid_datasets", reason="needs the reid-datasets plugin")

pytestmark = pytest.mark.slow

TRINET = ["trinet", "--dataset", "synthetic", "--backbone", "resnet18", "--pretrained", "none",
          "--height", "64", "--width", "32", "--batch-p", "4", "--batch-k", "4", "--lr", "1e-3",
          "--iterations", "8", "--decay-start-iteration", "4", "--checkpoint-every", "3",
          "--log-every", "4", "--no-tensorboard", "--erasing-p", "0.5"]
PSE = ["pse", "--dataset", "synthetic-pose-maps", "--backbone", "resnet18", "--pretrained", "none",
       "--height", "64", "--width", "32", "--batch-p", "4", "--batch-k", "4", "--lr", "1e-3",
       "--view-iterations", "3", "--new-layers-iterations", "3", "--iterations", "4",
       "--decay-start-iteration", "2", "--checkpoint-every", "2", "--log-every", "4",
       "--no-tensorboard"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One synthetic dataset (generated on first use) for the module's runs."""
    return tmp_path_factory.mktemp("synthetic-cache")


def _train(args: list[str], exp: Path, cache: Path, *extra: str) -> int:
    return main(["train", *args, "--data", str(cache), "--experiment", str(exp), *extra])


def _sigterm_at(monkeypatch, iterations: set[int]) -> list[int]:
    """Make the process SIGTERM itself after each listed global step (once each)."""
    original, pending, seen = hooks.StopHook.after_step, set(iterations), []

    def after_step(self, loop):
        seen.append(loop.iteration)
        if len(seen) in pending:
            pending.discard(len(seen))
            os.kill(os.getpid(), signal.SIGTERM)
        original(self, loop)

    monkeypatch.setattr(hooks.StopHook, "after_step", after_step)
    return seen


def _final_state(exp: Path) -> dict[str, torch.Tensor]:
    ckpts = sorted(exp.glob("**/checkpoints/checkpoint-*.pt"))
    last = max(ckpts, key=lambda p: (len(p.parts), p.parent.parent.name, p.name))
    return torch.load(last, map_location="cpu", weights_only=False)["model"]


def _assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} of {len(a)} tensors differ, e.g. {differ[:3]}"


def _interrupted(args, exp, cache, monkeypatch, stops: set[int], workers: str) -> None:
    _sigterm_at(monkeypatch, stops)
    code = _train(args, exp, cache, "--workers", workers)
    resumes = 0
    while code == 128 + signal.SIGTERM:
        resumes += 1
        code = main(["train", "--resume", "--experiment", str(exp)])
    assert code == 0 and resumes == len(stops)


def test_trinet_workers_and_sigterm_resume_give_identical_weights(cache, tmp_path, monkeypatch):
    assert _train(TRINET, tmp_path / "w0", cache, "--workers", "0") == 0
    reference = _final_state(tmp_path / "w0")
    assert _train(TRINET, tmp_path / "w2", cache, "--workers", "2") == 0
    _assert_identical(reference, _final_state(tmp_path / "w2"))
    rng = random.Random(14)
    stops = set(rng.sample(range(1, 8), 5)) | {8}  # five random iterations and the last one
    _interrupted(TRINET, tmp_path / "resumed", cache, monkeypatch, stops, workers="2")
    _assert_identical(reference, _final_state(tmp_path / "resumed"))


def test_trinet_run_report_is_identical_after_sigterm_resume(cache, tmp_path, monkeypatch):
    """``run`` (train, embed, evaluate): SIGTERM at a random iteration and in the last one,
    resumed each time, ends with the uninterrupted run's weights and report metrics."""
    def run(exp, *extra):
        return main(["run", *TRINET, "--data", str(cache), "--experiment", str(exp),
                     "--workers", "0", *extra])

    assert run(tmp_path / "plain") == 0
    _sigterm_at(monkeypatch, {random.Random(3).randint(1, 7), 8})
    code, resumes = run(tmp_path / "resumed"), 0
    while code == 128 + signal.SIGTERM:
        resumes += 1
        code = main(["run", "--resume", "--experiment", str(tmp_path / "resumed")])
    assert code == 0 and resumes == 2
    _assert_identical(_final_state(tmp_path / "plain"), _final_state(tmp_path / "resumed"))
    reports = [json.loads((tmp_path / e / "report.json").read_text()) for e in ("plain", "resumed")]
    for key in ("rank1", "rank5", "mAP", "mINP", "num_valid_queries"):
        assert reports[0][key] == reports[1][key], key


def test_staged_pse_sigterm_resume_gives_identical_weights(cache, tmp_path, monkeypatch):
    pytest.importorskip("reid_pse", reason="needs the reid-pse plugin")
    assert _train(PSE, tmp_path / "plain", cache, "--workers", "0") == 0
    reference = _final_state(tmp_path / "plain")
    rng = random.Random(5)
    stops = {rng.randint(1, 3), rng.randint(4, 6), rng.randint(7, 9), 10}  # each stage, the last
    _interrupted(PSE, tmp_path / "resumed", cache, monkeypatch, stops, workers="2")
    _assert_identical(reference, _final_state(tmp_path / "resumed"))
