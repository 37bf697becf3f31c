"""``run`` = train → embed query/gallery → evaluate → report, in one experiment directory.

Order of work, so that bad input costs seconds and leaves nothing behind:

1. check the config against the registries, the folder (a new run refuses a folder with
   checkpoints), read the dataset and build the (first) model — no folder exists yet;
   with ``--resume`` the changed config is also loaded against the saved weights before
   ``args.json`` is rewritten (its ``history`` keeps the replaced values);
2. create the folder (``args.json``, ``train.log``) and train each stage;
3. embed and evaluate with :func:`reidcore.evaluation.evaluate_embeddings.evaluate_embeddings`
   and write ``report.json``.

A failure in step 1 or 2 before training began removes the folder this call created; a
failure later is logged in ``train.log`` and ``report.json`` says ``"status": "failed"``.
SIGINT/SIGTERM stop training after the batch (checkpoint saved) and stop embedding or
evaluation at once; either way the exit code is ``128 + signal`` and ``--resume`` continues.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import attrs

from reidcore import __version__, experiment, retention
from reidcore.data.records import Split
from reidcore.data.verify import verify_split
from reidcore.heartbeat import Heartbeat
from reidcore.interrupts import Interrupted, interruptible
from reidcore.recipe import Recipe, TrainConfig, check_registered
from reidcore.registry import get_recipe, load_dataset

log = logging.getLogger("reidcore")
HEARTBEAT_SECONDS = 25.0  # a line at least this often without a progress bar (issue 13)


def _ids(samples, part: str):
    import numpy as np

    pids = np.array([s.pid for s in samples], dtype=np.int64)
    camids = np.array([s.camid for s in samples], dtype=np.int64)
    tracklets = None
    if samples and all("tracklet" in s.extras for s in samples):  # video: pooled later
        tracklets = np.array([s.extras["tracklet"] for s in samples], dtype=np.int64)
    return pids, camids, tracklets


def embed_split(trained, split: Split, out_dir: Path | None, device) -> dict[str, Any]:
    """Embed ``split.query`` and ``split.gallery`` with a :class:`~reidcore.trained.Trained`.

    Writes ``out_dir/{query,gallery}.h5`` (recording ``trained.checkpoint``) when
    ``out_dir`` is given. Returns ``{part: EmbeddingSet}`` on rank 0, ``{}`` on the other
    ranks under DDP (every rank embeds its share; rank 0 alone writes).
    """
    from reidcore.embeddings import write_embeddings
    from reidcore.engine import distributed
    from reidcore.evaluation.evaluate_embeddings import EmbeddingSet

    main = distributed.is_main()
    if out_dir is not None and main:
        out_dir.mkdir(parents=True, exist_ok=True)
    sets = {}
    for part in ("query", "gallery"):
        samples = getattr(split, part)
        e, aug = trained.embed(samples, device)
        pids, camids, tracklets = _ids(samples, part)
        sets[part] = EmbeddingSet(e, pids, camids, tracklets)
        if out_dir is not None and main:
            write_embeddings(out_dir / f"{part}.h5", e, pids, camids, [s.path for s in samples],
                             augmented=aug, tracklets=tracklets,
                             attrs={**trained.checkpoint, "dataset": trained.config.dataset,
                                    "part": part})
    return sets if main else {}


def embed_and_evaluate(trained, split: Split, out_dir: Path | None, device,
                       rerank: bool = True) -> dict[str, Any]:
    """Embed query and gallery (:func:`embed_split`) and score them with the config's
    evaluation settings (:func:`~reidcore.evaluation.evaluate_embeddings.evaluate_embeddings`;
    ``rerank=False`` leaves re-ranking out). Rank 0 returns the report dict, others ``{}``."""
    from reidcore.evaluation.evaluate_embeddings import evaluate_embeddings

    with interruptible("embedding"):
        sets = embed_split(trained, split, out_dir, device)
    if not sets:
        return {}
    settings = trained.settings(**({} if rerank else {"rerank": "none"}))
    with interruptible("evaluation"):
        return evaluate_embeddings(sets["query"], sets["gallery"], settings)


class _Buffer(logging.Handler):
    """Holds log records until the experiment's train.log exists."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _start_log(exp_dir: Path, buffer: _Buffer) -> None:
    logger = experiment.setup_logging(exp_dir)
    files = [h for h in logger.handlers if isinstance(h, logging.FileHandler)]
    for record in buffer.records:
        for h in files:
            h.handle(record)


