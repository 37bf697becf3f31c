"""benchmarks/reference/bot_reference.py (plain torch, nothing from reidcore) agrees with the core.

The reference is the yardstick of every recipe, so its evaluator, loss, sampler and schedule
are checked here against reidcore's and against the paper.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "reference" / "bot_reference.py"


@pytest.fixture(scope="module")
def ref():
    if not SCRIPT.exists():
        pytest.skip(f"{SCRIPT} is not in this checkout")
    spec = importlib.util.spec_from_file_location("bot_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_imports_nothing_from_reidcore():
    if not SCRIPT.exists():
        pytest.skip(f"{SCRIPT} is not in this checkout")
    import ast

    modules = set()
    for node in ast.walk(ast.parse(SCRIPT.read_text())):
        if isinstance(node, ast.Import):
            modules |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
    assert modules <= {"__future__", "argparse", "json", "math", "os", "platform", "random", "re",
                       "sys", "time", "pathlib", "numpy", "torch", "torchvision", "h5py"}, modules


@pytest.mark.parametrize("seed", [0, 1])
def test_evaluator_equals_reidcore_market1501(ref, seed):
    from reidcore.evaluation.metrics import evaluate

    rng = np.random.default_rng(seed)
    q_pids, q_cams = rng.integers(1, 8, 30), rng.integers(1, 4, 30)
    g_pids, g_cams = rng.integers(1, 8, 120), rng.integers(1, 4, 120)
    g_pids[:10] = -1  # junk
    dist = rng.random((30, 120))
    mine = ref.evaluate(dist, q_pids, q_cams, g_pids, g_cams)
    core = evaluate(dist, q_pids, g_pids, q_cams, g_cams, "market1501")
    assert mine["num_valid_queries"] == core.num_valid_queries
    assert mine["rank1"] == pytest.approx(core.cmc[0])
    assert mine["rank5"] == pytest.approx(core.cmc[4])
    assert mine["mAP"] == pytest.approx(core.mAP)
    assert mine["mINP"] == pytest.approx(core.mINP)


def test_batch_hard_equals_reid_trinet(ref):
    from reidcore.registry import create_loss

    torch.manual_seed(0)
    f = torch.randn(16, 8)
    y = torch.arange(4).repeat_interleave(4)
    core = create_loss("batch_hard", margin=0.3, metric="euclidean")({"embedding": f}, y)
    assert float(ref.batch_hard(f, y, 0.3)) == pytest.approx(float(core), rel=1e-5)


def test_schedule_is_the_papers_over_the_budget(ref):
    assert ref.lr_factor(0.0) == pytest.approx(0.1)  # 3.5e-5 / 3.5e-4
    assert ref.lr_factor(5 / 120) == pytest.approx(0.55)
    assert ref.lr_factor(10 / 120) == 1.0 and ref.lr_factor(39.9 / 120) == 1.0
    assert ref.lr_factor(40 / 120) == pytest.approx(0.1)
    assert ref.lr_factor(70 / 120) == pytest.approx(0.01)


def test_pk_batches(ref):
    labels = [0] * 6 + [1] * 2 + [2] * 5 + [3] * 4
    batches = ref.pk_batches(labels, 3, 4, random.Random(0))
    for _ in range(20):
        batch = next(batches)
        assert len(batch) == 12
        pids = [labels[i] for i in batch]
        assert len(set(pids)) == 3 and all(pids.count(p) == 4 for p in set(pids))
