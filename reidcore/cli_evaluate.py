"""``python -m reidcore evaluate``: CMC/mAP/mINP of query and gallery embeddings.

With ``--experiment DIR`` the experiment's own evaluation settings (metric, protocol, AP,
averaging, re-ranking, tracklet pooling, as in its ``args.json``) are used unless a flag
overrides them; the settings used are printed. Query and gallery files that record
different checkpoints are refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reidcore.errors import ReidError

DESCRIPTION = "CMC/mAP/mINP of query and gallery HDF5 embeddings (optionally re-ranked)"


def _registered(kind: str, extra: tuple[str, ...] = ()):
    """argparse ``type``: a name registered in ``kind`` (or one of ``extra``)."""

    def parse(text: str) -> str:
        if text in extra:
            return text
        from reidcore.registry import registry

        registry(kind).entry(text)  # UnknownNameError: known names, nearest first
        return text

    parse.__name__ = kind
    return parse


def _parser() -> argparse.ArgumentParser:
    from reidcore.recipe import AP_NAMES, AVERAGE_NAMES, METRIC_NAMES, POOLING_NAMES

    p = argparse.ArgumentParser(
        prog="python -m reidcore evaluate", description=DESCRIPTION,
        epilog="pids/camids come from the HDF5 files ('pids', 'camids'), or from triplet-reid "
        "dataset CSVs ('identity,relative_path' lines in row order; cameras parsed from "
        "Market/Duke file names '_cN'). Unset evaluation flags take the experiment's values "
        "(with --experiment), else the defaults in brackets.")
    p.add_argument("--experiment", type=Path, help="use EXPERIMENT/embeddings/{query,gallery}.h5 "
                   "and the experiment's evaluation settings")
    p.add_argument("--query-embeddings", type=Path)
    p.add_argument("--gallery-embeddings", type=Path)
    p.add_argument("--query-dataset", type=Path,
                   help="triplet-reid CSV of the query rows (pids when the HDF5 has none)")
    p.add_argument("--gallery-dataset", type=Path,
                   help="triplet-reid CSV of the gallery rows (pids when the HDF5 has none)")
    p.add_argument("--metric", choices=METRIC_NAMES, help="[the experiment's, else euclidean]")
    p.add_argument("--excluder", type=_registered("excluder"),
                   help="protocol: market1501 | diagonal | cuhk03 | none, or a plugin's "
                   "(python -m reidcore list excluders) [the experiment's, else market1501]")
    p.add_argument("--ap", choices=AP_NAMES,
                   help="AP definition: step (sklearn>=0.19, torchreid, fast-reid) or "
                   "trapezoid (official Market-1501 MATLAB code) [the experiment's, else step]")
    p.add_argument("--average", choices=AVERAGE_NAMES,
                   help="average over valid queries, or all (skipped count 0; MATLAB) "
                   "[the experiment's, else valid]")
    p.add_argument("--tracklet-pooling", choices=POOLING_NAMES,
                   help="video embeddings (with 'tracklets'): mean | max [the experiment's, else mean]")
    p.add_argument("--max-rank", type=int, default=None, help="CMC length [50]")
    p.add_argument("--rerank", type=_registered("reranker", ("none",)),
                   help="re-ranker: none | k-reciprocal | a plugin's (python -m reidcore list "
                   "rerankers); metrics are reported with and without it [the experiment's, "
                   "else none]")
    p.add_argument("--output", type=Path, help="write the result as JSON here")
    return p


def _ids_for(path: Path, e, dataset_csv: Path | None, excluder: str):
    """``(pids, camids)`` of an embeddings file, from the file or a triplet-reid CSV."""
    import numpy as np

    from reidcore.evaluation.dataset_csv import camera_from_path, read_dataset_csv

    pids, camids = e.pids, e.camids
    if dataset_csv is not None:
        ids, rel = read_dataset_csv(dataset_csv)
        if len(ids) != len(e):
            raise ReidError(f"{dataset_csv} has {len(ids)} lines but {path} has {len(e)} "
                            f"embeddings; the CSV must list the embedded images in order")
        if pids is None:
            pids = ids  # strings, made integers together with the other side's
        if camids is None:
            cams = [camera_from_path(r) for r in rel]
            if all(c is not None for c in cams):
                camids = np.array(cams, dtype=np.int64)
    if pids is None:
        raise ReidError(f"{path} has no 'pids' dataset; give --query-dataset/--gallery-dataset "
                        f"(a triplet-reid CSV 'identity,relative_path' per row), or write it "
                        f"with python -m reidcore embed")
    if camids is None:
        if excluder in ("market1501", "cuhk03"):
            raise ReidError(f"no camera ids for {path}: the file has no 'camids' and the "
                            f"dataset CSV's file names have no '_cN' camera; the {excluder} "
                            f"protocol needs cameras (try --excluder none or diagonal)")
        camids = np.zeros(len(e), dtype=np.int64)
    return pids, camids


def cmd_evaluate(argv: list[str]) -> int:
    p = _parser()
    args = p.parse_args(argv)
    if args.max_rank is not None and args.max_rank < 1:
        p.error(f"--max-rank must be >= 1, got {args.max_rank}")
    q, g = args.query_embeddings, args.gallery_embeddings
    if args.experiment is not None:
        q = q or args.experiment / "embeddings" / "query.h5"
        g = g or args.experiment / "embeddings" / "gallery.h5"
    if q is None or g is None:
        p.error("give --experiment, or both --query-embeddings and --gallery-embeddings")

    from reidcore.embeddings import check_same_checkpoint, checkpoint_of, read_embeddings
    from reidcore.evaluation.dataset_csv import pids_to_int
    from reidcore.evaluation.evaluate_embeddings import (
        EmbeddingSet,
        EvalSettings,
        evaluate_embeddings,
    )
    from reidcore.experiment import Experiment, write_json
    from reidcore.interrupts import Interrupted, interruptible
    from reidcore.report import format_report

    flags = {"metric": args.metric, "excluder": args.excluder, "ap": args.ap,
             "average": args.average, "rerank": args.rerank, "max_rank": args.max_rank,
             "tracklet_pooling": args.tracklet_pooling}
    if args.experiment is not None:
        settings = Experiment.open(args.experiment).eval_settings(**flags)
        source = f"{args.experiment}'s args.json"
    else:
        settings, source = EvalSettings.from_config({}, **flags), "defaults"
    given = [k.replace("_", "-") for k, v in flags.items() if v is not None]
    print(f"settings: {settings.describe()} (from {source}"
          + (f"; flags: --{', --'.join(given)})" if given else ")"))

    qe, ge = read_embeddings(q), read_embeddings(g)
    check_same_checkpoint(qe, ge, str(q), str(g))
    q_pids, q_cams = _ids_for(q, qe, args.query_dataset, settings.excluder)
    g_pids, g_cams = _ids_for(g, ge, args.gallery_dataset, settings.excluder)
    if not (hasattr(q_pids, "dtype") and hasattr(g_pids, "dtype")):
        q_pids, g_pids = pids_to_int([str(x) for x in q_pids], [str(x) for x in g_pids])
    try:
        with interruptible("evaluation"):
            report = evaluate_embeddings(EmbeddingSet(qe.embs, q_pids, q_cams, qe.tracklets),
                                         EmbeddingSet(ge.embs, g_pids, g_cams, ge.tracklets),
                                         settings)
    except Interrupted as stop:
        print(f"reidcore: {stop}", flush=True)
        return stop.exit_code
    if checkpoint_of(qe) is not None:
        report["checkpoint"] = checkpoint_of(qe)
    print(format_report(report, title=f"{q.name} vs {g.name}"))
    if args.output:
        write_json(args.output, report)
    return 0
