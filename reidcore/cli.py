"""``python -m reidcore``: plugins, list, train, embed, evaluate, run, and plugin verbs.

Parsing and ``--help`` import no torch; each verb imports what it needs when it runs.
Exit codes: 0 success, 2 bad usage or input (a clear message on stderr), 128+N when
signal N stopped training cleanly (resumable).
"""

from __future__ import annotations

import argparse
import difflib
import errno
import os
import sys
from pathlib import Path

from reidcore import __version__
from reidcore.errors import ReidError

#: errno values of OSErrors the user must fix on their side, reported in one line.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT})

VERBS = {
    "plugins": "list installed plugins, their distributions and what they register",
    "list": "list registered datasets, models, losses, recipes, backbones, commands, ...",
    "run": "train a recipe, embed query/gallery, evaluate, write report.json",
    "train": "train a recipe only (checkpoints in the experiment folder)",
    "embed": "write HDF5 embeddings of a dataset part with a trained experiment",
    "evaluate": "CMC/mAP/mINP of query and gallery HDF5 embeddings (optionally re-ranked)",
}
KINDS = ("datasets", "models", "losses", "recipes", "backbones", "commands", "excluders",
         "rerankers", "keypoint_estimators")


def _command_lines() -> list[str]:
    """Verbs registered through the reid_commands hook (core built-ins and plugins)."""
    try:
        from reidcore.registry import registry

        reg = registry("command")
        return [f"  {n:<10} (command of plugin {reg.entry(n).plugin!r})" for n in reg.names()]
    except Exception:  # noqa: BLE001 - help must print even with a broken plugin
        return ["  (plugins may add verbs: python -m reidcore list commands)"]