def run(recipe_name: str, cfg: TrainConfig, exp_dir: Path, *, resume: bool = False,
        eval_untrained: bool = False, evaluate_after: bool = True) -> int:
    """Train (or resume) and, when training completes, embed, evaluate and write the report.

    Returns the process exit code: 0 when done, ``128 + signum`` when a signal stopped
    training, embedding or evaluation (the experiment can be resumed).

    Launched by ``torchrun`` (``RANK``/``WORLD_SIZE`` set), the processes train
    data-parallel (:mod:`reidcore.engine.distributed`): rank 0 chooses the experiment
    folder and alone writes args.json, train.log, checkpoints, embeddings and the report;
    the other ranks log warnings only, train and embed their share.

    Raises:
        UnknownNameError, ValueError, DatasetError, ExperimentError: bad input, found before
            the folder is made (a new run leaves no folder behind).
        Any error after training began: logged to train.log, report.json marked failed.
    """
    from reidcore.engine import distributed

    if distributed.env_ranks() is not None:  # torchrun: the process group comes first
        distributed.setup(cfg.device)
    main = distributed.is_main()
    recipe: Recipe = get_recipe(recipe_name)
    check_registered(cfg)  # excluder, re-ranker, dataset names: before any folder
    from reidcore.registry import registry

    registry("dataset").entry(cfg.dataset)
    exp_dir = Path(distributed.broadcast_object(exp_dir))  # rank 0's (a default name has the time)
    if not resume and main:
        experiment.check_new_folder(exp_dir)
    buffer = _Buffer()
    logger = experiment.setup_logging(None)
    if main:
        logger.addHandler(buffer)
    else:  # only rank 0 writes train.log; the others print warnings and errors
        logger.setLevel(logging.WARNING)
    state = {"phase": "reading the dataset", "trained": False}
    bar = cfg.progress and sys.stdout.isatty()  # the trainer's progress bar shows activity
    with Heartbeat(lambda: state["phase"], HEARTBEAT_SECONDS, enabled=main and not bar):
        log.info("reidcore %s: %s recipe %r in %s", __version__, "resuming" if resume else "running",
                 recipe_name, exp_dir)
        with distributed.main_first():  # a reader may write a cache folder on first use
            split = _load_split(cfg)  # readers log their one-line summary
            verify_split(split, cfg.excluder if evaluate_after else None)  # bad images, no query
        device = distributed.setup(cfg.device)
        stages = recipe.stages(cfg)
        state["phase"] = "building the model"
        first = _build_first(recipe, cfg, stages, split, exp_dir if resume else None)

        created = not resume and not exp_dir.exists()
        exp = experiment.Experiment(exp_dir, recipe_name, cfg.to_json())
        if main:
            if resume:
                previous = experiment.Experiment.open(exp_dir).update_config(cfg.to_json())
                if previous:
                    log.info("--resume changed %s (args.json 'history' keeps the previous values)",
                             ", ".join(f"{k}: {v!r} -> {getattr(cfg, k)!r}" for k, v in previous.items()))
            else:
                exp = experiment.Experiment.create(exp_dir, recipe_name, cfg.to_json())
            _start_log(exp_dir, buffer)
        state["phase"] = "setup"
        try:
            if stages:
                return _run_stages(recipe_name, stages, cfg, split, exp_dir, device, first, state,
                                   eval_untrained=eval_untrained, evaluate_after=evaluate_after)
            return _run_single(recipe_name, recipe, cfg, split, exp_dir, device, first, state,
                               eval_untrained=eval_untrained, evaluate_after=evaluate_after)
        except Interrupted as stop:
            log.info("%s; continue with: python -m reidcore %s --resume --experiment %s", stop,
                     "run" if evaluate_after else "train", exp_dir)
            return stop.exit_code
        except BaseException as exc:
            if isinstance(exc, SystemExit | KeyboardInterrupt) or not main:
                raise
            log.error("run failed during %s: %s: %s", state["phase"], type(exc).__name__, exc)
            if created and not state["trained"]:
                logging.getLogger("reidcore").handlers.clear()
                shutil.rmtree(exp_dir, ignore_errors=True)
            else:
                exp.mark_failed(exc, state["phase"])
            raise


