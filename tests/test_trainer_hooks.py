"""Unit tests of the training loop and each of its hooks (no training run)."""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import sys

import numpy as np
import pytest
import torch

from reidcore.data.samplers import DistributedPKSampler, PKSampler, SeededBatchSampler, batch_seeds
from reidcore.data.seeded import SeededDataset, seeded_rngs
from reidcore.engine import budget, checkpoint
from reidcore.engine.distributed import DataParallel
from reidcore.engine.divergence import DivergenceGuard
from reidcore.engine.hooks import CheckpointHook, FreezeHook, LogHook, ProgressHook, StopHook
from reidcore.engine.loop import Hook, TrainLoop
from reidcore.engine.state import apply_optimizer_config, capture_rng, restore_rng
from reidcore.errors import TrainingDivergedError


class Losses(TrainLoop):
    """A loop whose steps return the given losses."""

    def __init__(self, hooks, losses, start=0):
        super().__init__(hooks, start, start + len(losses))
        self.losses, self.start = list(losses), start

    def run_step(self, batch):
        self.images += 4
        return {"loss": self.losses[self.iteration - self.start]}


class Recorder(Hook):
    def __init__(self, calls):
        self.calls = calls

    def before_train(self, loop):
        self.calls.append("before")

    def after_step(self, loop):
        self.calls.append(loop.iteration)

    def after_train(self, loop):
        self.calls.append("after")

    def close(self, loop):
        self.calls.append("close")


def test_loop_calls_hooks_in_order_and_closes_after_an_exception():
    calls = []
    loop = Losses([Recorder(calls)], [1.0, 2.0, 3.0])
    loop.train(iter(range(10)))
    assert calls == ["before", 1, 2, 3, "after", "close"]
    assert loop.stopped == "done" and loop.stats == {"loss": 3.0} and loop.images == 12

    class Boom(Hook):
        def after_step(self, loop):
            raise RuntimeError("boom")

    calls.clear()
    with pytest.raises(RuntimeError):
        Losses([Recorder(calls), Boom()], [1.0, 2.0]).train(iter(range(10)))
    assert calls == ["before", 1, "close"]  # no after_train (no final checkpoint) on failure


def test_stop_hook_signal_in_any_iteration_including_the_last():
    class Kill(Hook):
        def __init__(self, at):
            self.at = at

        def after_step(self, loop):
            if loop.iteration == self.at:
                os.kill(os.getpid(), signal.SIGTERM)

    for at in (2, 3):  # 3 is the last iteration
        loop = Losses([Kill(at), StopHook()], [1.0] * 3)
        loop.train(iter(range(10)))
        assert (loop.stopped, loop.signum, loop.iteration) == ("signal", signal.SIGTERM, at)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


def test_stop_hook_budget_but_not_in_the_last_iteration():
    loop = Losses([StopHook(deadline=0.0)], [1.0] * 3)
    loop.train(iter(range(10)))
    assert (loop.stopped, loop.iteration) == ("budget", 1)
    loop = Losses([StopHook(deadline=0.0)], [1.0], start=4)
    loop.train(iter(range(10)))
    assert (loop.stopped, loop.iteration) == ("done", 5)


def test_stop_hook_follows_every_rank():
    loop = Losses([StopHook(agree=lambda v: [15, 0])], [1.0] * 3)  # another rank got SIGTERM
    loop.train(iter(range(10)))
    assert (loop.stopped, loop.signum, loop.iteration) == ("signal", 15, 1)


def test_freeze_hook_freezes_scopes_and_their_batchnorm():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.Linear(4, 2))
    hook = FreezeHook(model, "2")
    assert (hook.trainable, hook.frozen) == (2, 4)
    assert [p.requires_grad for p in model.parameters()] == [False] * 4 + [True] * 2
    model.eval()
    hook.before_train(Losses([], [1.0]))
    assert model.training and not model[1].training
    with pytest.raises(ValueError, match="matches no parameter"):
        FreezeHook(model, "head")


class FakeWriter:
    enabled = True

    def __init__(self):
        self.scalars_at, self.histograms, self.closed = [], [], False

    def scalars(self, step, values, prefix=""):
        self.scalars_at.append((step, prefix, sorted(values)))

    def histogram(self, tag, values, step):
        self.histograms.append((tag, step))

    def close(self):
        self.closed = True


def test_log_hook_lines_tensorboard_and_close(caplog):
    writer = FakeWriter()
    out = {"embedding": torch.ones(4, 3)}
    loop = Losses([LogHook(writer, 2, lambda: 0.5, lambda: out)], [1.0, 2.0, 3.0])
    with caplog.at_level(logging.INFO, logger="reidcore"):
        loop.train(iter(range(10)))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("iter ")]
    assert [ln.split()[1] for ln in lines] == ["2/3", "3/3"]  # every 2 and the last
    assert "loss 2.0000 lr 0.5" in lines[0] and "img/s" in lines[0]
    per_step = [s for s in writer.scalars_at if "lr" in s[2]]
    assert [s[0] for s in per_step] == [1, 2, 3] and per_step[0][2] == ["loss", "lr"]
    assert [s[0] for s in writer.scalars_at if s[2] == ["images_per_second"]] == [2, 3]
    assert writer.histograms == [("train/embedding", 2), ("train/embedding_norm", 2),
                                 ("train/embedding", 3), ("train/embedding_norm", 3)]
    assert writer.closed


