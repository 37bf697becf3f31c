"""Experiment directories: ``args.json``, the log, checkpoints, embeddings and ``report.json``.

Layout::

    EXPERIMENT/
      args.json              recipe name, its full config, reidcore version, args history
      train.log              everything logged by training and evaluation (errors included)
      checkpoints/           checkpoint-NNNNNNN.pt (newest two kept)   (single-stage recipes)
      stages/NAME/           one sub-experiment per stage of a staged recipe (its own
                             args.json and checkpoints/), trained in name order; unless
                             --keep-stage-checkpoints, a stage's checkpoints are removed once
                             the next stage has its own (outcome.json records how it ended)
                             and a finished run keeps its final weights only
                             (:mod:`reidcore.retention`)
      embeddings/            query.h5, gallery.h5 of the experiment's own dataset
      other-embeddings/      ``embed`` of another dataset (never mixed with the above)
      report.json            CMC rank-1/5/10/20, mAP, query counts, training summary, the
                             checkpoint evaluated; ``"status": "failed"`` and the error when
                             the run failed after the folder was made
      events.out.tfevents.*  TensorBoard scalars and histograms (tensorboard --logdir EXPERIMENT)

:class:`Experiment` is the folder (create, open, resume, its stages, its final model's folder,
its evaluation settings); :func:`reidcore.trained.load_trained` is the one way to get a trained
model and its preprocessing from it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import attrs

from reidcore import __version__
from reidcore.atomic import atomic_write_json
from reidcore.errors import ExperimentError

ARGS = "args.json"
REPORT = "report.json"
LOG = "train.log"
CHECKPOINTS = "checkpoints"
STAGES = "stages"
EMBEDDINGS = "embeddings"
OTHER_EMBEDDINGS = "other-embeddings"


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically (:func:`reidcore.atomic.atomic_write_json`)."""
    atomic_write_json(path, data)


def default_experiment_dir(recipe: str, dataset: str) -> Path:
    return Path("experiments") / f"{recipe}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def has_checkpoints(folder: Path) -> bool:
    """Whether ``folder/checkpoints`` holds a ``checkpoint-*.pt`` file."""
    ckpt = Path(folder) / CHECKPOINTS
    return ckpt.is_dir() and any(ckpt.glob("checkpoint-*.pt"))


def check_new_folder(exp_dir: Path) -> None:
    """Refuse to start a new experiment where one (or its checkpoints) already is.

    Raises:
        ExperimentError: ``exp_dir`` holds ``args.json``, or checkpoints without it (a new
            run would silently resume those weights under new flags).
    """
    exp_dir = Path(exp_dir)
    if (exp_dir / ARGS).exists():
        raise ExperimentError(
            f"experiment {exp_dir} already exists; continue it with --resume --experiment "
            f"{exp_dir}, or choose another --experiment folder"
        )
    if has_checkpoints(exp_dir) or has_checkpoints(exp_dir / STAGES):
        raise ExperimentError(
            f"{exp_dir} holds checkpoints but no {ARGS}: it is not a new folder; continue a "
            f"run with --resume --experiment {exp_dir} (needs its {ARGS}), or choose another "
            f"--experiment folder")


def create(exp_dir: Path, recipe: str, config: dict[str, Any]) -> None:
    """Start a new experiment by writing ``args.json`` (see :func:`check_new_folder`)."""
    check_new_folder(exp_dir)
    write_json(Path(exp_dir) / ARGS,
               {"recipe": recipe, "reidcore_version": __version__, "config": config})


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data["config"], dict):
            raise TypeError("not an object with a 'config' object")
        str(data["recipe"])
        return data
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise ExperimentError(f"cannot read {path}: {exc}") from exc


def read_args(exp_dir: Path) -> dict[str, Any]:
    """``{"recipe", "config"}`` of ``exp_dir``'s ``args.json``.

    Raises:
        ExperimentError: the folder or its ``args.json`` is missing or unreadable.
    """
    exp_dir = Path(exp_dir)
    path = exp_dir / ARGS
    if not exp_dir.is_dir():
        raise ExperimentError(f"experiment folder {exp_dir} does not exist")
    if not path.is_file():
        raise ExperimentError(f"{path} is missing (is {exp_dir} an experiment folder?)")
    data = _read_json(path)
    return {"recipe": data["recipe"], "config": dict(data["config"])}


def final_training_dir(exp_dir: Path) -> Path:
    """Where the experiment's final model was trained (see :meth:`Experiment.final_dir`)."""
    return Experiment.open(exp_dir).final_dir


def split_key(dataset: str, data: Any) -> tuple[str, str | None]:
    """A comparable ``(dataset, resolved data folder)``."""
    return str(dataset), (str(Path(str(data)).expanduser().resolve()) if data else None)


