"""``--fit-schedule-to-budget``: scale the whole schedule so that it ends within ``--max-train-minutes``.

The trainer times a few throw-away iterations (:data:`WARMUP` untimed, then :data:`TIMED`),
restores the model, the loss and the random state, and trains the schedule scaled by
``N / iterations`` where ``N`` iterations at the measured speed fill :data:`SAFETY` of the
budget that is left: the iteration count, the decay start, the milestones and the warm-up
all scale, so the learning rate decays as planned instead of being cut off by the budget.

Those few timed iterations take seconds, and other work on the machine in those seconds
skews them: on the Market-1501 holdout a ``dcnn`` run timed 0.91 s per iteration while
another run was starting beside it, then trained at 0.49 s and left half its budget unused;
a ``bot`` run timed 1.07 s, trained at 1.18 s and was stopped at iteration 750 of 808.
So :class:`RefitHook` times the real iterations once more, over the first
:data:`REFIT_FRACTION` of the schedule, and scales the schedule again when the count it
gives differs by more than :data:`REFIT_TOLERANCE` (once, in the run that fitted).

The chosen schedule is recorded (``schedule.json`` in the experiment folder, written before
the first real iteration and again at a re-fit, and in every checkpoint) and a resumed run
reads it instead of timing again, so it continues the same schedule exactly.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import attrs

from reidcore.atomic import atomic_write_json
from reidcore.engine.loop import Hook, TrainLoop

log = logging.getLogger("reidcore")

WARMUP, TIMED = 2, 5  # throw-away iterations: untimed (worker start-up, allocator), timed
#: fraction of the remaining budget the fitted schedule plans to use. 0.9 left a tenth of every
#: budget unused: on the Market-1501 holdout the `bot` recipe then trained 695 iterations in
#: 15 minutes where the plain reference script trained 785 at the same speed (1.15 s each),
#: and scored 2.5 points mAP lower. The 5-iteration timing varied by about ±10 % between runs
#: there (other work on the machine shifts it); a run slower than timed loses only its last
#: iterations (at the lowest learning rate) to the budget stop.
SAFETY = 0.97
#: the re-fit: at iteration ``max(REFIT_FRACTION × fitted, REFIT_MIN_STEPS)``, when the
#: count from the real iterations' speed differs from the fitted one by more than
#: ``REFIT_TOLERANCE`` of it
REFIT_FRACTION, REFIT_MIN_STEPS, REFIT_TOLERANCE = 0.05, 10, 0.03
SCHEDULE_FILE = "schedule.json"
FIELDS = ("iterations", "decay_start_iteration", "milestones", "warmup_iterations")


def scaled_schedule(cfg: Any, iterations: int) -> dict[str, Any]:
    """The schedule fields of ``cfg`` scaled to ``iterations`` (rounded, order kept).

    Raises:
        ValueError: ``iterations < 1``.
    """
    if iterations < 1:
        raise ValueError(f"a fitted schedule needs at least 1 iteration, got {iterations}")
    f = iterations / cfg.iterations
    return {
        "iterations": int(iterations),
        "decay_start_iteration": min(round(cfg.decay_start_iteration * f), iterations),
        "milestones": [min(round(m * f), iterations) for m in cfg.milestones],
        "warmup_iterations": min(round(cfg.warmup_iterations * f), iterations),
    }


def fitted_iterations(budget_seconds: float, spent_seconds: float,
                      seconds_per_iteration: float) -> int:
    """How many iterations fill :data:`SAFETY` of the budget left (at least 1)."""
    left = max(budget_seconds - spent_seconds, 0.0) * SAFETY
    return max(int(left / max(seconds_per_iteration, 1e-9)), 1)


def apply(cfg: Any, record: dict[str, Any]) -> Any:
    """``cfg`` with the recorded schedule fields."""
    return attrs.evolve(cfg, **{k: (tuple(v) if k == "milestones" else v)
                                for k, v in record.items() if k in FIELDS})


def read_record(exp_dir: Path) -> dict[str, Any] | None:
    """The recorded schedule of ``exp_dir`` (``schedule.json``), or None."""
    path = Path(exp_dir) / SCHEDULE_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the fitted schedule {path}: {exc}") from exc


def write_record(exp_dir: Path, cfg: Any, record: dict[str, Any], seconds_per_iteration: float,
                 budget_minutes: float) -> dict[str, Any]:
    """Write ``schedule.json`` (the fields, the planned ones, the timing and the fraction of
    the budget planned for, :data:`SAFETY`); returns it."""
    full = {**record, "planned": {k: (list(getattr(cfg, k)) if k == "milestones"
                                      else getattr(cfg, k)) for k in FIELDS},
            "seconds_per_iteration": seconds_per_iteration, "max_train_minutes": budget_minutes,
            "budget_fraction": SAFETY}
    atomic_write_json(Path(exp_dir) / SCHEDULE_FILE, full)
    log.info("schedule fitted to the %.3g-minute budget: %d iterations (planned %d) at %.3g s per "
             "iteration; decay start %d, milestones %s, warm-up %d", budget_minutes,
             record["iterations"], cfg.iterations, seconds_per_iteration,
             record["decay_start_iteration"], record["milestones"], record["warmup_iterations"])
    return full


class RefitHook(Hook):
    """Re-fit a freshly fitted schedule once, from the speed of its first real iterations.

    At iteration ``r = max(ceil(REFIT_FRACTION × n), REFIT_MIN_STEPS)`` of the ``n`` fitted
    iterations, the seconds per iteration since the end of the loop's first step (its data
    loader start-up left out) give ``n' = r + fitted_iterations(budget, spent, speed)``.
    When ``|n' − n| > REFIT_TOLERANCE × n`` the planned schedule is scaled to ``n'`` (the
    iteration count, the decay start, the milestones and the warm-up, as the first fit),
    ``on_refit(record)`` installs it (the learning rate of iteration ``r`` on follows it),
    ``loop.max_iter`` becomes ``n'``, and the record is written to ``schedule.json`` with a
    ``"refit"`` entry (``iteration``, ``seconds_per_iteration``, the first fit's fields and
    speed). Nothing happens when ``r >= n``. Under ``torchrun`` rank 0 decides and
    broadcasts (every rank calls this hook at the same iteration).

    Args:
        planned: the recipe's own config (its planned schedule, before any fitting).
        first: the first fit's full record (:func:`write_record`'s return).
        budget_seconds: ``--max-train-minutes`` in seconds.
        t_start: ``time.monotonic()`` when the budget's clock started.
        on_refit: installs a new record's schedule in the optimizer's scheduler.
        exp_dir, main: where the record goes; whether this process writes it.
        broadcast: rank 0's object on every rank
            (:func:`reidcore.engine.distributed.broadcast_object`).
    """

    def __init__(self, planned: Any, first: dict[str, Any], budget_seconds: float,
                 t_start: float, on_refit, exp_dir: Path, main: bool, broadcast=lambda o: o):
        self.planned, self.first = planned, first
        self.budget_seconds, self.t_start = budget_seconds, t_start
        self.on_refit, self.exp_dir, self.main, self.broadcast = on_refit, exp_dir, main, broadcast
        n = first["iterations"]
        self.at = max(math.ceil(n * REFIT_FRACTION), REFIT_MIN_STEPS)
        self._t_first: float | None = None
        self._first_iteration = 0

    def before_train(self, loop: TrainLoop) -> None:
        self._first_iteration = loop.iteration + 1

    def after_step(self, loop: TrainLoop) -> None:
        if loop.iteration == self._first_iteration:
            self._t_first = time.monotonic()
        if loop.iteration != self.at or self.at >= self.first["iterations"] or self._t_first is None:
            return
        now = time.monotonic()
        speed = (now - self._t_first) / max(loop.iteration - self._first_iteration, 1)
        n = int(loop.iteration + fitted_iterations(self.budget_seconds, now - self.t_start, speed))
        if abs(n - self.first["iterations"]) <= REFIT_TOLERANCE * self.first["iterations"]:
            n = None
        n = self.broadcast(n)
        if n is None:
            log.info("schedule re-fit at iteration %d: %d iterations at %.3g s per iteration "
                     "stay (within %g %% of the fit)", loop.iteration, self.first["iterations"],
                     speed, 100 * REFIT_TOLERANCE)
            return
        record = {**scaled_schedule(self.planned, n), "refit": {
            "iteration": loop.iteration, "seconds_per_iteration": speed,
            "first": {k: self.first[k] for k in (*FIELDS, "seconds_per_iteration")}}}
        self.on_refit(record)
        loop.max_iter = n
        if self.main:
            full = {**self.first, **record}
            atomic_write_json(Path(self.exp_dir) / SCHEDULE_FILE, full)
        log.info("schedule re-fit at iteration %d to %d iterations (fitted %d) at %.3g s per "
                 "iteration; decay start %d, milestones %s, warm-up %d", loop.iteration, n,
                 self.first["iterations"], speed, record["decay_start_iteration"],
                 record["milestones"], record["warmup_iterations"])
