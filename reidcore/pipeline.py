"""``run`` = train → embed query/gallery → evaluate → report, in one experiment directory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs

from reidcore import __version__, experiment
from reidcore.data.records import Split
from reidcore.recipe import Recipe, TrainConfig
from reidcore.registry import get_recipe, load_dataset

log = logging.getLogger("reidcore")


def embed_and_evaluate(model, cfg: TrainConfig, split: Split, out_dir: Path | None,
                       device, rerank: bool = True, recipe: Recipe | None = None) -> dict[str, Any]:
    """Embed ``split.query`` and ``split.gallery`` with ``model`` and evaluate them.

    Writes ``out_dir/query.h5`` and ``out_dir/gallery.h5`` when ``out_dir`` is given.
    The recipe (default: the base :class:`Recipe`) supplies the test inputs and their flip.
    Returns the evaluation's ``to_dict()`` plus the metric; with ``rerank`` and
    ``cfg.rerank != "none"`` also ``"reranked"``: the same metrics of the re-ranked
    distances (re-ranker from the ``reid_rerankers`` registry, e.g. ``k-reciprocal``).
    Under DDP every rank embeds its share of the images; rank 0 alone writes the files
    and evaluates (the other ranks return ``{}``).
    """
    import numpy as np

    from reidcore.embeddings import write_embeddings
    from reidcore.engine import distributed
    from reidcore.engine.device import amp_dtype
    from reidcore.engine.embed import embed_samples
    from reidcore.evaluation import evaluate, pairwise_distances

    recipe = recipe or Recipe()
    embs = {}
    main = distributed.is_main()
    if out_dir is not None and main:
        out_dir.mkdir(parents=True, exist_ok=True)
    for part in ("query", "gallery"):
        samples = getattr(split, part)
        e, aug = embed_samples(
            model, samples, height=cfg.height, width=cfg.width, batch_size=cfg.embed_batch_size,
            crop=cfg.crop_augment, flip=cfg.flip_augment, aggregator=cfg.aggregator,
            device=device, amp_dtype=amp_dtype(device, cfg.amp), workers=cfg.workers,
            dataset_fn=lambda s, h, w: recipe.embed_dataset(cfg, s, h, w), flip_fn=recipe.flip_input,
        )
        embs[part] = e
        if out_dir is not None and main:
            write_embeddings(
                out_dir / f"{part}.h5", e, np.array([s.pid for s in samples]),
                np.array([s.camid for s in samples]), [s.path for s in samples], augmented=aug,
            )
    if not main:
        return {}
    arrays, pooled = {}, False
    for part in ("query", "gallery"):
        samples = getattr(split, part)
        e = embs[part]
        pids = np.array([s.pid for s in samples])
        camids = np.array([s.camid for s in samples])
        if samples and all("tracklet" in s.extras for s in samples):
            # video re-ID (MARS protocol): one pooled feature per tracklet
            from reidcore.evaluation.video import pool_tracklets

            t = pool_tracklets(e, np.array([s.extras["tracklet"] for s in samples]), pids,
                               camids, method=cfg.tracklet_pooling)
            e, pids, camids, pooled = t.embs, t.pids, t.camids, True
        arrays[part] = (e, pids, camids)
    (qe, qp, qc), (ge, gp, gc) = arrays["query"], arrays["gallery"]
    kwargs = {"excluder": cfg.excluder, "ap": cfg.ap, "average": cfg.average}
    dist = pairwise_distances(qe, ge, metric=cfg.metric)
    out = {**evaluate(dist, qp, gp, qc, gc, **kwargs).to_dict(), "metric": cfg.metric}
    if pooled:
        out["tracklet_pooling"] = cfg.tracklet_pooling
    rerank_name = getattr(cfg, "rerank", "none")
    if rerank and rerank_name != "none":
        from reidcore.registry import registry

        log.info("re-ranking with %s", rerank_name)
        reranker = registry("reranker").get(rerank_name)
        rd = reranker(qe, ge, metric=cfg.metric)
        out["reranked"] = {**evaluate(rd, qp, gp, qc, gc, **kwargs).to_dict(),
                           "metric": cfg.metric, "reranker": rerank_name}
    return out


def run(recipe_name: str, cfg: TrainConfig, exp_dir: Path, *, resume: bool = False,
        eval_untrained: bool = False, evaluate_after: bool = True) -> int:
    """Train (or resume) and, when training completes, embed, evaluate and write the report.

    Returns the process exit code: 0 when done, ``128 + signum`` when a signal stopped
    training (the experiment can be resumed).

    Launched by ``torchrun`` (``RANK``/``WORLD_SIZE`` set), the processes train
    data-parallel (:mod:`reidcore.engine.distributed`): rank 0 chooses the experiment
    folder and alone writes args.json, train.log, checkpoints, embeddings and the report;
    the other ranks log warnings only, train and embed their share.
    """
    import logging

    import torch

    from reidcore.engine import distributed
    from reidcore.engine.trainer import train

    if distributed.env_ranks() is not None:  # torchrun: the process group comes first
        distributed.setup(cfg.device)
    recipe: Recipe = get_recipe(recipe_name)
    from reidcore.registry import registry

    registry("dataset").entry(cfg.dataset)  # an unknown name fails before the folder is made
    exp_dir = distributed.broadcast_object(exp_dir)  # rank 0's (a default name has the time)
    if not resume:
        distributed.run_on_main(lambda: experiment.create(exp_dir, recipe_name, cfg.to_json()))
    if distributed.is_main():
        experiment.setup_logging(exp_dir)
    else:  # only rank 0 writes train.log; the others print warnings and errors
        experiment.setup_logging(None).setLevel(logging.WARNING)
    log.info("reidcore %s: %s recipe %r in %s", __version__, "resuming" if resume else "running",
             recipe_name, exp_dir)
    with distributed.main_first():  # a reader may write a cache folder on first use
        split = load_dataset(cfg.dataset, cfg.data)  # readers log their one-line summary
    device = distributed.setup(cfg.device)

    stages = recipe.stages(cfg)
    if stages:
        return _run_stages(recipe_name, stages, cfg, split, exp_dir, device,
                           eval_untrained=eval_untrained, evaluate_after=evaluate_after)
    torch.manual_seed(cfg.seed)
    model = recipe.build_model(cfg, split.num_train_pids)
    if eval_untrained:
        _eval_untrained(model, recipe, cfg, split, exp_dir, device)
    outcome = train(recipe, cfg, split, exp_dir, model=model)
    if outcome.stopped == "signal":
        return _stopped(outcome, exp_dir, evaluate_after)
    if not evaluate_after:
        return 0
    return _report(recipe_name, recipe, cfg, split, exp_dir, device, model, outcome)


def _stopped(outcome, exp_dir: Path, evaluate_after: bool) -> int:
    log.info("stopped by signal %s at iteration %d; continue with: python -m reidcore "
             "%s --resume --experiment %s", outcome.signum, outcome.iteration,
             "run" if evaluate_after else "train", exp_dir)
    return 128 + int(outcome.signum or 0)


def _eval_untrained(model, recipe: Recipe, cfg: TrainConfig, split: Split, exp_dir: Path, device) -> None:
    untrained_path = exp_dir / "untrained.json"
    if not untrained_path.exists():
        from reidcore.engine import distributed

        log.info("evaluating the untrained network")
        untrained = embed_and_evaluate(model.to(device), cfg, split, None, device, rerank=False,
                                       recipe=recipe)
        if distributed.is_main():
            experiment.write_json(untrained_path, untrained)


def _run_stages(recipe_name: str, stages, cfg: TrainConfig, split: Split, exp_dir: Path, device,
                *, eval_untrained: bool, evaluate_after: bool) -> int:
    """Train each :class:`~reidcore.recipe.Stage` in ``exp_dir/stages/NAME``, then report the last."""
    import torch

    from reidcore.engine import distributed
    from reidcore.engine.trainer import train

    splits = {(cfg.dataset, cfg.data): split}
    prev: Path | None = None
    outcomes = []
    for i, stage in enumerate(stages):
        st_recipe = get_recipe(stage.recipe)
        st_cfg = stage.config
        if st_cfg.init_checkpoint == "previous":
            if prev is None:
                raise ValueError(f"stage {stage.name!r} starts from 'previous' but is the first stage")
            st_cfg = attrs.evolve(st_cfg, init_checkpoint=str(prev))
        st_dir = exp_dir / "stages" / stage.name
        if distributed.is_main() and not (st_dir / experiment.ARGS).exists():
            experiment.create(st_dir, stage.recipe, st_cfg.to_json())
        key = (st_cfg.dataset, st_cfg.data)
        if key not in splits:
            with distributed.main_first():
                splits[key] = load_dataset(st_cfg.dataset, st_cfg.data)
        st_split = splits[key]
        log.info("stage %d/%d %r: recipe %s on %s, %d iterations", i + 1, len(stages), stage.name,
                 stage.recipe, st_cfg.dataset, st_cfg.iterations)
        torch.manual_seed(st_cfg.seed)
        model = st_recipe.build_model(st_cfg, st_split.num_train_pids)
        if eval_untrained and i == len(stages) - 1:
            _eval_untrained(model, st_recipe, st_cfg, st_split, exp_dir, device)
        if cfg.max_train_minutes and i == len(stages) - 1:  # the last stage gets what is left
            spent = sum(o["seconds"] for o in outcomes) / 60
            st_cfg = attrs.evolve(st_cfg, max_train_minutes=max(cfg.max_train_minutes - spent, 0.01))
        outcome = train(st_recipe, st_cfg, st_split, st_dir, model=model)
        outcomes.append({"stage": stage.name, "recipe": stage.recipe, **attrs.asdict(outcome)})
        if outcome.stopped == "signal":
            return _stopped(outcome, exp_dir, evaluate_after)
        prev = st_dir
    if not evaluate_after:
        return 0
    return _report(recipe_name, st_recipe, st_cfg, st_split, exp_dir, device, model, outcome,
                   stages=outcomes)


def _report(recipe_name: str, recipe: Recipe, cfg: TrainConfig, split: Split, exp_dir: Path,
            device, model, outcome, stages: list | None = None) -> int:
    from reidcore.engine import distributed
    from reidcore.report import format_report

    log.info("embedding query and gallery")
    report = embed_and_evaluate(model.eval(), cfg, split, exp_dir / "embeddings", device,
                                recipe=recipe)
    if not distributed.is_main():
        return 0
    extra = recipe.extra_metrics(cfg, split, model.eval(), device)  # e.g. PSE's view accuracy
    report = {
        "recipe": recipe_name, "dataset": cfg.dataset, "data": cfg.data,
        **report, **extra,
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