def _top_help() -> str:
    lines = [
        f"usage: python -m reidcore VERB ...   (reidcore {__version__})",
        "",
        "Person re-identification: train, embed and evaluate methods registered by plugins.",
        "",
        "verbs:",
    ]
    lines += [f"  {v:<10} {h}" for v, h in VERBS.items()]
    lines += [
        *_command_lines(),
        "",
        "examples:",
        "  python -m reidcore run trinet --dataset synthetic --backbone resnet18 --pretrained none",
        "  python -m reidcore run --resume --experiment experiments/my-run",
        "  python -m reidcore VERB --help",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- plugins, list
def cmd_plugins(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="python -m reidcore plugins",
                            description=VERBS["plugins"]).parse_args(argv)
    from reidcore.plugins import get_plugins
    from reidcore.registry import KINDS as REG_KINDS
    from reidcore.registry import registry

    plugins = get_plugins()
    regs = {kind: registry(kind) for kind in REG_KINDS}
    print(f"{'plugin':<12} {'distribution':<16} {'version':<9} registers")
    for info in plugins.infos:
        if info.error:
            print(f"{info.name:<12} {info.distribution:<16} {info.version:<9} BROKEN: {info.error}")
            continue
        parts = []
        for kind, reg in regs.items():
            names = sorted(n for n, e in reg.entries.items() if e.plugin == info.name)
            if names:
                plural = "losses" if kind == "loss" else f"{kind}s"
                parts.append(f"{plural}: {', '.join(names)}")
        print(f"{info.name:<12} {info.distribution:<16} {info.version:<9} {'; '.join(parts) or '(nothing)'}")
    return 1 if plugins.failed else 0


def cmd_list(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m reidcore list", description=VERBS["list"])
    p.add_argument("kind", choices=KINDS)
    args = p.parse_args(argv)
    from reidcore.registry import registry

    reg = registry(args.kind[:-1])
    for name in reg.names():
        entry = reg.entry(name)
        extra = ""
        if args.kind == "recipes":
            recipe = entry.resolve()
            extra = f"  {recipe.description}"
        print(f"{name:<24} [{entry.plugin}]{extra}")
        if args.kind == "recipes":
            print(f"{'':<24} defaults: {_recipe_defaults(recipe.config_class)}")
    return 0


def _recipe_defaults(config_class: type) -> str:
    """The recipe's defaults, as flags: every field of its config (``--batch-p 18 ...``)."""
    import attrs

    parts = []
    for f in attrs.fields(config_class):
        value = " ".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
        if f.name in ("dataset", "data") or value is None:
            continue
        flag = f.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(f"--{flag}" if value else f"--no-{flag}")
        else:
            parts.append(f"--{flag} {value}")
    return " ".join(parts)


# ---------------------------------------------------------------------------- train / run
def _recipe_parser(verb: str, config_class: type) -> argparse.ArgumentParser:
    from reidcore.config_flags import add_config_flags

    p = argparse.ArgumentParser(
        prog=f"python -m reidcore {verb}", description=VERBS[verb],
        epilog="Every recipe default can be overridden by its flag; "
        "with --resume, the experiment's args.json is used and given flags override it.",
    )
    p.add_argument("recipe", nargs="?", help="recipe name (python -m reidcore list recipes)")
    p.add_argument("--experiment", type=Path, default=None,
                   help="experiment folder [experiments/RECIPE-DATASET-TIME]")
    p.add_argument("--resume", action="store_true",
                   help="continue the experiment in --experiment from its args.json and newest checkpoint")
    if verb == "run":
        p.add_argument("--eval-untrained", action="store_true",
                       help="also evaluate the network before training (report.json 'untrained')")
    add_config_flags(p, config_class)
    return p


def cmd_train_or_run(verb: str, argv: list[str]) -> int:
    from reidcore import experiment
    from reidcore.recipe import TrainConfig
    from reidcore.registry import registry

    # stage 1: which recipe? (the first argument, or args.json when resuming)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--experiment", type=Path)
    pre.add_argument("--resume", action="store_true")
    known, _ = pre.parse_known_args(argv)
    recipe_name = argv[0] if argv and not argv[0].startswith("-") else None
    saved = None
    if known.resume:
        if known.experiment is None:
            raise ReidError(f"--resume needs --experiment DIR (python -m reidcore {verb} --resume --experiment DIR)")
        saved = experiment.read_args(known.experiment)
        if recipe_name and recipe_name != saved["recipe"]:
            raise ReidError(f"experiment {known.experiment} was made with recipe {saved['recipe']!r}, not {recipe_name!r}")
        recipe_name = saved["recipe"]
    config_class = TrainConfig
    if recipe_name:
        config_class = registry("recipe").get(recipe_name).config_class
    parser = _recipe_parser(verb, config_class)
    args = parser.parse_args(argv)
    if not recipe_name:
        parser.error("a recipe name is required (python -m reidcore list recipes)")

    from reidcore.config_flags import config_overrides

    overrides = config_overrides(args, config_class)
    if saved is not None:
        cfg = config_class.from_json({**saved["config"], **overrides})
        exp_dir = known.experiment
    else:
        cfg = config_class(**overrides)
        exp_dir = args.experiment or experiment.default_experiment_dir(recipe_name, cfg.dataset)
    if saved is not None and overrides and os.environ.get("RANK", "0") == "0":  # torchrun: rank 0
        experiment.write_json(exp_dir / experiment.ARGS,
                              {"recipe": recipe_name, "reidcore_version": __version__, "config": cfg.to_json()})

    from reidcore.pipeline import run

    return run(recipe_name, cfg, exp_dir, resume=saved is not None,
               eval_untrained=getattr(args, "eval_untrained", False), evaluate_after=verb == "run")


# ---------------------------------------------------------------------------- embed / evaluate
def _read_image_list(path: Path) -> list:
    """A plain list of image files, one per line (trinet_embed.py's ``files.txt``)."""
    from reidcore.data.records import Sample

    if not path.is_file():
        raise ReidError(f"image list {path} does not exist")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    samples = [Sample(ln, -1, -1) for ln in lines if ln and not ln.startswith("#")]
    if not samples:
        raise ReidError(f"image list {path} names no image")
    return samples


def cmd_embed(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m reidcore embed", description=VERBS["embed"],
        epilog="HDF5 output holds `embs` (N×D float32), pids, camids, paths (and `embs_augmented` "
        "with test-time augmentation); CSV output is triplet-reid's `path,f1,f2,...` lines.")
    p.add_argument("--experiment", type=Path, required=True, help="a trained experiment folder")
    p.add_argument("--part", choices=("query", "gallery", "train"), default="query",
                   help="which part of the dataset to embed [query]")
    p.add_argument("--dataset", help="dataset name [the experiment's]")
    p.add_argument("--data", help="dataset root [the experiment's]")
    p.add_argument("--images", type=Path,
                   help="embed the image files listed in this text file (one path per line) "
                        "instead of a dataset part, as triplet-reid's trinet_embed.py")
    p.add_argument("--output", help="output file, '-' for CSV on stdout "
                                    "[EXPERIMENT/embeddings/PART.h5]")
    p.add_argument("--format", choices=("h5", "csv"),
                   help="output format [csv when --output ends in .csv or is '-', else h5]")
    p.add_argument("--flip-augment", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--crop-augment", choices=("none", "center", "five"))
    p.add_argument("--aggregator", choices=("mean", "normalized_mean"))
    p.add_argument("--device", help="auto | cpu | cuda [the experiment's]")
    args = p.parse_args(argv)

    from reidcore import experiment
    from reidcore.registry import registry

    train_dir = experiment.final_training_dir(args.experiment)  # a staged recipe's last stage
    saved = experiment.read_args(train_dir)
    recipe = registry("recipe").get(saved["recipe"])()
    changes = {k: v for k, v in {
        "dataset": args.dataset, "data": args.data, "flip_augment": args.flip_augment,
        "crop_augment": args.crop_augment, "aggregator": args.aggregator, "device": args.device,
    }.items() if v is not None}
    cfg = recipe.config_class.from_json({**saved["config"], **changes})
    fmt = args.format or ("csv" if args.output and (args.output == "-" or args.output.endswith(".csv")) else "h5")
    if fmt == "h5" and args.output == "-":
        p.error("HDF5 cannot be written to stdout; use --format csv or a file name")

    import numpy as np

    from reidcore.embeddings import write_embeddings, write_embeddings_csv
    from reidcore.engine.device import amp_dtype, resolve_device
    from reidcore.engine.embed import embed_samples
    from reidcore.engine.trainer import load_trained_model
    from reidcore.registry import load_dataset

    if args.images is not None:
        samples, name = _read_image_list(args.images), args.images.stem
    else:
        samples, name = getattr(load_dataset(cfg.dataset, cfg.data), args.part), args.part
    device = resolve_device(cfg.device)
    model = load_trained_model(recipe, cfg, None, train_dir, device)
    embs, aug = embed_samples(model, samples, height=cfg.height, width=cfg.width,
                              batch_size=cfg.embed_batch_size, crop=cfg.crop_augment,
                              flip=cfg.flip_augment, aggregator=cfg.aggregator, device=device,
                              amp_dtype=amp_dtype(device, cfg.amp),
                              dataset_fn=lambda s, h, w: recipe.embed_dataset(cfg, s, h, w),
                              flip_fn=recipe.flip_input)
    paths = [s.path for s in samples]
    if fmt == "csv":
        out = None if args.output == "-" else Path(args.output or args.experiment / "embeddings" / f"{name}.csv")
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
        write_embeddings_csv(out, paths, embs)
    else:
        out = Path(args.output) if args.output else args.experiment / "embeddings" / f"{name}.h5"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_embeddings(out, embs, np.array([s.pid for s in samples]),
                         np.array([s.camid for s in samples]), paths, augmented=aug)
    if out is not None:
        print(f"wrote {len(samples)} embeddings of dimension {embs.shape[1]} to {out}")
    return 0


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
    p = argparse.ArgumentParser(
        prog="python -m reidcore evaluate", description=VERBS["evaluate"],
        epilog="pids/camids come from the HDF5 files ('pids', 'camids'), or from triplet-reid "
        "dataset CSVs ('identity,relative_path' lines in row order; cameras parsed from "
        "Market/Duke file names '_cN').")
    p.add_argument("--experiment", type=Path, help="use EXPERIMENT/embeddings/{query,gallery}.h5")
    p.add_argument("--query-embeddings", type=Path)
    p.add_argument("--gallery-embeddings", type=Path)
    p.add_argument("--query-dataset", type=Path,
                   help="triplet-reid CSV of the query rows (pids when the HDF5 has none)")
    p.add_argument("--gallery-dataset", type=Path,
                   help="triplet-reid CSV of the gallery rows (pids when the HDF5 has none)")
    p.add_argument("--metric", default="euclidean",
                   choices=("euclidean", "sqeuclidean", "cityblock", "cosine"))
    p.add_argument("--excluder", default="market1501",
                   help="protocol: market1501 | diagonal | cuhk03 | none, or a plugin's "
                   "(python -m reidcore list excluders) [market1501]")
    p.add_argument("--ap", default="step", choices=("step", "trapezoid"),
                   help="AP definition: step (sklearn>=0.19, torchreid, fast-reid) or "
                   "trapezoid (official Market-1501 MATLAB code) [step]")
    p.add_argument("--average", default="valid", choices=("valid", "all"),
                   help="average over valid queries, or all (skipped count 0; MATLAB) [valid]")
    p.add_argument("--max-rank", type=int, default=50, help="CMC length [50]")
    p.add_argument("--rerank", default="none",
                   help="re-ranker: none | k-reciprocal | a plugin's (python -m reidcore list "
                   "rerankers); metrics are reported with and without it [none]")
    p.add_argument("--output", type=Path, help="write the result as JSON here")
    args = p.parse_args(argv)
    q, g = args.query_embeddings, args.gallery_embeddings
    if args.experiment is not None:
        q = q or args.experiment / "embeddings" / "query.h5"
        g = g or args.experiment / "embeddings" / "gallery.h5"
    if q is None or g is None:
        p.error("give --experiment, or both --query-embeddings and --gallery-embeddings")

    from reidcore.embeddings import read_embeddings
    from reidcore.evaluation import evaluate, pairwise_distances
    from reidcore.evaluation.dataset_csv import pids_to_int
    from reidcore.experiment import write_json
    from reidcore.report import format_report

    qe, ge = read_embeddings(q), read_embeddings(g)
    q_pids, q_cams = _ids_for(q, qe, args.query_dataset, args.excluder)
    g_pids, g_cams = _ids_for(g, ge, args.gallery_dataset, args.excluder)
    if not (hasattr(q_pids, "dtype") and hasattr(g_pids, "dtype")):
        q_pids, g_pids = pids_to_int([str(x) for x in q_pids], [str(x) for x in g_pids])
    dist = pairwise_distances(qe.embs, ge.embs, metric=args.metric)
    kw = dict(excluder=args.excluder, max_rank=args.max_rank, ap=args.ap, average=args.average)
    result = evaluate(dist, q_pids, g_pids, q_cams, g_cams, **kw)
    report = {**result.to_dict(), "metric": args.metric}
    if args.rerank != "none":
        from reidcore.registry import registry

        reranker = registry("reranker").get(args.rerank)
        rd = reranker(qe.embs, ge.embs, metric=args.metric)
        rr = evaluate(rd, q_pids, g_pids, q_cams, g_cams, **kw)
        report["reranked"] = {**rr.to_dict(), "metric": args.metric, "reranker": args.rerank}
    print(format_report(report, title=f"{q.name} vs {g.name}"))
    if args.output:
        write_json(args.output, report)
    return 0


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_help())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"reidcore {__version__}")
        return 0
    verb, rest = argv[0], argv[1:]
    try:
        if verb == "plugins":
            return cmd_plugins(rest)
        if verb == "list":
            return cmd_list(rest)
        if verb in ("run", "train"):
            return cmd_train_or_run(verb, rest)
        if verb == "embed":
            return cmd_embed(rest)
        if verb == "evaluate":
            return cmd_evaluate(rest)
        from reidcore.registry import registry

        commands = registry("command")
        if verb in commands:
            return int(commands.get(verb)(rest) or 0)
        known = sorted(set(VERBS) | set(commands.names()))
        close = difflib.get_close_matches(verb, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        print(f"reidcore: unknown verb {verb!r}.{hint} Verbs: {', '.join(known)}", file=sys.stderr)
        return 2
    except (ReidError, ValueError) as exc:  # bad input: a message, not a traceback
        if os.environ.get("REIDCORE_DEBUG"):
            raise
        print(f"reidcore: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, read-only, no permission: one line naming the path
        if exc.errno not in DISK_ERRNOS or os.environ.get("REIDCORE_DEBUG"):
            raise
        where = f"{exc.filename}: " if exc.filename else ""  # AtomicWriteError: in strerror
        print(f"reidcore: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
