"""What a staged experiment keeps on disk: only what ``--resume`` and ``export`` need.

A full checkpoint holds the weights plus the optimizer state (Adam: two more copies of every
trained parameter), so a PSE run on ResNet-18 (29 M parameters) writes about 110 MB per stage
and up to 350 MB per checkpoint of its last stage. Unless ``--keep-stage-checkpoints`` is given,
:func:`reidcore.pipeline.run` therefore

1. removes a stage's checkpoints once the next stage has a checkpoint of its own (the next
   stage started from the stage's final weights and resumes from its own checkpoints); the
   stage folder keeps ``args.json``, ``train.log`` and ``outcome.json`` (how its training
   ended: ``iteration``, ``stopped``, ``seconds``, ``images_per_second``);
2. when the last stage has finished all its iterations, keeps only its newest checkpoint and
   rewrites it with the weights alone (``iteration``, ``model``, ``criterion``,
   ``num_classes``; no optimizer, scheduler, scaler or RNG state).

``--resume`` of such an experiment skips the removed stages and re-evaluates the final weights;
``export``/``embed``/``evaluate``/:func:`reidcore.trained.load_trained` read the final weights.
Training a finished experiment further is refused (:func:`check_can_continue`): start a new
experiment with ``--init-checkpoint EXPERIMENT`` instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reidcore.atomic import atomic_write_bytes
from reidcore.engine import checkpoint
from reidcore.errors import ExperimentError
from reidcore.experiment import write_json

OUTCOME = "outcome.json"
WEIGHTS_KEYS = ("iteration", "model", "criterion", "num_classes")


def _load(path: Path) -> dict[str, Any]:
    """A checkpoint's state, read with ``weights_only=True`` (checkpoint.load_checkpoint_file)."""
    return checkpoint.load_checkpoint_file(Path(path))


def remove_stage_checkpoints(stage_dir: Path, outcome: dict[str, Any], successor: Path) -> bool:
    """Write ``stage_dir/outcome.json`` and delete ``stage_dir/checkpoints/*.pt`` — only when
    ``successor`` (the next stage's folder) holds a checkpoint. Returns whether it removed."""
    stage_dir = Path(stage_dir)
    found = checkpoint.list_checkpoints(stage_dir)
    if not found or not checkpoint.list_checkpoints(successor):
        return False
    write_json(stage_dir / OUTCOME, {**outcome, "final_checkpoint": found[-1][1].name,
                                     "checkpoints": f"removed once {Path(successor).name} "
                                                    "had a checkpoint of its own"})
    for _it, path in found:
        path.unlink(missing_ok=True)
    folder = stage_dir / checkpoint.CHECKPOINT_DIR
    if not any(folder.iterdir()):
        folder.rmdir()
    return True


def keep_final_weights(train_dir: Path) -> Path | None:
    """Delete all but the newest checkpoint of ``train_dir`` and rewrite that one with the
    weights alone (:data:`WEIGHTS_KEYS`, plus ``"weights_only": True``). Returns its path,
    or None when there was nothing to change. The model digest is unchanged."""
    found = checkpoint.list_checkpoints(train_dir)
    if not found:
        return None
    newest = found[-1][1]
    state = _load(newest)
    if state.get("weights_only") and len(found) == 1:
        return None
    if not state.get("weights_only"):
        import torch

        slim = {k: state[k] for k in WEIGHTS_KEYS if k in state}
        atomic_write_bytes(newest, lambda f: torch.save({**slim, "weights_only": True}, f))
    for _it, path in found[:-1]:
        path.unlink(missing_ok=True)
    return newest


def removed_outcome(stage_dir: Path) -> dict[str, Any] | None:
    """The ``outcome.json`` of a stage whose checkpoints were removed, else None."""
    path = Path(stage_dir) / OUTCOME
    if checkpoint.list_checkpoints(stage_dir) or not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, OSError) as exc:
        raise ExperimentError(f"cannot read {path}: {exc}") from exc


def final_weights(train_dir: Path) -> dict[str, Any] | None:
    """The newest checkpoint's state when it holds the weights alone (a finished run), else None."""
    found = checkpoint.list_checkpoints(train_dir)
    if not found:
        return None
    state = _load(found[-1][1])
    return state if state.get("weights_only") else None


def check_can_continue(train_dir: Path, iterations: int) -> None:
    """Refuse to train a finished stage past the iteration its weights-only checkpoint has.

    Raises:
        ExperimentError: ``iterations`` exceeds that checkpoint's iteration (its optimizer
            state is gone); names the folder and the way forward.
    """
    state = final_weights(train_dir)
    if state is not None and iterations > int(state["iteration"]):
        raise ExperimentError(
            f"{train_dir} finished at iteration {state['iteration']} and keeps its final weights "
            f"only (no optimizer state), so it cannot train to {iterations} iterations; start a "
            f"new experiment with --init-checkpoint {train_dir}; nothing was changed")