def test_progress_hook_only_on_a_terminal(monkeypatch, capsys):
    hook = ProgressHook(True, lambda: 0.1)
    Losses([hook], [1.0, 2.0]).train(iter(range(10)))
    assert hook.bar is None  # pytest's stdout is not a terminal
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    hook = ProgressHook(True, lambda: 0.1)
    Losses([hook], [1.0, 2.0]).train(iter(range(10)))
    assert hook.bar is not None and hook.bar.n == 2 and "loss 2.0000 lr 0.1" in hook.bar.postfix
    assert "train:" in capsys.readouterr().out
    assert ProgressHook(False, lambda: 0.1).enabled is False


def _fake_save(exp):
    def save(it):
        path = checkpoint.checkpoint_path(exp, it)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"iteration": it}, path)
        return path
    return save


def _names(exp):
    return [p.name for _i, p in checkpoint.list_checkpoints(exp)]


def test_checkpoint_hook_every_final_and_rotation(tmp_path):
    guard = DivergenceGuard(tmp_path)
    hook = CheckpointHook(tmp_path, _fake_save(tmp_path), 2, guard)
    loop = Losses([guard, hook], [1.0] * 7)
    loop.train(iter(range(10)))
    # written at 2, 4, 6 and the final 7; the newest two are kept, and 6 (confirmed by the
    # normal loss computed from its weights at iteration 7) is one of them
    assert _names(tmp_path) == ["checkpoint-0000006.pt", "checkpoint-0000007.pt"]
    assert hook.path == checkpoint.checkpoint_path(tmp_path, 7) and guard.confirmed == 6


def test_checkpoint_hook_not_written_by_other_ranks(tmp_path):
    hook = CheckpointHook(tmp_path, _fake_save(tmp_path), 1, DivergenceGuard(tmp_path), main=False)
    Losses([hook], [1.0] * 2).train(iter(range(10)))
    assert _names(tmp_path) == [] and hook.path is None


def test_divergence_guard_nan_names_and_keeps_the_last_good_checkpoint(tmp_path):
    guard = DivergenceGuard(tmp_path)
    hook = CheckpointHook(tmp_path, _fake_save(tmp_path), 2, guard)
    loop = Losses([guard, hook], [1.0, 1.1, 0.9, 1.0, 1.2, math.nan, 1.0])
    with pytest.raises(TrainingDivergedError, match=r"loss became nan at iteration 5.*"
                       r"checkpoint-0000004\.pt \(kept\)"):
        loop.train(iter(range(10)))
    assert _names(tmp_path) == ["checkpoint-0000002.pt", "checkpoint-0000004.pt"]


def test_divergence_guard_explosion_keeps_the_checkpoint_before_it_began(tmp_path):
    # the loss starts to climb at iteration 7 (computed from checkpoint 6's weights): the
    # checkpoints written during the climb (6, 8) are renamed aside; 4 is named and kept
    losses = [1.0] * 6 + [50.0, 200.0, 600.0, 5e4]
    guard = DivergenceGuard(tmp_path, factor=1000.0)
    hook = CheckpointHook(tmp_path, _fake_save(tmp_path), 2, guard)
    with pytest.raises(TrainingDivergedError, match=r"exploded at iteration 9: 5e\+04 is more than "
                       r"1000 times its running median 1.*checkpoint-0000004\.pt \(kept\)"):
        Losses([guard, hook], losses).train(iter(range(20)))
    assert _names(tmp_path) == ["checkpoint-0000004.pt"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.diverged")) == [
        "checkpoint-0000006.pt.diverged", "checkpoint-0000008.pt.diverged"]


def test_divergence_guard_tolerates_a_loss_that_converges_to_zero(tmp_path):
    guard = DivergenceGuard(tmp_path, factor=100.0)
    for i, loss in enumerate([0.5] * 10 + [0.0] * 200 + [2.0]):  # hard margin: mostly 0
        guard.observe(i + 1, loss)  # 2.0 < 100 × the initial 0.5: no explosion


def test_divergence_guard_checks_parameters_before_a_checkpoint(tmp_path):
    params = [torch.ones(3), torch.tensor([1.0, math.inf])]
    guard = DivergenceGuard(tmp_path, parameters=lambda: params)
    guard.observe(1, 1.0)
    with pytest.raises(TrainingDivergedError, match="parameter is not finite at iteration 1"):
        guard.check_before_save(1)
    params[1] = torch.zeros(2)
    guard.check_before_save(1)
    with pytest.raises(ValueError, match="divergence-factor"):
        DivergenceGuard(tmp_path, factor=0.5)


