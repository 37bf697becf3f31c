"""What a checkpoint must hold for an exact resume, and how the restored optimizer takes new flags.

Random state: torch's CPU generator, every initialised CUDA generator, Python's ``random`` and
``numpy.random`` (as plain ints and tensors, so a checkpoint loads with
``torch.load(weights_only=True)``). Augmentation does not depend on it (each image is drawn
under its own seed, :mod:`reidcore.data.seeded`); dropout and a loss's own sampling do.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

log = logging.getLogger("reidcore")


def capture_rng() -> dict[str, Any]:
    """The global random state: ``{"torch", "cuda", "python", "numpy"}``."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "python": [version, list(mt), gauss],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng` returned (missing parts are left as they are)."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        cuda = list(state["cuda"])[:torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(cuda)
    if "python" in state:
        version, mt, gauss = state["python"]
        random.setstate((version, tuple(mt), gauss))
    if "numpy" in state:
        n = state["numpy"]
        np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                             n["has_gauss"], n["cached"]))


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict) -> None:
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


def apply_optimizer_config(optimizer: torch.optim.Optimizer,
                           scheduler: torch.optim.lr_scheduler.LambdaLR,
                           wanted: Sequence[dict[str, float]], factor: Callable[[int], float],
                           iteration: int) -> list[str]:
    """Give a restored optimizer the configured hyper-parameters; returns what changed.

    Args:
        optimizer, scheduler: restored from a checkpoint.
        wanted: per parameter group, the configured ``lr`` (base, before the schedule),
            ``weight_decay`` and, for SGD, ``momentum``.
        factor: the schedule (``iteration -> lr factor``) of the current config.
        iteration: the restored iteration.

    Each group's learning rate becomes ``base lr × factor(iteration)``, exactly what the
    scheduler would have set, so a resume without new flags is bit-identical and one with
    ``--lr``, ``--weight-decay``, ``--momentum`` or new schedule flags continues with them.
    Every change is logged (``resume: group 0 lr 0.0003 -> 0.001``).
    """
    changes = []
    for i, (group, want) in enumerate(zip(optimizer.param_groups, wanted, strict=True)):
        if scheduler.base_lrs[i] != want["lr"]:
            changes.append(f"group {i} lr {scheduler.base_lrs[i]:g} -> {want['lr']:g}")
            scheduler.base_lrs[i] = want["lr"]
            group["initial_lr"] = want["lr"]
        for key in ("weight_decay", "momentum"):
            if key in group and key in want and group[key] != want[key]:
                changes.append(f"group {i} {key} {group[key]:g} -> {want[key]:g}")
                group[key] = want[key]
                if key == "momentum" and "nesterov" in group:
                    group["nesterov"] = want[key] > 0
        group["lr"] = scheduler.base_lrs[i] * factor(iteration)
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
    for change in changes:
        log.info("resume: %s (applied to the restored optimizer)", change)
    return changes
