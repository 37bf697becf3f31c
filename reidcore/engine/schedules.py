"""Learning-rate schedules as a factor of the base learning rate per iteration."""

from __future__ import annotations

from bisect import bisect_right

SCHEDULES = ("trinet", "multistep", "constant")


def lr_factor(iteration: int, *, schedule: str, iterations: int, decay_start_iteration: int = 0,
              final_lr_factor: float = 1e-3, milestones: tuple[int, ...] = (), gamma: float = 0.1,
              warmup_iterations: int = 0, warmup_factor: float = 0.01) -> float:
    """Multiplier of the base learning rate at ``iteration`` (0-based).

    - ``trinet``: constant until ``decay_start_iteration`` t0, then exponential decay
      reaching ``final_lr_factor`` at the last iteration T (Hermans et al. 2017, Sec. 4.2,
      eq. 7: ``lr(t) = lr0 * 0.001 ** ((t - t0) / (T - t0))``).
    - ``multistep``: multiplied by ``gamma`` at each milestone.
    - ``constant``: 1.
    A linear warm-up from ``warmup_factor`` to 1 over ``warmup_iterations`` multiplies
    any of them.

    Raises:
        ValueError: unknown schedule name.
    """
    if schedule == "trinet":
        if iteration < decay_start_iteration or iterations <= decay_start_iteration:
            factor = 1.0
        else:
            progress = (iteration - decay_start_iteration) / (iterations - decay_start_iteration)
            factor = final_lr_factor ** min(progress, 1.0)
    elif schedule == "multistep":
        factor = gamma ** bisect_right(sorted(milestones), iteration)
    elif schedule == "constant":
        factor = 1.0
    else:
        raise ValueError(f"unknown schedule {schedule!r}; known: {', '.join(SCHEDULES)}")
    if warmup_iterations > 0 and iteration < warmup_iterations:
        alpha = iteration / warmup_iterations
        factor *= warmup_factor * (1 - alpha) + alpha
    return factor


def from_config(cfg) -> callable:
    """``iteration -> factor`` for a :class:`~reidcore.recipe.TrainConfig`."""
    def fn(iteration: int) -> float:
        return lr_factor(
            iteration, schedule=cfg.schedule, iterations=cfg.iterations,
            decay_start_iteration=cfg.decay_start_iteration, final_lr_factor=cfg.final_lr_factor,
            milestones=tuple(cfg.milestones), gamma=cfg.gamma,
            warmup_iterations=cfg.warmup_iterations, warmup_factor=cfg.warmup_factor,
        )
    return fn
