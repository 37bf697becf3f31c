"""The trainer: a short loop (:class:`Trainer` ``run_step``) plus hooks, set up by :func:`train`.

P×K batches, AMP on CUDA, schedules, atomic checkpoints, exact resume, clean stop, divergence
guard, ``--fit-schedule-to-budget``. Under ``torchrun`` the same loop trains data-parallel
(DistributedDataParallel; every difference lives in
:class:`reidcore.engine.distributed.DataParallel`).
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import time
from pathlib import Path
from typing import Any

import attrs
import torch
from torch.utils.data import DataLoader

from reidcore.data.records import Split
from reidcore.data.samplers import DistributedPKSampler, PKSampler, SeededBatchSampler, shard_range
from reidcore.data.seeded import SeededDataset
from reidcore.engine import budget, checkpoint, distributed, schedules, scopes, tensorboard
from reidcore.engine.device import amp_dtype, autocast
from reidcore.engine.divergence import DivergenceGuard
from reidcore.engine.hooks import CheckpointHook, FreezeHook, LogHook, ProgressHook, StopHook
from reidcore.engine.loop import Hook, TrainLoop
from reidcore.engine.state import (
    apply_optimizer_config,
    capture_rng,
    load_optimizer_state,
    restore_rng,
)
from reidcore.recipe import CriterionInfo, Recipe, TrainConfig

log = logging.getLogger("reidcore")


@attrs.frozen
class TrainOutcome:
    """How training ended.

    Attributes:
        iteration: iterations completed (the last checkpoint's iteration).
        stopped: ``"done"`` (all iterations), ``"budget"`` (``max_train_minutes`` reached)
            or ``"signal"`` (SIGINT/SIGTERM, also in the last iteration; resumable with
            ``--resume``).
        signum: the signal number when ``stopped == "signal"``.
        seconds: wall-clock seconds spent in this call's training loop.
        images_per_second: training throughput of this call.
        iterations: the schedule's length (the fitted one with ``--fit-schedule-to-budget``).
    """

    iteration: int
    stopped: str
    signum: int | None = None
    seconds: float = 0.0
    images_per_second: float = 0.0
    iterations: int | None = None


def build_optimizer(cfg: TrainConfig, groups: list[dict],
                    device: torch.device | None = None) -> torch.optim.Optimizer:
    """Adam, AMSGrad (Adam with ``amsgrad=True``) or SGD over ``groups``; fused on CUDA.

    A group's learning rate is its own ``"lr"`` when given (e.g. a loss's parameters at
    ``--loss-lr``), else ``cfg.lr * lr_factor``. ``device``: where the parameters live; on
    CUDA the optimizer uses PyTorch's fused kernels (``fused=True``), elsewhere the default.

    Raises:
        ValueError: unknown optimizer name.
    """
    for g in groups:
        g.setdefault("lr", cfg.lr * g.get("lr_factor", 1.0))
    fused = {"fused": True} if device is not None and device.type == "cuda" else {}
    if cfg.optimizer in ("adam", "amsgrad"):  # amsgrad: Reddi et al. 2018 (SAN's --optim amsgrad)
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                amsgrad=cfg.optimizer == "amsgrad", **fused)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0, **fused)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; known: adam, amsgrad, sgd")


def build_criterion(recipe: Recipe, cfg: TrainConfig, info: CriterionInfo) -> torch.nn.Module:
    """``recipe.build_criterion(cfg, info)``.

    A recipe written before the criterion received :class:`~reidcore.recipe.CriterionInfo`
    (``build_criterion(self, cfg)``) still works; a warning asks for the new signature.
    """
    params = inspect.signature(recipe.build_criterion).parameters
    if len(params) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params.values()):
        return recipe.build_criterion(cfg, info)
    log.warning("recipe %r: build_criterion(self, cfg) is deprecated; accept "
                "build_criterion(self, cfg, info) (reidcore.recipe.CriterionInfo)", recipe.name)
    return recipe.build_criterion(cfg)


def loss_param_groups(criterion: torch.nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    """The optimizer groups of the criterion's trainable parameters (e.g. a centre loss's).

    The criterion's own ``param_groups(cfg)`` when it defines one; else one group
    ``"loss"`` at ``cfg.loss_lr`` (default ``cfg.lr``), or none without trainable parameters.
    """
    if hasattr(criterion, "param_groups"):
        return list(criterion.param_groups(cfg))
    params = [p for p in criterion.parameters() if p.requires_grad]
    if not params:
        return []
    lr = cfg.lr if cfg.loss_lr is None else cfg.loss_lr
    return [{"params": params, "lr": lr, "name": "loss"}]


def build_train_dataset(cfg: TrainConfig, split: Split, recipe: Recipe | None = None) -> SeededDataset:
    """The recipe's training dataset (:meth:`reidcore.recipe.Recipe.train_dataset`) behind a
    :class:`~reidcore.data.seeded.SeededDataset` (each image augmented under its own seed)."""
    recipe = recipe or Recipe()
    return SeededDataset(recipe.train_dataset(cfg, split, recipe.train_labels(cfg, split)))


def build_train_loader(cfg: TrainConfig, split: Split, start_iteration: int,
                       device: torch.device, recipe: Recipe | None = None,
                       dataset: SeededDataset | None = None) -> DataLoader:
    """An infinite DataLoader of P×K batches ``(inputs, labels (B,), idx (B,))``.

    ``inputs`` is ``(B, C, H, W)`` float32, or a dict of batched tensors (see
    :meth:`reidcore.recipe.Recipe.train_dataset`). Every image is augmented under its own
    seed from ``(cfg.seed, iteration, position in the global batch)``
    (:class:`~reidcore.data.samplers.SeededBatchSampler`,
    :class:`~reidcore.data.seeded.SeededDataset`): the batches do not depend on the number
    of workers, of ranks or of earlier resumes, and the main process's RNG is untouched.
    Under DDP the sampler is a :class:`~reidcore.data.samplers.DistributedPKSampler` and each
    batch is this rank's part (``loader.batch_sampler.local_sizes[rank]`` images). Workers
    persist and batches are pinned for asynchronous copies to a GPU. ``dataset``: one from
    :func:`build_train_dataset` to reuse (default: built here).
    """
    recipe = recipe or Recipe()
    labels = recipe.train_labels(cfg, split)
    if dataset is None:
        dataset = build_train_dataset(cfg, split, recipe)
    if distributed.is_distributed():
        sampler = DistributedPKSampler(labels, cfg.batch_p, cfg.batch_k, seed=cfg.seed,
                                       start_iteration=start_iteration, rank=distributed.rank(),
                                       world_size=distributed.world_size())
    else:
        sampler = PKSampler(labels, cfg.batch_p, cfg.batch_k, seed=cfg.seed,
                            start_iteration=start_iteration)
    return DataLoader(
        dataset, batch_sampler=SeededBatchSampler(sampler), num_workers=cfg.workers,
        pin_memory=device.type == "cuda", persistent_workers=cfg.workers > 0,
        prefetch_factor=4 if cfg.workers > 0 else None,
        generator=torch.Generator().manual_seed(cfg.seed),  # iter() leaves the global RNG alone
    )


class _Optimization:
    """Optimizer (model groups from the recipe, loss groups), LambdaLR schedule, grad scaler.

    ``wanted``: each group's configured base ``lr``, ``weight_decay`` (and SGD ``momentum``),
    which a restored optimizer is given (:func:`reidcore.engine.state.apply_optimizer_config`).
    """

    def __init__(self, cfg: TrainConfig, recipe: Recipe, model: torch.nn.Module,
                 criterion: torch.nn.Module, device: torch.device, dtype: torch.dtype | None):
        loss_groups = loss_param_groups(criterion, cfg)
        self.loss_params = [p for g in loss_groups for p in g["params"]]
        model_groups = recipe.param_groups(cfg, model)
        self.log_group = len(model_groups) - 1  # the lr shown: the recipe's last group's
        self.optimizer = build_optimizer(cfg, model_groups + loss_groups, device)
        self.wanted = [{k: g[k] for k in ("lr", "weight_decay", "momentum") if k in g}
                       for g in self.optimizer.param_groups]
        self.factor = schedules.from_config(cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.factor)
        self.scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    def lr(self) -> float:
        return self.optimizer.param_groups[self.log_group]["lr"]

    def use_schedule(self, cfg: TrainConfig) -> None:
        """Follow ``cfg``'s schedule from the scheduler's current iteration on (a re-fit)."""
        self.factor = schedules.from_config(cfg)
        self.scheduler.lr_lambdas = [self.factor] * len(self.optimizer.param_groups)
        apply_optimizer_config(self.optimizer, self.scheduler, self.wanted, self.factor,
                               self.scheduler.last_epoch)


class Trainer(TrainLoop):
    """One training step: forward (AMP), loss, backward, optimizer and schedule step.

    Args:
        forward: the model, as wrapped by ``parallel`` (DDP) and ``torch.compile``.
        criterion: ``criterion(outputs, pids[, targets]) -> (loss, stats)``
            (:meth:`reidcore.recipe.Recipe.build_criterion`).
        opt: optimizer, schedule, grad scaler and the loss's own parameters.
        parallel: the DDP rules (:class:`~reidcore.engine.distributed.DataParallel`).
        device, dtype: where to train and the autocast dtype (None: float32).
        channels_last: feed 4-D batches in channels_last memory format.
        hooks, start, max_iter: as :class:`~reidcore.engine.loop.TrainLoop`.
    """

    def __init__(self, forward, criterion, opt: _Optimization, parallel, device, dtype,
                 channels_last: bool, hooks: list[Hook], start: int, max_iter: int):
        super().__init__(hooks, start, max_iter)
        self.forward, self.criterion, self.parallel = forward, criterion, parallel
        self.optimizer, self.scheduler, self.scaler = opt.optimizer, opt.scheduler, opt.scaler
        self.loss_params = opt.loss_params
        self.device, self.dtype, self.channels_last = device, dtype, channels_last
        self.outputs: Any = None

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def run_step(self, batch) -> dict[str, float]:
        inputs, labels, _idx = batch
        labels = labels.to(self.device, non_blocking=True)
        targets = None
        if isinstance(inputs, dict):  # model input under "image", the rest are targets
            targets = {k: v.to(self.device, non_blocking=True) for k, v in inputs.items()}
            inputs = targets.pop("image")
        images = self._to_device(inputs)
        with autocast(self.device, self.dtype):
            outputs = self.forward(images)
        outputs, labels, targets = self.parallel.gather(outputs, labels, targets)
        loss, stats = (self.criterion(outputs, labels) if targets is None
                       else self.criterion(outputs, labels, targets))
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss * self.parallel.loss_weight).backward()
        self.parallel.sync_loss_gradients(self.loss_params)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.outputs = outputs
        self.images += self.parallel.global_batch(images.shape[0])
        return self.parallel.reduce_stats({**stats, "loss": float(loss.detach())})


def train(recipe: Recipe, cfg: TrainConfig, split: Split, exp_dir: Path,
          model: torch.nn.Module | None = None, device: torch.device | None = None) -> TrainOutcome:
    """Train ``recipe`` on ``split.train`` in ``exp_dir``, resuming from its newest checkpoint.

    ``model``: the caller's model (the caller seeded and built it), else seeded with
    ``cfg.seed`` and built here. ``device``: default :func:`distributed.setup` ``(cfg.device)``.

    Checkpoints (model, criterion, optimizer, schedule, grad scaler, iteration, the global
    random state, the divergence guard's state, a fitted schedule) every
    ``cfg.checkpoint_every`` iterations and when training ends, also when a SIGINT/SIGTERM
    (in any iteration, the last included) or the time budget stops it after the current
    batch. A resumed run continues bit-identically: batches and augmentation depend only on
    ``(seed, iteration)`` and the random state is restored once the data iterator exists.
    Flags given with ``--resume`` (``--lr``, ``--weight-decay``, ``--momentum``, schedule
    flags) are applied to the restored optimizer and logged.

    Feedback (hooks, :mod:`reidcore.engine.hooks`): a log line every ``cfg.log_every``
    iterations, a progress bar on a terminal, TensorBoard events
    (:mod:`reidcore.engine.tensorboard`). Speed options (CUDA): AMP (bf16 where supported,
    else fp16 with a grad scaler), ``channels_last``, fused Adam/SGD, ``torch.compile``.

    Data-parallel under ``torchrun``: see :class:`reidcore.engine.distributed.DataParallel`
    (only rank 0 writes checkpoints and events; each rank's dropout RNG is seeded from
    ``(seed, rank, start iteration)``; a checkpoint resumes with any number of ranks).

    With ``cfg.fit_schedule_to_budget`` the schedule is scaled to ``cfg.max_train_minutes``
    (:mod:`reidcore.engine.budget`).

    Raises:
        TrainingDivergedError: the loss became NaN/inf or exploded
            (:mod:`reidcore.engine.divergence`); the message names the newest checkpoint
            written before, which is kept.
        ValueError: ``--fit-schedule-to-budget`` without ``--max-train-minutes``, or
            ``--optimizer`` changed on resume.
    """
    exp_dir = Path(exp_dir)
    device = device or distributed.setup(cfg.device)
    main = distributed.is_main()
    if main:  # temp files of writes killed in an earlier run (e.g. SIGKILL mid-checkpoint)
        checkpoint.cleanup_experiment(exp_dir)
    if model is None:
        torch.manual_seed(cfg.seed)
        model = recipe.build_model(cfg, split.num_train_pids)
    state = checkpoint.load_latest(exp_dir)
    if state is None and cfg.init_checkpoint:
        scopes.load_init_checkpoint(model, cfg.init_checkpoint, cfg.checkpoint_exclude_scopes)
    freeze = FreezeHook(model, cfg.trainable_scopes)
    channels_last = cfg.channels_last and device.type == "cuda"
    model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    info = CriterionInfo(split.num_train_pids, getattr(model, "embedding_dim", None))
    criterion = build_criterion(recipe, cfg, info).to(device)
    dtype = amp_dtype(device, cfg.amp)
    parallel = distributed.DataParallel(cfg.gather_embeddings, cfg.find_unused_parameters,
                                        _local_sizes(cfg))
    forward = parallel.wrap(model, device)
    forward = torch.compile(forward) if cfg.compile else forward

    def step_loop(opt, hooks, start, max_iter):
        return Trainer(forward, criterion, opt, parallel, device, dtype, channels_last, hooks,
                       start, max_iter)

    # the data (--cache-images decodes here, once) before the budget's clock starts, which
    # then covers the timed iterations of --fit-schedule-to-budget and the loop
    dataset = build_train_dataset(cfg, split, recipe) if state is None else None
    t_start = time.monotonic()
    planned = cfg
    cfg, schedule, fitted = _schedule(cfg, state, exp_dir, t_start, lambda c: _time_steps(
        c, split, recipe, dataset, model, criterion, device, dtype, freeze, step_loop))
    opt = _Optimization(cfg, recipe, model, criterion, device, dtype)
    guard = DivergenceGuard(exp_dir, cfg.divergence_factor, main=main, parameters=lambda: [
        *model.parameters(), *criterion.parameters()])
    start = 0 if state is None else _restore(state, cfg, model, criterion, opt, guard)
    if start >= cfg.iterations:
        return TrainOutcome(start, "done", iterations=cfg.iterations)
    if dataset is None:
        dataset, t_start = build_train_dataset(cfg, split, recipe), time.monotonic()
    batches = iter(build_train_loader(cfg, split, start, device, recipe, dataset))
    if state is not None:  # after iter(): nothing may draw from the restored state before a step
        restore_rng(state.get("rng", {"torch": state.get("torch_rng")}))
    parallel.describe(device, cfg.batch_k)
    parallel.seed_rank(cfg.seed, start)

    def save(iteration: int) -> Path:
        return checkpoint.save_checkpoint(exp_dir, iteration, {
            "iteration": iteration, "model": model.state_dict(),
            "criterion": criterion.state_dict(), "optimizer": opt.optimizer.state_dict(),
            "scheduler": opt.scheduler.state_dict(), "scaler": opt.scaler.state_dict(),
            "rng": capture_rng(), "num_classes": split.num_train_pids,
            "optimizer_name": cfg.optimizer, "divergence": guard.state_dict(),
            "schedule": schedule}, keep=_KEEP_ALL)

    def refit(record: dict) -> None:  # budget.RefitHook: from this iteration on, its schedule
        nonlocal schedule
        schedule = record
        opt.use_schedule(budget.apply(planned, record))

    minutes = cfg.max_train_minutes
    refit_hook = [budget.RefitHook(planned, fitted, minutes * 60, t_start, refit, exp_dir, main,
                                   distributed.broadcast_object)] if fitted else []
    ckpt = CheckpointHook(exp_dir, save, cfg.checkpoint_every, guard, main=main)
    writer = tensorboard.open_writer(exp_dir, purge_step=start or None,
                                     enabled=cfg.tensorboard and main)
    loop = step_loop(opt, [  # in this order: a NaN is caught before anything is logged or saved
        freeze, guard,
        StopHook(t_start + minutes * 60 if minutes else math.inf, parallel.agree),
        LogHook(writer, cfg.log_every, opt.lr, lambda: loop.outputs),
        ProgressHook(cfg.progress and main, opt.lr), *refit_hook, ckpt,
    ], start, cfg.iterations)
    loop.train(batches)
    distributed.barrier()  # the other ranks may read this checkpoint next (a later stage)
    rate = loop.images / max(loop.seconds, 1e-9)
    log.info("training %s at iteration %d (%.0f s, %.1f img/s); checkpoint %s", loop.stopped,
             loop.iteration, loop.seconds, rate, ckpt.path)
    return TrainOutcome(loop.iteration, loop.stopped, loop.signum, loop.seconds, rate,
                        loop.max_iter)


_KEEP_ALL = 1 << 30  # checkpoint.save_checkpoint's own rotation is off; CheckpointHook rotates


def _local_sizes(cfg: TrainConfig) -> list[int]:
    """Images per rank in every batch, as the DistributedPKSampler splits it (``[P*K]`` alone)."""
    w = distributed.world_size()
    return [(stop - start) * cfg.batch_k
            for start, stop in (shard_range(cfg.batch_p, r, w) for r in range(w))]


def _restore(state: dict, cfg: TrainConfig, model, criterion, opt: _Optimization,
             guard: DivergenceGuard) -> int:
    """Load a checkpoint's training state; returns its iteration."""
    saved_optimizer = state.get("optimizer_name", cfg.optimizer)
    if saved_optimizer != cfg.optimizer:
        raise ValueError(f"--optimizer {cfg.optimizer} cannot continue the {saved_optimizer} state "
                         "of the checkpoint; resume with the original optimizer or start a new run")
    model.load_state_dict(state["model"])
    criterion.load_state_dict(state.get("criterion", {}), strict="criterion" in state)
    load_optimizer_state(opt.optimizer, state["optimizer"])
    opt.scheduler.load_state_dict(state["scheduler"])
    if state["scaler"]:  # empty when written without fp16 (CPU, bf16)
        opt.scaler.load_state_dict(state["scaler"])
    start = int(state["iteration"])
    apply_optimizer_config(opt.optimizer, opt.scheduler, opt.wanted, opt.factor, start)
    guard.load_state_dict(state.get("divergence", {}))
    if start != guard.confirmed and start not in guard.pending:
        guard.saved(start)
    log.info("resumed from iteration %d", start)
    return start


def _schedule(cfg: TrainConfig, state: dict | None, exp_dir: Path, t_start: float,
              time_steps) -> tuple[TrainConfig, dict | None, dict | None]:
    """``cfg`` with the fitted schedule, its record (None without the option) and, when it
    was fitted in this call (not read from a checkpoint or ``schedule.json``), the full record
    of :func:`budget.write_record` (else None)."""
    if not cfg.fit_schedule_to_budget:
        return cfg, None, None
    if not cfg.max_train_minutes:
        raise ValueError("--fit-schedule-to-budget needs --max-train-minutes")
    record = (state or {}).get("schedule") or budget.read_record(exp_dir)
    if record is None and state is not None:
        log.warning("--fit-schedule-to-budget: the checkpoint has no fitted schedule; "
                    "continuing with --iterations %d", cfg.iterations)
        return cfg, None, None
    if record is not None:
        log.info("using the fitted schedule recorded in %s: %d iterations", exp_dir,
                 record["iterations"])
        return budget.apply(cfg, record), record, None
    per_iteration = time_steps(cfg)
    n = budget.fitted_iterations(cfg.max_train_minutes * 60, time.monotonic() - t_start,
                                 per_iteration)
    record = distributed.broadcast_object(budget.scaled_schedule(cfg, n))
    full = (budget.write_record(exp_dir, cfg, record, per_iteration, cfg.max_train_minutes)
            if distributed.is_main() else {**record, "seconds_per_iteration": per_iteration})
    return budget.apply(cfg, record), record, full


def _time_steps(cfg, split, recipe, dataset, model, criterion, device, dtype, freeze,
                step_loop) -> float:
    """Seconds per iteration over :data:`budget.TIMED` throw-away iterations.

    Model, criterion and random state are restored afterwards, so the real run starts
    exactly as if no iteration had been timed.
    """
    saved = (copy.deepcopy(model.state_dict()), copy.deepcopy(criterion.state_dict()),
             capture_rng())
    loop = step_loop(_Optimization(cfg, recipe, model, criterion, device, dtype), [freeze], 0,
                     budget.WARMUP)
    batches = iter(build_train_loader(cfg, split, 0, device, recipe, dataset))
    loop.train(batches)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.monotonic()
    loop.max_iter = budget.WARMUP + budget.TIMED
    loop.stopped = None  # the first call ended "done"; a loop that is not reset trains nothing
    loop.train(batches)
    sync()
    seconds = (time.monotonic() - t0) / budget.TIMED
    if loop.iteration != budget.WARMUP + budget.TIMED:
        raise RuntimeError(f"--fit-schedule-to-budget timed {loop.iteration - budget.WARMUP} "
                           f"iterations instead of {budget.TIMED} (stopped: {loop.stopped})")
    del batches  # stops the workers
    model.load_state_dict(saved[0])
    criterion.load_state_dict(saved[1])
    restore_rng(saved[2])
    return seconds


def load_trained_model(recipe: Recipe, cfg: TrainConfig, num_classes: int | None, exp_dir: Path,
                       device: torch.device) -> torch.nn.Module:
    """The model of ``exp_dir``'s newest checkpoint, in eval mode on ``device``.

    ``num_classes`` (training identities) is read from the checkpoint when it is None.

    Raises:
        ExperimentError: the experiment has no checkpoint.
    """
    from reidcore.errors import ExperimentError

    state = checkpoint.load_latest(exp_dir)
    if state is None:
        raise ExperimentError(f"experiment {exp_dir} has no checkpoint in {exp_dir / checkpoint.CHECKPOINT_DIR}")
    cfg_no_download = attrs.evolve(cfg, pretrained="none")  # weights come from the checkpoint
    if num_classes is None:
        if "num_classes" not in state:
            raise ExperimentError(f"the checkpoint of {exp_dir} does not record num_classes")
        num_classes = int(state["num_classes"])
    model = recipe.build_model(cfg_no_download, num_classes)
    model.load_state_dict(state["model"])
    return model.to(device).eval()