@attrs.define
class Experiment:
    """An experiment folder: its recipe and config (``args.json``) and what training wrote.

    A single-stage recipe trains in the folder itself (one stage); a staged recipe trains
    each stage in ``stages/NAME`` (each an experiment folder of its own) and its final model
    is the last stage's. Create with :meth:`create`, open with :meth:`open`.

    Attributes:
        path: the folder.
        recipe: the recipe name of ``args.json``.
        config: its ``config`` mapping (JSON values).
    """

    path: Path
    recipe: str
    config: dict[str, Any]

    @classmethod
    def open(cls, path: str | Path) -> Experiment:
        """An existing experiment.

        Raises:
            ExperimentError: no such folder, or no readable ``args.json``.
        """
        saved = read_args(Path(path))
        return cls(Path(path), saved["recipe"], saved["config"])

    @classmethod
    def create(cls, path: str | Path, recipe: str, config: dict[str, Any]) -> Experiment:
        """Write ``args.json`` of a new experiment (see :func:`check_new_folder`)."""
        create(Path(path), recipe, config)
        return cls(Path(path), recipe, dict(config))

    # -- files
    @property
    def args_path(self) -> Path:
        return self.path / ARGS

    @property
    def report_path(self) -> Path:
        return self.path / REPORT

    @property
    def log_path(self) -> Path:
        return self.path / LOG

    @property
    def embeddings_dir(self) -> Path:
        return self.path / EMBEDDINGS

    # -- stages
    def stage_dirs(self) -> list[Path]:
        """The folders where training happened, in training order: ``[path]`` for a
        single-stage recipe, else ``stages/NAME`` (sorted by name) that hold ``args.json``."""
        stages = self.path / STAGES
        if not (self.path / CHECKPOINTS).is_dir() and stages.is_dir():
            found = sorted(p for p in stages.iterdir() if (p / ARGS).is_file())
            if found:
                return found
        return [self.path]

    @property
    def final_dir(self) -> Path:
        """The folder of the final model (the last stage's for a staged recipe)."""
        return self.stage_dirs()[-1]

    def final_args(self) -> dict[str, Any]:
        """``{"recipe", "config"}`` the final model was trained with."""
        final = self.final_dir
        if final == self.path:
            return {"recipe": self.recipe, "config": dict(self.config)}
        return read_args(final)

    def eval_settings(self, **overrides: Any):
        """The :class:`~reidcore.evaluation.evaluate_embeddings.EvalSettings` the experiment
        was evaluated with (its final model's config); overrides that are not None win."""
        from reidcore.evaluation.evaluate_embeddings import EvalSettings

        return EvalSettings.from_config(self.final_args()["config"], **overrides)

    def is_own_split(self, dataset: str | None, data: Any) -> bool:
        """Whether ``(dataset, data)`` is the split the experiment was evaluated on (None:
        the experiment's own value)."""
        cfg = self.final_args()["config"]
        mine = split_key(cfg.get("dataset", ""), cfg.get("data"))
        theirs = split_key(dataset or cfg.get("dataset", ""),
                           data if data is not None else cfg.get("data"))
        return mine == theirs

    def embeddings_path(self, part: str, dataset: str | None = None, data: Any = None,
                        suffix: str = ".h5") -> Path:
        """Default output of ``embed``: ``embeddings/PART.h5`` for the experiment's own split,
        else ``other-embeddings/DATASET[-HASH]/PART.h5`` (never the own files)."""
        if self.is_own_split(dataset, data):
            return self.embeddings_dir / f"{part}{suffix}"
        cfg = self.final_args()["config"]
        name = dataset or cfg.get("dataset", "dataset")
        folder = split_key(name, data if data is not None else cfg.get("data"))[1]
        tag = f"-{hashlib.sha256(folder.encode()).hexdigest()[:8]}" if folder else ""
        return self.path / OTHER_EMBEDDINGS / f"{name}{tag}" / f"{part}{suffix}"

    # -- changes
    def update_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """Write ``config`` to ``args.json``, appending the replaced values to its
        ``"history"`` (``[{"time", "reidcore_version", "previous": {field: old value}}]``).

        Returns the changed fields' previous values (empty: nothing written).
        """
        data = _read_json(self.args_path)
        previous = {k: data["config"].get(k) for k, v in config.items()
                    if data["config"].get(k, object()) != v}
        if not previous:
            return {}
        history = list(data.get("history", []))
        history.append({"time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                        "reidcore_version": __version__, "previous": previous})
        write_json(self.args_path, {**data, "config": dict(config), "history": history})
        self.config = dict(config)
        return previous

    def mark_failed(self, error: BaseException | str, phase: str) -> None:
        """Record a failed run in ``report.json`` (``"status": "failed"``), keeping the last
        successful report's values under ``"previous"`` when there was one."""
        previous = None
        if self.report_path.is_file():
            try:
                previous = json.loads(self.report_path.read_text(encoding="utf-8"))
            except ValueError:
                previous = None
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        report = {"recipe": self.recipe, "status": "failed", "phase": phase, "error": message,
                  "reidcore_version": __version__}
        if previous and previous.get("status") != "failed":
            report["previous"] = previous
        write_json(self.report_path, report)


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