def _load_split(cfg: TrainConfig) -> Split:
    """``load_dataset`` with the config's reader options. A reader that forwards ``**kwargs``
    accepts any key at parse time; a key its base reader lacks is reported as a bad
    ``--dataset-option`` (a ``ReidError``), not a ``TypeError`` traceback."""
    import re

    from reidcore.errors import ReidError

    try:
        return load_dataset(cfg.dataset, cfg.data, **cfg.dataset_options)
    except TypeError as exc:
        found = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if not found or found.group(1) not in cfg.dataset_options:
            raise
        raise ReidError(f"dataset {cfg.dataset!r} does not take the option {found.group(1)!r} "
                        f"(--dataset-option): {exc}") from exc


def _build_first(recipe: Recipe, cfg: TrainConfig, stages, split: Split, resume_dir: Path | None):
    """The model of the first stage to train, built before the folder exists (a bad config
    fails here). On resume, every stage with checkpoints is also built with the new config
    and loaded with its newest weights, so an incompatible override changes nothing."""
    import torch

    from reidcore.trained import check_loadable

    pairs = ([(recipe, cfg, resume_dir)] if not stages else
             [(get_recipe(s.recipe), s.config,
               resume_dir / "stages" / s.name if resume_dir else None) for s in stages])
    first = None
    for i, (st_recipe, st_cfg, st_dir) in enumerate(pairs):
        if i > 0 and (st_dir is None or not st_dir.is_dir()):
            break
        if st_cfg.dataset != cfg.dataset or st_cfg.data != cfg.data:
            if i == 0:
                return None  # another dataset: built in its stage
            break
        torch.manual_seed(st_cfg.seed)
        model = st_recipe.build_model(attrs.evolve(st_cfg, init_checkpoint=None)
                                      if st_cfg.init_checkpoint == "previous" else st_cfg,
                                      split.num_train_pids)
        if st_dir is not None:
            check_loadable(model, st_dir)
            retention.check_can_continue(st_dir, st_cfg.iterations)
        elif i == 0:
            _check_training_setup(model, st_cfg)
        if i == 0:
            first = model
    return first


def _check_training_setup(model, cfg: TrainConfig) -> None:
    """What the trainer checks before its first iteration, checked before the folder exists:
    ``--init-checkpoint`` is readable and fits (``--checkpoint-exclude-scopes``), and every
    ``--trainable-scopes`` scope names parameters of ``model`` (which is left initialised
    and scoped as training will).

    Raises:
        ExperimentError: the init checkpoint is missing.
        ValueError: it does not fit, or a scope matches no parameter.
    """
    from reidcore.engine import scopes
    from reidcore.errors import ExperimentError

    if cfg.init_checkpoint and cfg.init_checkpoint != "previous":
        logger = logging.getLogger("reidcore")
        quiet, logger.disabled = logger.disabled, True  # train() logs what it restores
        try:
            scopes.load_init_checkpoint(model, cfg.init_checkpoint, cfg.checkpoint_exclude_scopes)
        except FileNotFoundError as exc:
            raise ExperimentError(str(exc)) from exc
        finally:
            logger.disabled = quiet
    scopes.apply_trainable_scopes(model, cfg.trainable_scopes)


def _run_single(recipe_name, recipe, cfg, split, exp_dir, device, model, state, *,
                eval_untrained: bool, evaluate_after: bool) -> int:
    import torch

    from reidcore.engine.trainer import train

    if model is None:  # built by _build_first unless the config reads another dataset
        torch.manual_seed(cfg.seed)
        model = recipe.build_model(cfg, split.num_train_pids)
    if eval_untrained:
        state["phase"] = "untrained evaluation"
        _eval_untrained(model, recipe, recipe_name, cfg, split, exp_dir, device)
    state["phase"], state["trained"] = "training", True
    outcome = train(recipe, cfg, split, exp_dir, model=model, device=device)
    if outcome.stopped == "signal":
        return _stopped(outcome, exp_dir, evaluate_after)
    if not evaluate_after:
        return 0
    return _report(recipe_name, recipe, cfg, split, exp_dir, device, model, outcome, state)


def _stopped(outcome, exp_dir: Path, evaluate_after: bool) -> int:
    log.info("stopped by signal %s at iteration %d; continue with: python -m reidcore "
             "%s --resume --experiment %s", outcome.signum, outcome.iteration,
             "run" if evaluate_after else "train", exp_dir)
    return 128 + int(outcome.signum or 0)


