"""The training loop: P×K batches, AMP on CUDA, schedules, atomic checkpoints, resume, clean stop.

Under ``torchrun`` the same loop trains data-parallel (DistributedDataParallel; see
:mod:`reidcore.engine.distributed`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from pathlib import Path

import attrs
import torch
from torch.utils.data import DataLoader

from reidcore.data.records import Split
from reidcore.data.samplers import DistributedPKSampler, PKSampler
from reidcore.engine import checkpoint, distributed, schedules, scopes, tensorboard
from reidcore.engine.device import amp_dtype, autocast
from reidcore.engine.signals import GracefulStop
from reidcore.errors import TrainingDivergedError
from reidcore.recipe import Recipe, TrainConfig

log = logging.getLogger("reidcore")


@attrs.frozen
class TrainOutcome:
    """How training ended.

    Attributes:
        iteration: iterations completed (the last checkpoint's iteration).
        stopped: ``"done"`` (all iterations), ``"budget"`` (``max_train_minutes`` reached)
            or ``"signal"`` (SIGINT/SIGTERM; resumable with ``--resume``).
        signum: the signal number when ``stopped == "signal"``.
        seconds: wall-clock seconds spent in this call's training loop.
        images_per_second: training throughput of this call.
    """

    iteration: int
    stopped: str
    signum: int | None = None
    seconds: float = 0.0
    images_per_second: float = 0.0


def build_optimizer(cfg: TrainConfig, groups: list[dict],
                    device: torch.device | None = None) -> torch.optim.Optimizer:
    """Adam, AMSGrad (Adam with ``amsgrad=True``) or SGD over ``groups`` (each with ``lr_factor``);
    fused on CUDA where available.

    ``device``: where the parameters live; on CUDA the optimizer uses PyTorch's fused
    kernels (``fused=True``, one kernel for all parameters), elsewhere the default.

    Raises:
        ValueError: unknown optimizer name.
    """
    for g in groups:
        g["lr"] = cfg.lr * g.get("lr_factor", 1.0)
    fused = {"fused": True} if device is not None and device.type == "cuda" else {}
    if cfg.optimizer in ("adam", "amsgrad"):  # amsgrad: Reddi et al. 2018 (SAN's --optim amsgrad)
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                amsgrad=cfg.optimizer == "amsgrad", **fused)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0, **fused)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; known: adam, amsgrad, sgd")


def build_train_loader(cfg: TrainConfig, split: Split, start_iteration: int,
                       device: torch.device, recipe: Recipe | None = None) -> DataLoader:
    """An infinite DataLoader of P×K batches ``(inputs, labels (B,), idx (B,))``.

    ``inputs`` is ``(B, C, H, W)`` float32, or a dict of batched tensors (see
    :meth:`reidcore.recipe.Recipe.train_dataset`); the recipe chooses the dataset and the
    sampler's classes (default: RGB images, relabelled pids). Under DDP the sampler is a
    :class:`~reidcore.data.samplers.DistributedPKSampler` and each batch is this rank's
    part (``loader.batch_sampler.local_sizes[rank]`` images) of the global P×K batch.
    Workers persist and batches are pinned for asynchronous copies to a GPU.
    """
    recipe = recipe or Recipe()
    labels = recipe.train_labels(cfg, split)
    dataset = recipe.train_dataset(cfg, split, labels)
    if distributed.is_distributed():
        sampler = DistributedPKSampler(labels, cfg.batch_p, cfg.batch_k, seed=cfg.seed,
                                       start_iteration=start_iteration, rank=distributed.rank(),
                                       world_size=distributed.world_size())
    else:
        sampler = PKSampler(labels, cfg.batch_p, cfg.batch_k, seed=cfg.seed,
                            start_iteration=start_iteration)
    return DataLoader(
        dataset, batch_sampler=sampler, num_workers=cfg.workers,
        pin_memory=device.type == "cuda", persistent_workers=cfg.workers > 0,
        prefetch_factor=4 if cfg.workers > 0 else None,
    )


def progress_bar(cfg: TrainConfig, start: int):
    """A tqdm bar over the iterations ``start..cfg.iterations`` on stdout, or ``None``.

    ``None`` when ``cfg.progress`` is false or stdout is not a terminal (log files and CI
    output keep only the log lines).
    """
    if not cfg.progress or not sys.stdout.isatty():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.iterations, initial=start, desc="train", unit="it", file=sys.stdout,
                dynamic_ncols=True, leave=False)


def _redirect_logging(bar) -> contextlib.AbstractContextManager:
    """While the bar is shown, console log lines are printed above it (not through it)."""
    if bar is None:
        return contextlib.nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm(loggers=[log], tqdm_class=type(bar))


def _load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Load ``saved`` keeping this optimizer's kernel choice (``fused``/``foreach``/``capturable``).

    A checkpoint written on the CPU (plain kernels) resumes with fused kernels on a GPU
    and vice versa.
    """
    groups = []
    for g_saved, g_now in zip(saved["param_groups"], optimizer.param_groups, strict=False):
        g = dict(g_saved)
        for key in ("fused", "foreach", "capturable"):
            if key in g_now:
                g[key] = g_now[key]
        groups.append(g)
    optimizer.load_state_dict({**saved, "param_groups": groups})


def train(recipe: Recipe, cfg: TrainConfig, split: Split, exp_dir: Path,
          model: torch.nn.Module | None = None) -> TrainOutcome:
    """Train ``recipe`` on ``split.train`` in ``exp_dir``, resuming from its newest checkpoint.

    Checkpoints (model, optimizer, scheduler, grad scaler, iteration, RNG) are written
    every ``cfg.checkpoint_every`` iterations, when training ends, and when a
    SIGINT/SIGTERM or the time budget stops it after the current batch.

    Feedback: a log line every ``cfg.log_every`` iterations (loss, lr, images/s and the
    criterion's other stats); a progress bar when stdout is a terminal and ``cfg.progress``;
    TensorBoard scalars and embedding histograms in ``exp_dir`` when ``cfg.tensorboard`` and
    the ``tensorboard`` package is installed (see :mod:`reidcore.engine.tensorboard`).

    Speed options (CUDA): AMP (``cfg.amp``: bf16 where supported, else fp16 with a grad
    scaler), ``cfg.channels_last`` (model and batches), fused Adam/SGD, ``cfg.compile``
    (``torch.compile``), pinned batches copied with ``non_blocking``.

    Data-parallel under ``torchrun`` (:mod:`reidcore.engine.distributed`): the model is
    wrapped in ``DistributedDataParallel``; each rank trains on its identities of the
    global P×K batch, and its loss is weighted by its share of the batch, so that the
    averaged gradient is that of the mean loss over the global batch. With
    ``cfg.gather_embeddings`` the outputs are all-gathered first and every rank computes
    the loss of the global batch (batch-hard mining over all ranks; the same loss, up to
    rounding, as a single process with the same batches). Loss statistics are averaged
    over ranks, each weighted by its share of the batch; images/s count the global batch.
    A rank whose part holds a single identity cannot mine pairs on its own: batch-hard
    losses then need ``cfg.gather_embeddings`` (a warning says so). Only rank 0 writes
    checkpoints and TensorBoard events; a checkpoint (optimizer state, iteration) resumes
    with any number of ranks since the batches depend only on ``(seed, iteration)``. Each
    rank's augmentation RNG is seeded from ``(seed, rank, start iteration)``.

    Raises:
        TrainingDivergedError: the loss became NaN/inf; the newest checkpoint on disk is
            the last good one and is left untouched.
    """
    exp_dir = Path(exp_dir)
    device = distributed.setup(cfg.device)  # under torchrun: the process group, cuda:LOCAL_RANK
    dist_on = distributed.is_distributed()
    world, main = distributed.world_size(), distributed.is_main()
    if main:  # temp files of writes killed in an earlier run (e.g. SIGKILL mid-checkpoint)
        checkpoint.cleanup_experiment(exp_dir)
    torch.manual_seed(cfg.seed)
    if model is None:
        model = recipe.build_model(cfg, split.num_train_pids)
    state = checkpoint.load_latest(exp_dir)
    if state is None and cfg.init_checkpoint:
        scopes.load_init_checkpoint(model, cfg.init_checkpoint, cfg.checkpoint_exclude_scopes)
    n_train, n_frozen = scopes.apply_trainable_scopes(model, cfg.trainable_scopes)
    if n_frozen:
        log.info("training %d parameter tensors in scopes %r; %d frozen", n_train,
                 cfg.trainable_scopes, n_frozen)
    model.to(device)
    channels_last = cfg.channels_last and device.type == "cuda"
    if channels_last:
        model.to(memory_format=torch.channels_last)
    criterion = recipe.build_criterion(cfg).to(device)
    groups = recipe.param_groups(cfg, model)
    loss_params = [p for p in criterion.parameters() if p.requires_grad]
    if loss_params:  # losses with trainable parts (e.g. a verification classifier)
        groups.append({"params": loss_params, "lr_factor": 1.0})
    optimizer = build_optimizer(cfg, groups, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedules.from_config(cfg))
    dtype = amp_dtype(device, cfg.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        criterion.load_state_dict(state.get("criterion", {}), strict="criterion" in state)
        _load_optimizer_state(optimizer, state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:  # empty when written without fp16 (CPU, bf16)
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        start = int(state["iteration"])
        log.info("resumed from iteration %d", start)
    if dist_on:  # ranks augment differently; reproducible from (seed, rank, start)
        torch.manual_seed(distributed.rank_seed(cfg.seed, start))

    def save(iteration: int) -> Path | None:
        if not main:
            return None
        return checkpoint.save_checkpoint(exp_dir, iteration, {
            "iteration": iteration, "model": model.state_dict(),
            "criterion": criterion.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(), "torch_rng": torch.get_rng_state(),
            "num_classes": split.num_train_pids,
        })

    if start >= cfg.iterations:
        return TrainOutcome(start, "done")
    loader = build_train_loader(cfg, split, start, device, recipe)
    model.train()
    scopes.freeze_batchnorm_of_frozen(model)
    forward = model
    sizes, loss_weight, stats_weight = None, 1.0, None
    if dist_on:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.find_unused_parameters)
        sizes = loader.batch_sampler.local_sizes
        if not cfg.gather_embeddings:  # DDP averages: weight = this rank's share × world
            stats_weight = sizes[distributed.rank()] / sum(sizes)
            loss_weight = world * stats_weight
        log.info("data-parallel on %d processes (%s): %s images per rank, gather embeddings: %s",
                 world, device.type, sizes, cfg.gather_embeddings)
        if not cfg.gather_embeddings and min(sizes) < 2 * cfg.batch_k:
            log.warning("some ranks hold a single identity of each P×K batch: a loss that mines "
                        "pairs inside the batch (batch-hard) needs --gather-embeddings or "
                        "--batch-p >= %d", 2 * world)
    if cfg.compile:
        forward = torch.compile(forward)
    it, t_start, seen = start, time.monotonic(), 0
    t_log, seen_log = t_start, 0
    budget = cfg.max_train_minutes * 60 if cfg.max_train_minutes else math.inf
    stopped, signum = "done", None
    writer = tensorboard.open_writer(exp_dir, purge_step=start or None,
                                     enabled=cfg.tensorboard and main)
    bar = progress_bar(cfg, start) if main else None
    t_batch, rate_ema = t_start, 0.0
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    with contextlib.ExitStack() as cleanup, GracefulStop() as stop:
        cleanup.callback(writer.close)
        if bar is not None:
            cleanup.callback(bar.close)
            cleanup.enter_context(_redirect_logging(bar))
        for inputs, labels, _idx in loader:
            labels = labels.to(device, non_blocking=True)
            if isinstance(inputs, dict):  # model input under "image", the rest are targets
                targets = {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
                images = targets.pop("image")
                if channels_last and images.ndim == 4:
                    images = images.contiguous(memory_format=memory_format)
            else:
                images, targets = inputs.to(device, non_blocking=True), None
                if channels_last and images.ndim == 4:
                    images = images.contiguous(memory_format=memory_format)
            with autocast(device, dtype):
                outputs = forward(images)
            if dist_on and cfg.gather_embeddings:  # the loss sees the global batch
                outputs, labels, targets = distributed.gather_batch(outputs, labels, targets,
                                                                    sizes)
            loss, stats = (criterion(outputs, labels) if targets is None
                           else criterion(outputs, labels, targets))
            if dist_on:  # one value on every rank: the batch's mean, NaN when any rank's is
                stats = distributed.average_floats({**stats, "loss": float(loss.detach())},
                                                   stats_weight)
                finite = math.isfinite(stats["loss"])
            else:
                finite = bool(torch.isfinite(loss))
            if not finite:
                ckpts = checkpoint.list_checkpoints(exp_dir)
                kept = f"the last good checkpoint is {ckpts[-1][1]}" if ckpts else "no checkpoint was written yet"
                value = stats["loss"] if dist_on else loss.item()
                raise TrainingDivergedError(
                    f"training loss became {value} at iteration {it}; {kept}. "
                    "Lower --lr or check the data."
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss if loss_weight == 1.0 else loss * loss_weight).backward()
            if dist_on and loss_params and not cfg.gather_embeddings:
                distributed.average_gradients(loss_params)  # outside DDP
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            it += 1
            batch_images = images.shape[0] if sizes is None else sum(sizes)  # global batch
            seen += batch_images
            seen_log += batch_images
            lr = optimizer.param_groups[-1]["lr"]
            writer.scalars(it, {**stats, "lr": lr}, "train/")
            if bar is not None:
                now = time.monotonic()
                batch_rate = batch_images / max(now - t_batch, 1e-9)
                rate_ema = batch_rate if rate_ema == 0 else 0.7 * rate_ema + 0.3 * batch_rate
                t_batch = now
                bar.set_postfix_str(f"loss {stats['loss']:.4f} lr {lr:.3g} {rate_ema:.1f} img/s",
                                    refresh=False)
                bar.update(1)
            if it % cfg.log_every == 0 or it == cfg.iterations:
                now = time.monotonic()
                rate = seen_log / max(now - t_log, 1e-9)
                extra = " ".join(f"{k} {v:.4g}" for k, v in stats.items() if k != "loss")
                log.info("iter %d/%d loss %.4f lr %.3g %.1f img/s %s", it, cfg.iterations,
                         stats["loss"], lr, rate, extra)
                t_log, seen_log = now, 0
                if writer.enabled:
                    writer.scalars(it, {"images_per_second": rate}, "train/")
                    emb = outputs["embedding"].detach().float().cpu()
                    writer.histogram("train/embedding", emb, it)
                    writer.histogram("train/embedding_norm", emb.norm(dim=1), it)
            if it >= cfg.iterations:
                break
            sig, over_budget = stop.signum, time.monotonic() - t_start >= budget
            if dist_on:  # every rank stops at the same iteration
                sig, over_budget = distributed.max_ints([sig or 0, over_budget])
                sig = sig or None
            if sig is not None:
                stopped, signum = "signal", sig
                break
            if over_budget:
                stopped = "budget"
                break
            if it % cfg.checkpoint_every == 0:
                save(it)
    seconds = time.monotonic() - t_start  # the training loop's time, without the last save
    path = save(it)
    distributed.barrier()  # the other ranks may read this checkpoint next (a later stage)
    log.info("training %s at iteration %d (%.0f s, %.1f img/s); checkpoint %s", stopped, it,
             seconds, seen / max(seconds, 1e-9), path)
    return TrainOutcome(it, stopped, signum, seconds, seen / max(seconds, 1e-9))


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
