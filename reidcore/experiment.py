"""Experiment directories: ``args.json``, the log, checkpoints, embeddings and ``report.json``.

Layout::

    EXPERIMENT/
      args.json              recipe name, its full config, reidcore version
      train.log              everything logged by training and evaluation
      checkpoints/           checkpoint-NNNNNNN.pt (newest two kept)
      embeddings/            query.h5, gallery.h5 (dataset ``embs`` N×D float32, pids, camids, paths)
      report.json            CMC rank-1/5/10/20, mAP, query counts, training summary
      events.out.tfevents.*  TensorBoard scalars and histograms (tensorboard --logdir EXPERIMENT)
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from reidcore import __version__
from reidcore.atomic import atomic_write_json
from reidcore.errors import ExperimentError

ARGS = "args.json"
REPORT = "report.json"
LOG = "train.log"


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically (:func:`reidcore.atomic.atomic_write_json`)."""
    atomic_write_json(path, data)


def default_experiment_dir(recipe: str, dataset: str) -> Path:
    return Path("experiments") / f"{recipe}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def create(exp_dir: Path, recipe: str, config: dict[str, Any]) -> None:
    """Start a new experiment by writing ``args.json``.

    Raises:
        ExperimentError: ``exp_dir`` already holds an experiment (nothing is overwritten).
    """
    if (exp_dir / ARGS).exists():
        raise ExperimentError(
            f"experiment {exp_dir} already exists; continue it with --resume --experiment "
            f"{exp_dir}, or choose another --experiment folder"
        )
    write_json(exp_dir / ARGS, {"recipe": recipe, "reidcore_version": __version__, "config": config})


def final_training_dir(exp_dir: Path) -> Path:
    """Where the experiment's final model was trained: ``exp_dir``, or for a multi-stage
    recipe its last stage folder ``exp_dir/stages/NAME`` (stages sort by name)."""
    stages = Path(exp_dir) / "stages"
    if not (Path(exp_dir) / "checkpoints").is_dir() and stages.is_dir():
        done = sorted(p for p in stages.iterdir() if (p / ARGS).exists())
        if done:
            return done[-1]
    return Path(exp_dir)


def read_args(exp_dir: Path) -> dict[str, Any]:
    """``args.json`` of an existing experiment.

    Raises:
        ExperimentError: the folder or its ``args.json`` is missing or unreadable.
    """
    path = exp_dir / ARGS
    if not exp_dir.is_dir():
        raise ExperimentError(f"cannot resume: experiment folder {exp_dir} does not exist")
    if not path.is_file():
        raise ExperimentError(f"cannot resume: {path} is missing (is {exp_dir} an experiment folder?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {"recipe": data["recipe"], "config": dict(data["config"])}
    except (ValueError, KeyError, TypeError) as exc:
        raise ExperimentError(f"cannot read {path}: {exc}") from exc


def setup_logging(exp_dir: Path | None) -> logging.Logger:
    """Log ``reidcore`` messages to stdout and, with an experiment, to its ``train.log``."""
    logger = logging.getLogger("reidcore")
    logger.setLevel(logging.INFO)
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(fmt)
    logger.addHandler(stream)
    if exp_dir is not None:
        exp_dir.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(exp_dir / LOG, encoding="utf-8")
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    logger.propagate = False
    return logger
