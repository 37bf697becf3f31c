"""Data-parallel training: the distributed P×K sampler, and a 2-process torchrun job on Gloo.

One ``torchrun --nproc_per_node 2`` job (CPU, Gloo) trains the tiny model twice with an
uneven split of the global P×K batch (P=3 identities over 2 ranks: 4 + 2 images):

* ``run tiny-record --gather-embeddings``: batch-hard mining over the all-gathered batch,
  then sharded embedding, evaluation and report;
* ``train tiny-center``: a per-sample mean loss with trainable centres, no gathering
  (each rank's loss weighted by its share of the batch; loss parameters averaged).

Both are compared with single-process training on the same global batches (SGD without
momentum, so the weights are linear in the gradients and rounding differences stay at
float32 precision; no augmentation and no BatchNorm, so nothing but the data-parallel
arithmetic differs). Single-process resume of the 2-process experiment is checked too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from reidcore.cli import main
from reidcore.data.samplers import DistributedPKSampler, PKSampler, shard_range
from reidcore.engine import distributed

HERE = Path(__file__).parent
P, K, ITERATIONS = 3, 2, 4


# ---------------------------------------------------------------------------- sampler
def test_shard_range_covers_in_order_with_first_ranks_larger():
    for n in range(0, 12):
        for world in range(1, 5):
            bounds = [shard_range(n, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
            sizes = [b - a for a, b in bounds]
            assert sizes == sorted(sizes, reverse=True) and max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError, match="rank"):
        shard_range(5, 2, 2)


@pytest.mark.parametrize("p,world", [(4, 2), (5, 2), (7, 3), (3, 3)])
def test_distributed_sampler_splits_the_global_batch_by_identity(p, world):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 9, size=60)
    k = 3
    single = PKSampler(labels, p, k, seed=7)
    ranks = [DistributedPKSampler(labels, p, k, seed=7, rank=r, world_size=world)
             for r in range(world)]
    assert ranks[0].local_sizes == [k * (stop - start) for start, stop in
                                    (shard_range(p, r, world) for r in range(world))]
    for t in (0, 1, 17):
        parts = [s.local_batch(t) for s in ranks]
        assert sum(parts, []) == single.batch(t)  # rank order = the global batch
        ids = [set(labels[part].tolist()) for part in parts]
        for a in range(world):
            assert len(parts[a]) == ranks[0].local_sizes[a]
            for b in range(a + 1, world):
                assert not ids[a] & ids[b]  # disjoint identities
    # the iterator yields this rank's part of batches start, start+1, ...
    it = iter(DistributedPKSampler(labels, p, k, seed=7, start_iteration=5, rank=world - 1,
                                   world_size=world))
    assert next(it) == ranks[-1].local_batch(5) and next(it) == ranks[-1].local_batch(6)


def test_distributed_sampler_needs_an_identity_per_rank():
    labels = np.repeat(np.arange(6), 4)
    with pytest.raises(ValueError, match="--batch-p 2 is smaller than the 3 processes"):
        DistributedPKSampler(labels, 2, 4, rank=0, world_size=3)
    with pytest.raises(ValueError, match="rank 3"):
        DistributedPKSampler(labels, 4, 4, rank=3, world_size=3)


def test_helpers_are_identities_in_a_single_process():
    assert not distributed.is_distributed() and distributed.world_size() == 1
    assert distributed.is_main() and distributed.broadcast_object("x") == "x"
    x = torch.randn(3, 2, requires_grad=True)
    out, labels, targets = distributed.gather_batch({"embedding": x}, torch.arange(3), None, [3])
    assert out["embedding"] is x and targets is None
    assert distributed.average_floats({"loss": 2.0}) == {"loss": 2.0}
    assert distributed.max_ints([0, 3]) == [0, 3]
    assert distributed.run_on_main(lambda: 5) == 5


# ---------------------------------------------------------------------------- torchrun job
RUNNER = r'''
import json, os, sys
sys.path.insert(0, {tests!r})
import ddp_plugin, tiny_plugin
from reidcore import embeddings, experiment
from reidcore.cli import main
from reidcore.engine import budget, checkpoint, distributed
from reidcore.testing import registered_plugin

FITS = []


def fitted(total, spent, per_iteration):  # --fit-schedule-to-budget: 40, then a re-fit to 30
    FITS.append(per_iteration)
    return 40 if len(FITS) == 1 else 20


budget.fitted_iterations = fitted


def spy(module, name, kind="writes"):  # record which rank writes which file
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        ddp_plugin.record(kind, f"{{name}} {{args[0] if kind == 'writes' else len(args[0])}}")
        return original(*args, **kwargs)

    setattr(module, name, wrapper)


for module, name in ((checkpoint, "save_checkpoint"), (experiment, "write_json"),
                     (embeddings, "write_embeddings")):
    spy(module, name)
spy(distributed, "gather_rows", "embed-shard")  # a rank's share of sharded embedding
with registered_plugin(tiny_plugin, "tiny"), registered_plugin(ddp_plugin, "ddp-test"):
    for folder, argv in json.loads(sys.argv[1]):
        os.environ[ddp_plugin.RECORD_ENV] = folder
        ddp_plugin.record("pid", str(os.getpid()))
        code = main(argv)
        if code:
            raise SystemExit(code)
'''


def common(data: Path) -> list[str]:
    return ["--dataset", "tiny", "--data", str(data), "--height", "32", "--width", "16",
            "--batch-p", str(P), "--batch-k", str(K), "--pad", "0", "--no-flip", "--workers", "0",
            "--log-every", "1", "--pretrained", "none", "--optimizer", "sgd", "--momentum", "0",
            "--lr", "0.05", "--checkpoint-every", "2", "--embed-batch-size", "16",
            "--no-progress"]


@pytest.fixture(scope="module")
def plugins():
    import ddp_plugin
    import tiny_plugin

    from reidcore.testing import registered_plugin

    with registered_plugin(tiny_plugin, "tiny"), registered_plugin(ddp_plugin, "ddp-test"):
        yield


@pytest.fixture(scope="module")
def job(tmp_path_factory, plugins):
    """The 2-process torchrun job (both trainings) and the single-process references."""
    import tiny_plugin

    root = tmp_path_factory.mktemp("ddp")
    data = tiny_plugin.write_tiny_dataset(root / "data")
    rec = {name: root / f"record-{name}" for name in ("gather", "center", "embed", "refit")}
    for folder in rec.values():
        folder.mkdir()
    jobs = [
        (str(rec["gather"]), ["run", "tiny-record", *common(data), "--iterations", str(ITERATIONS),
                              "--gather-embeddings", "--tensorboard",
                              "--experiment", str(root / "ddp-gather")]),
        (str(rec["center"]), ["train", "tiny-center", *common(data), "--iterations",
                              str(ITERATIONS), "--no-tensorboard",
                              "--experiment", str(root / "ddp-center")]),
        (str(rec["embed"]), ["embed", "--experiment", str(root / "ddp-gather"), "--part",
                             "gallery", "--output", str(root / "embed-sharded.h5")]),
        (str(rec["refit"]), ["train", "tiny-record", *common(data), "--iterations", "100",
                             "--max-train-minutes", "60", "--fit-schedule-to-budget",
                             "--no-tensorboard", "--experiment", str(root / "ddp-refit")]),
    ]
    runner = root / "runner.py"
    runner.write_text(RUNNER.format(tests=str(HERE)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("REIDCORE_TEST_RECORD", None)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(runner), json.dumps(jobs)],
        capture_output=True, text=True, env=env, timeout=400, cwd=root)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    # single process, same global batches: 6 iterations (checkpoints 4 and 6 kept)
    single = ["--no-tensorboard", "--checkpoint-every", "4"]
    assert main(["train", "tiny-record", *common(data), *single, "--iterations", "6",
                 "--experiment", str(root / "single-gather")]) == 0
    assert main(["train", "tiny-center", *common(data), *single, "--iterations", str(ITERATIONS),
                 "--experiment", str(root / "single-center")]) == 0
    return {"root": root, "data": data, "rec": rec, "stdout": proc.stdout}


def ckpt(exp: Path, iteration: int) -> dict:
    return torch.load(exp / "checkpoints" / f"checkpoint-{iteration:07d}.pt", weights_only=False)


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


def losses_logged(exp: Path) -> list[float]:
    return [float(m) for m in re.findall(r"iter \d+/\d+ loss ([0-9.]+)",
                                         (exp / "train.log").read_text())]


@pytest.mark.parametrize("name", ["gather", "center"])
def test_ranks_trained_on_disjoint_identities_forming_the_global_batch(job, name):
    from reidcore.testing import read_tiny_market

    labels = np.asarray(read_tiny_market(job["data"]).train_labels)
    seen = [[int(v) for v in (job["rec"][name] / f"indices-rank{r}.txt").read_text().split()]
            for r in range(2)]
    sampler = DistributedPKSampler(labels, P, K, seed=0, rank=0, world_size=2)
    sizes = sampler.local_sizes
    assert sizes == [4, 2]  # P=3 over 2 ranks: 2 identities, then 1
    assert [len(s) for s in seen] == [ITERATIONS * n for n in sizes]
    for t in range(ITERATIONS):
        parts = [seen[r][t * sizes[r]:(t + 1) * sizes[r]] for r in range(2)]
        assert parts[0] + parts[1] == PKSampler(labels, P, K, seed=0).batch(t)
        assert not set(labels[parts[0]]) & set(labels[parts[1]])


def test_gathered_batch_hard_equals_single_process(job):
    ddp, single = job["root"] / "ddp-gather", job["root"] / "single-gather"
    assert "data-parallel on 2 processes (cpu): [4, 2] images per rank, gather embeddings: True" \
        in (ddp / "train.log").read_text()
    np.testing.assert_allclose(losses_logged(ddp), losses_logged(single)[:ITERATIONS],
                               rtol=1e-4)
    trained = ckpt(ddp, ITERATIONS)["model"]
    assert_same_weights(trained, ckpt(single, ITERATIONS)["model"])
    torch.manual_seed(0)
    import tiny_plugin

    initial = tiny_plugin.tiny_model().state_dict()
    assert not torch.allclose(trained["head.weight"], initial["head.weight"], atol=1e-3)


def test_per_sample_loss_with_parameters_equals_single_process(job):
    ddp = ckpt(job["root"] / "ddp-center", ITERATIONS)
    single = ckpt(job["root"] / "single-center", ITERATIONS)
    assert_same_weights(ddp["model"], single["model"])
    assert_same_weights(ddp["criterion"], single["criterion"])  # averaged loss parameters
    np.testing.assert_allclose(losses_logged(job["root"] / "ddp-center"),
                               losses_logged(job["root"] / "single-center"), rtol=1e-4)


def test_only_rank_zero_wrote_files(job):
    rec, exp = job["rec"]["gather"], job["root"] / "ddp-gather"
    assert not (rec / "writes-rank1.txt").exists()
    assert not (job["rec"]["center"] / "writes-rank1.txt").exists()
    writes = (rec / "writes-rank0.txt").read_text()
    for expected in ("save_checkpoint", "args.json", "report.json", "query.h5", "gallery.h5"):
        assert expected in writes
    log_lines = (exp / "train.log").read_text().splitlines()
    iters = [ln.split(" loss")[0].split()[-1] for ln in log_lines if " iter " in ln]
    assert iters == [f"{i}/{ITERATIONS}" for i in range(1, ITERATIONS + 1)]  # once each
    rank0_pid = (rec / "pid-rank0.txt").read_text().split()[0]
    events = list(exp.glob("events.out.tfevents.*"))
    assert events and all(p.name.split(".")[-2] == rank0_pid for p in events)
    report = json.loads((exp / "report.json").read_text())
    assert report["train"]["world_size"] == 2 and report["train"]["iteration"] == ITERATIONS


def test_sharded_embeddings_are_gathered_in_order(job):
    from reidcore.embeddings import read_embeddings
    from reidcore.engine.embed import embed_samples
    from reidcore.registry import get_recipe, load_dataset

    exp = job["root"] / "ddp-gather"
    split = load_dataset("tiny", str(job["data"]))
    recipe = get_recipe("tiny-record")
    model = recipe.build_model(None, 0)
    model.load_state_dict(ckpt(exp, ITERATIONS)["model"])
    for part in ("query", "gallery"):
        samples = getattr(split, part)
        expected, _ = embed_samples(model, samples, height=32, width=16, batch_size=16)
        stored = read_embeddings(exp / "embeddings" / f"{part}.h5")
        assert [str(p) for p in stored.paths] == [s.path for s in samples]
        np.testing.assert_allclose(stored.embs, expected, rtol=1e-5, atol=1e-6)


def test_standalone_embed_is_sharded_and_written_by_rank_zero(job):
    """``torchrun -m reidcore embed``: both ranks embed a share, rank 0 writes all rows in
    order (before: every rank embedded everything and wrote the same file)."""
    from reidcore.embeddings import read_embeddings

    out = job["root"] / "embed-sharded.h5"
    rec = job["rec"]["embed"]
    assert not (rec / "writes-rank1.txt").exists()
    assert "write_embeddings" in (rec / "writes-rank0.txt").read_text()
    assert (rec / "embed-shard-rank0.txt").exists() and (rec / "embed-shard-rank1.txt").exists()
    stored = read_embeddings(out)
    expected = read_embeddings(job["root"] / "ddp-gather" / "embeddings" / "gallery.h5")
    assert [str(p) for p in stored.paths] == [str(p) for p in expected.paths]
    np.testing.assert_allclose(stored.embs, expected.embs, rtol=1e-5, atol=1e-6)


def test_single_process_resumes_the_two_process_experiment(job):
    exp = job["root"] / "resumed"
    shutil.copytree(job["root"] / "ddp-gather", exp)
    assert main(["run", "--resume", "--experiment", str(exp), "--iterations", "6"]) == 0
    assert "resumed from iteration 4" in (exp / "train.log").read_text()
    report = json.loads((exp / "report.json").read_text())
    assert report["train"]["iteration"] == 6 and "world_size" not in report["train"]
    assert_same_weights(ckpt(exp, 6)["model"], ckpt(job["root"] / "single-gather", 6)["model"])


def test_refit_is_one_decision_for_every_rank(job):
    """budget.RefitHook under torchrun: rank 0 decides, every rank trains the re-fitted schedule
    (a rank that disagreed would train other iterations or hang in the next collective)."""
    exp = job["root"] / "ddp-refit"
    record = json.loads((exp / "schedule.json").read_text())
    assert record["iterations"] == 30 and record["refit"]["iteration"] == 10
    assert ckpt(exp, 30)["schedule"]["iterations"] == 30
    assert "schedule re-fit at iteration 10 to 30 iterations (fitted 40)" in (
        exp / "train.log").read_text()