def test_divergence_guard_state_round_trip(tmp_path):
    a = DivergenceGuard(tmp_path)
    for i, loss in enumerate([1.0, 2.0, 3.0]):
        a.observe(i + 1, loss)
    a.saved(3)
    b = DivergenceGuard(tmp_path)
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict() and b.reference() == a.reference() == 2.0


def test_data_parallel_is_the_identity_in_one_process():
    dp = DataParallel(gather_embeddings=False, find_unused_parameters=False, local_sizes=[8])
    model = torch.nn.Linear(2, 2)
    out, labels = {"embedding": torch.ones(8, 2)}, torch.arange(8)
    assert dp.wrap(model, torch.device("cpu")) is model and dp.loss_weight == 1.0
    assert dp.gather(out, labels, None) == (out, labels, None)
    assert dp.reduce_stats({"loss": 2.0}) == {"loss": 2.0} and dp.global_batch(8) == 8
    assert dp.agree([0, 1]) == [0, 1]


def test_seeded_rngs_restore_the_global_state():
    torch.manual_seed(1)
    random.seed(1)
    np.random.seed(1)
    before = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    with seeded_rngs(123):
        a = (torch.rand(2), random.random(), np.random.rand())
    with seeded_rngs(123):
        b = (torch.rand(2), random.random(), np.random.rand())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
    assert torch.equal(torch.get_rng_state(), before[0]) and random.getstate() == before[1]
    assert (np.random.get_state()[1] == before[2]).all()


def test_seeded_dataset_draws_per_sample_and_passes_plain_indices():
    class Noise:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return torch.rand(1).item() + i

    ds = SeededDataset(Noise())
    assert ds[(2, 7)] == ds[(2, 7)] != ds[(2, 8)] and len(ds) == 5
    assert 0 <= ds[3] - 3 < 1


def test_seeded_batches_are_the_same_under_ddp_as_in_one_process():
    labels = np.repeat(np.arange(10), 3)
    single = SeededBatchSampler(PKSampler(labels, 4, 2, seed=3)).seeded_batch(5)
    parts = [SeededBatchSampler(DistributedPKSampler(labels, 4, 2, seed=3, rank=r, world_size=3))
             .seeded_batch(5) for r in range(3)]
    assert parts[0] + parts[1] + parts[2] == single
    assert len({s for _i, s in single}) == 8
    assert [s for _i, s in single] == batch_seeds(3, 5, 8) != batch_seeds(3, 6, 8)
    assert batch_seeds(3, 5, 8)[:4] == batch_seeds(3, 5, 4)  # a position's seed is its own
    it = iter(SeededBatchSampler(PKSampler(labels, 4, 2, seed=3, start_iteration=5)))
    assert next(it) == single


def test_rng_capture_restore_round_trip():
    state = capture_rng()
    a = (torch.rand(1), random.random(), np.random.rand())
    restore_rng(state)
    assert (torch.rand(1), random.random(), np.random.rand()) == a


def _adam(lr=0.1):
    p = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.Adam([{"params": [p], "lr": lr}], weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 0.5 ** it)
    return p, opt, sched


def test_apply_optimizer_config_keeps_or_overrides(caplog):
    p, opt, sched = _adam()
    for _ in range(3):
        opt.step()
        sched.step()
    lr_then = opt.param_groups[0]["lr"]
    _p2, opt2, sched2 = _adam()
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    assert apply_optimizer_config(opt2, sched2, [{"lr": 0.1, "weight_decay": 0.0}],
                                  lambda it: 0.5 ** it, 3) == []
    assert opt2.param_groups[0]["lr"] == lr_then  # bit-identical without new flags
    with caplog.at_level(logging.INFO, logger="reidcore"):
        changes = apply_optimizer_config(opt2, sched2, [{"lr": 0.4, "weight_decay": 0.01}],
                                         lambda it: 0.5 ** it, 3)
    assert changes == ["group 0 lr 0.1 -> 0.4", "group 0 weight_decay 0 -> 0.01"]
    assert opt2.param_groups[0]["lr"] == 0.4 * 0.125 and sched2.get_last_lr() == [0.05]
    assert "applied to the restored optimizer" in caplog.text
    sched2.step()
    assert opt2.param_groups[0]["lr"] == 0.4 * 0.5 ** 4


def test_budget_scales_the_whole_schedule(tmp_path):
    class Cfg:
        iterations, decay_start_iteration, milestones, warmup_iterations = 1000, 500, (600, 800), 100

    assert budget.scaled_schedule(Cfg, 250) == {"iterations": 250, "decay_start_iteration": 125,
                                                "milestones": [150, 200], "warmup_iterations": 25}
    assert budget.fitted_iterations(100.0, 10.0, 0.5) == int(90 * budget.SAFETY / 0.5)
    assert budget.fitted_iterations(10.0, 20.0, 0.5) == 1
    with pytest.raises(ValueError):
        budget.scaled_schedule(Cfg, 0)
    assert budget.read_record(tmp_path) is None