def _eval_untrained(model, recipe: Recipe, recipe_name: str, cfg: TrainConfig, split: Split,
                    exp_dir: Path, device) -> None:
    untrained_path = exp_dir / "untrained.json"
    if not untrained_path.exists():
        from reidcore.engine import distributed
        from reidcore.trained import trained_from_memory

        log.info("evaluating the untrained network")
        trained = trained_from_memory(model.to(device), recipe, recipe_name, cfg, exp_dir, 0)
        untrained = embed_and_evaluate(trained, split, None, device, rerank=False)
        if distributed.is_main():
            experiment.write_json(untrained_path, untrained)


def _run_stages(recipe_name: str, stages, cfg: TrainConfig, split: Split, exp_dir: Path, device,
                first, state, *, eval_untrained: bool, evaluate_after: bool) -> int:
    """Train each :class:`~reidcore.recipe.Stage` in ``exp_dir/stages/NAME``, then report the last."""
    import torch

    from reidcore.engine import distributed
    from reidcore.engine.trainer import train

    splits = {(cfg.dataset, cfg.data): split}
    prev: Path | None = None
    outcomes = []
    for i, stage in enumerate(stages):
        state["phase"] = f"stage {stage.name}"
        st_recipe = get_recipe(stage.recipe)
        st_cfg = stage.config
        if st_cfg.init_checkpoint == "previous":
            if prev is None:
                raise ValueError(f"stage {stage.name!r} starts from 'previous' but is the first stage")
            st_cfg = attrs.evolve(st_cfg, init_checkpoint=str(prev))
        st_dir = exp_dir / "stages" / stage.name
        if distributed.is_main():
            if (st_dir / experiment.ARGS).exists():  # resumed: flags given now apply here too
                experiment.Experiment.open(st_dir).update_config(st_cfg.to_json())
            else:
                experiment.create(st_dir, stage.recipe, st_cfg.to_json())
        removed = retention.removed_outcome(st_dir) if i < len(stages) - 1 else None
        if removed is not None:  # finished; the next stage already trained from its weights
            log.info("stage %d/%d %r finished earlier at iteration %s (its checkpoints were "
                     "removed once the next stage had its own)", i + 1, len(stages), stage.name,
                     removed.get("iteration"))
            outcomes.append({"stage": stage.name, "recipe": stage.recipe,
                             **{k: removed.get(k) for k in _OUTCOME_KEYS}})
            prev = st_dir
            continue
        key = (st_cfg.dataset, st_cfg.data)
        if key not in splits:
            with distributed.main_first():
                options = st_cfg.dataset_options if st_cfg.dataset == cfg.dataset else {}
                splits[key] = load_dataset(st_cfg.dataset, st_cfg.data, **options)
                verify_split(splits[key], None, parts=("train",))  # a stage only trains on it
        st_split = splits[key]
        log.info("stage %d/%d %r: recipe %s on %s, %d iterations", i + 1, len(stages), stage.name,
                 stage.recipe, st_cfg.dataset, st_cfg.iterations)
        torch.manual_seed(st_cfg.seed)
        if i == 0 and first is not None:
            model = first
        else:
            model = st_recipe.build_model(st_cfg, st_split.num_train_pids)
        if eval_untrained and i == len(stages) - 1:
            state["phase"] = "untrained evaluation"
            _eval_untrained(model, st_recipe, stage.recipe, st_cfg, st_split, exp_dir, device)
        if cfg.max_train_minutes and i == len(stages) - 1:  # the last stage gets what is left
            spent = sum(o["seconds"] for o in outcomes) / 60
            st_cfg = attrs.evolve(st_cfg, max_train_minutes=max(cfg.max_train_minutes - spent, 0.01))
        state["phase"], state["trained"] = f"stage {stage.name}", True
        outcome = _train_stage(train, st_recipe, st_cfg, st_split, st_dir, model, device)
        outcomes.append({"stage": stage.name, "recipe": stage.recipe, **attrs.asdict(outcome)})
        if distributed.is_main() and not cfg.keep_stage_checkpoints:
            _keep_what_resume_needs(outcomes, prev, st_dir, outcome, last=i == len(stages) - 1)
        if outcome.stopped == "signal":
            return _stopped(outcome, exp_dir, evaluate_after)
        prev = st_dir
    if not evaluate_after:
        return 0
    return _report(recipe_name, st_recipe, st_cfg, st_split, exp_dir, device, model, outcome,
                   state, stages=outcomes, train_dir=st_dir, stage_recipe=stages[-1].recipe)


