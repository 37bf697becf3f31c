"""The training loop: P×K batches, AMP on CUDA, schedules, atomic checkpoints, resume, clean stop."""

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
from reidcore.data.samplers import PKSampler
from reidcore.engine import checkpoint, schedules, scopes, tensorboard
from reidcore.engine.device import amp_dtype, autocast, resolve_device
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


def build_optimizer(cfg: TrainConfig, groups: list[dict]) -> torch.optim.Optimizer:
    """Adam or SGD over ``groups`` (each with ``lr_factor``); fused on CUDA where available.

    Raises:
        ValueError: unknown optimizer name.
    """
    for g in groups:
        g["lr"] = cfg.lr * g.get("lr_factor", 1.0)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; known: adam, sgd")


def build_train_loader(cfg: TrainConfig, split: Split, start_iteration: int,
                       device: torch.device, recipe: Recipe | None = None) -> DataLoader:
    """An infinite DataLoader of P×K batches ``(inputs, labels (B,), idx (B,))``.

    ``inputs`` is ``(B, C, H, W)`` float32, or a dict of batched tensors (see
    :meth:`reidcore.recipe.Recipe.train_dataset`); the recipe chooses the dataset and the
    sampler's classes (default: RGB images, relabelled pids).
    """
    recipe = recipe or Recipe()
    labels = recipe.train_labels(cfg, split)
    dataset = recipe.train_dataset(cfg, split, labels)
    sampler = PKSampler(labels, cfg.batch_p, cfg.batch_k, seed=cfg.seed,
                        start_iteration=start_iteration)
    return DataLoader(
        dataset, batch_sampler=sampler, num_workers=cfg.workers,
        pin_memory=device.type == "cuda", persistent_workers=False,
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

    Raises:
        TrainingDivergedError: the loss became NaN/inf; the newest checkpoint on disk is
            the last good one and is left untouched.
    """
    exp_dir = Path(exp_dir)
    device = resolve_device(cfg.device)
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
    criterion = recipe.build_criterion(cfg).to(device)
    groups = recipe.param_groups(cfg, model)
    loss_params = [p for p in criterion.parameters() if p.requires_grad]
    if loss_params:  # losses with trainable parts (e.g. a verification classifier)
        groups.append({"params": loss_params, "lr_factor": 1.0})
    optimizer = build_optimizer(cfg, groups)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedules.from_config(cfg))
    dtype = amp_dtype(device, cfg.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        criterion.load_state_dict(state.get("criterion", {}), strict="criterion" in state)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        start = int(state["iteration"])
        log.info("resumed from iteration %d", start)

    def save(iteration: int) -> Path:
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
    it, t_start, seen = start, time.monotonic(), 0
    t_log, seen_log = t_start, 0
    budget = cfg.max_train_minutes * 60 if cfg.max_train_minutes else math.inf
    stopped, signum = "done", None
    writer = tensorboard.open_writer(exp_dir, purge_step=start or None, enabled=cfg.tensorboard)
    bar = progress_bar(cfg, start)
    t_batch, rate_ema = t_start, 0.0
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
            else:
                images, targets = inputs.to(device, non_blocking=True), None
            with autocast(device, dtype):
                outputs = model(images)
            loss, stats = (criterion(outputs, labels) if targets is None
                           else criterion(outputs, labels, targets))
            if not torch.isfinite(loss):
                ckpts = checkpoint.list_checkpoints(exp_dir)
                kept = f"the last good checkpoint is {ckpts[-1][1]}" if ckpts else "no checkpoint was written yet"
                raise TrainingDivergedError(
                    f"training loss became {loss.item()} at iteration {it}; {kept}. "
                    "Lower --lr or check the data."
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            it += 1
            seen += images.shape[0]
            seen_log += images.shape[0]
            lr = optimizer.param_groups[-1]["lr"]
            writer.scalars(it, {**stats, "lr": lr}, "train/")
            if bar is not None:
                now = time.monotonic()
                batch_rate = images.shape[0] / max(now - t_batch, 1e-9)
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
            if stop.requested:
                stopped, signum = "signal", stop.signum
                break
            if time.monotonic() - t_start >= budget:
                stopped = "budget"
                break
            if it % cfg.checkpoint_every == 0:
                save(it)
    path = save(it)
    seconds = time.monotonic() - t_start
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