_OUTCOME_KEYS = ("iteration", "stopped", "signum", "seconds", "images_per_second")


def _train_stage(train, recipe: Recipe, cfg: TrainConfig, split: Split, st_dir: Path, model,
                 device=None):
    """``train()`` the stage, or, when it finished earlier and keeps its final weights only
    (:mod:`reidcore.retention`), load those weights into ``model`` without training."""
    from reidcore.engine.trainer import TrainOutcome

    retention.check_can_continue(st_dir, cfg.iterations)
    final = retention.final_weights(st_dir)
    if final is None:
        return train(recipe, cfg, split, st_dir, model=model, device=device)
    model.load_state_dict(final["model"])
    log.info("%s finished earlier at iteration %d; using its final weights", st_dir,
             final["iteration"])
    return TrainOutcome(int(final["iteration"]), "done")


def _keep_what_resume_needs(outcomes: list[dict], prev: Path | None, st_dir: Path, outcome,
                            last: bool) -> None:
    """Remove the previous stage's checkpoints once this stage has one; when the last stage
    finished all its iterations keep its final weights only (:mod:`reidcore.retention`)."""
    if prev is not None and retention.remove_stage_checkpoints(
            prev, {k: outcomes[-2].get(k) for k in _OUTCOME_KEYS}, st_dir):
        log.info("removed the checkpoints of %s (%s starts from its final weights)", prev,
                 st_dir.name)
    if last and outcome.stopped == "done":
        kept = retention.keep_final_weights(st_dir)
        if kept is not None:
            log.info("kept the final weights only: %s (--keep-stage-checkpoints keeps every "
                     "checkpoint)", kept)


def _report(recipe_name: str, recipe: Recipe, cfg: TrainConfig, split: Split, exp_dir: Path,
            device, model, outcome, state, stages: list | None = None,
            train_dir: Path | None = None, stage_recipe: str | None = None) -> int:
    from reidcore.engine import distributed
    from reidcore.report import format_report
    from reidcore.trained import trained_from_memory

    state["phase"] = "embedding and evaluation"
    log.info("embedding query and gallery")
    trained = trained_from_memory(model.eval(), recipe, stage_recipe or recipe_name, cfg,
                                  train_dir or exp_dir, outcome.iteration)
    report = embed_and_evaluate(trained, split, exp_dir / experiment.EMBEDDINGS, device)
    if not distributed.is_main():
        return 0
    extra = recipe.extra_metrics(cfg, split, model.eval(), device)  # e.g. PSE's view accuracy
    report = {
        "recipe": recipe_name, "status": "done", "dataset": cfg.dataset, "data": cfg.data,
        **report, **extra,
        "checkpoint": trained.checkpoint,
        "train": {**attrs.asdict(outcome), "device": str(device)},
        "reidcore_version": __version__,
    }
    if distributed.is_distributed():
        report["train"]["world_size"] = distributed.world_size()
    if stages:
        report["stages"] = stages
        report["train"]["seconds"] = sum(s["seconds"] for s in stages)
    untrained_path = exp_dir / "untrained.json"
    if untrained_path.exists():
        import json

        report["untrained"] = json.loads(untrained_path.read_text())
    experiment.write_json(exp_dir / experiment.REPORT, report)
    from reidcore.engine.tensorboard import log_report  # eval/rank1, eval/mAP, ...

    log_report(exp_dir, report, enabled=cfg.tensorboard)
    print(format_report(report, title=f"{recipe_name} on {cfg.dataset}"))
    if recipe.format_extra_metrics(extra):
        print(recipe.format_extra_metrics(extra))
    if "untrained" in report:
        u = report["untrained"]
        print(f"untrained network: rank-1 {100 * u['rank1']:.1f}%  mAP {100 * u['mAP']:.1f}%  "
              f"(trained mAP is {report['mAP'] / max(u['mAP'], 1e-12):.1f}x)")
    log.info("report written to %s", exp_dir / experiment.REPORT)
    return 0
