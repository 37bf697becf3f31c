"""``python -m reidcore embed``: embeddings of a dataset part or an image list.

The model and its preprocessing come from :func:`reidcore.trained.load_trained` (the final
model of a staged experiment, a stage folder, or one checkpoint file). Without ``--output``,
the experiment's own split goes to ``EXPERIMENT/embeddings/PART.h5``; another dataset (or
data folder) to ``EXPERIMENT/other-embeddings/DATASET-HASH/PART.h5`` and an image list to
``EXPERIMENT/other-embeddings/images/STEM.h5``, so the experiment's own query/gallery files
are never replaced by embeddings of something else. HDF5 files record the checkpoint they
came from (``checkpoint_path``, ``checkpoint_iteration``, ``model_sha256`` attributes).

Under ``torchrun`` the images are sharded across the processes (each embeds a contiguous
share, :func:`reidcore.engine.embed.embed_samples`) and rank 0 writes the gathered rows, in
order: ``torchrun --nproc_per_node N -m reidcore embed --experiment DIR --part gallery``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reidcore.errors import ReidError

DESCRIPTION = "write HDF5 embeddings of a dataset part with a trained experiment"


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


def _parser() -> argparse.ArgumentParser:
    from reidcore.recipe import AGGREGATOR_NAMES, CROP_NAMES

    p = argparse.ArgumentParser(
        prog="python -m reidcore embed", description=DESCRIPTION,
        epilog="HDF5 output holds `embs` (N×D float32), pids, camids, paths (and `embs_augmented` "
        "with test-time augmentation); CSV output is triplet-reid's `path,f1,f2,...` lines.")
    p.add_argument("--experiment", type=Path, required=True,
                   help="a trained experiment folder, a stage folder, or a checkpoint file")
    p.add_argument("--part", choices=("query", "gallery", "train"), default="query",
                   help="which part of the dataset to embed [query]")
    p.add_argument("--dataset", help="dataset name [the experiment's]")
    p.add_argument("--data", help="dataset root [the experiment's]")
    p.add_argument("--images", type=Path,
                   help="embed the image files listed in this text file (one path per line) "
                        "instead of a dataset part, as triplet-reid's trinet_embed.py")
    p.add_argument("--output", help="output file, '-' for CSV on stdout [EXPERIMENT/embeddings/"
                   "PART.h5 for the experiment's own dataset, else EXPERIMENT/other-embeddings/...]")
    p.add_argument("--format", choices=("h5", "csv"),
                   help="output format [csv when --output ends in .csv or is '-', else h5]")
    p.add_argument("--flip-augment", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--crop-augment", choices=CROP_NAMES)
    p.add_argument("--aggregator", choices=AGGREGATOR_NAMES)
    p.add_argument("--embed-batch-size", type=int, default=None)
    p.add_argument("--device", help="auto | cpu | cuda [the experiment's]")
    return p


def cmd_embed(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    fmt = args.format or ("csv" if args.output and (args.output == "-" or args.output.endswith(".csv"))
                          else "h5")
    if fmt == "h5" and args.output == "-":
        _parser().error("HDF5 cannot be written to stdout; use --format csv or a file name")
    if args.embed_batch_size is not None and args.embed_batch_size < 1:
        _parser().error(f"--embed-batch-size must be >= 1, got {args.embed_batch_size}")

    import numpy as np

    from reidcore.embeddings import write_embeddings, write_embeddings_csv
    from reidcore.engine import distributed
    from reidcore.experiment import OTHER_EMBEDDINGS, Experiment
    from reidcore.interrupts import Interrupted, interruptible
    from reidcore.registry import load_dataset
    from reidcore.trained import load_trained

    changes = {k: v for k, v in {
        "dataset": args.dataset, "data": args.data, "flip_augment": args.flip_augment,
        "crop_augment": args.crop_augment, "aggregator": args.aggregator, "device": args.device,
        "embed_batch_size": args.embed_batch_size,
    }.items() if v is not None}
    exp_root = args.experiment if args.experiment.is_dir() else args.experiment.parent.parent
    exp = Experiment.open(exp_root)
    if args.dataset is not None and args.dataset != exp.final_args()["config"].get("dataset"):
        changes["dataset_options"] = {}  # the experiment's reader options are not this reader's
    trained = load_trained(args.experiment, "cpu", config_changes=changes)
    cfg = trained.config
    suffix = ".csv" if fmt == "csv" else ".h5"
    if args.images is not None:
        samples, name = _read_image_list(args.images), args.images.stem
        default_out = exp.path / OTHER_EMBEDDINGS / "images" / f"{name}{suffix}"
    else:
        split = load_dataset(cfg.dataset, cfg.data, **cfg.dataset_options)
        samples = getattr(split, args.part)
        default_out = exp.embeddings_path(args.part, args.dataset, args.data, suffix)
    device = distributed.setup(cfg.device)  # under torchrun: the process group too
    trained.model.to(device)
    try:
        with interruptible("embedding"):  # under torchrun each rank embeds its share
            embs, aug = trained.embed(samples, device)
    except Interrupted as stop:
        print(f"reidcore: {stop}; nothing was written", flush=True)
        return stop.exit_code
    if not distributed.is_main():  # rank 0 has every rank's rows and writes them
        return 0
    paths = [s.path for s in samples]
    out = None if args.output == "-" else Path(args.output or default_out)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        write_embeddings_csv(out, paths, embs)
    else:
        tracklets = None
        if samples and all("tracklet" in s.extras for s in samples):
            tracklets = np.array([s.extras["tracklet"] for s in samples], dtype=np.int64)
        write_embeddings(out, embs, np.array([s.pid for s in samples]),
                         np.array([s.camid for s in samples]), paths, augmented=aug,
                         tracklets=tracklets,
                         attrs={**trained.checkpoint, "dataset": cfg.dataset,
                                "part": args.part if args.images is None else "images"})
    if out is not None:
        print(f"wrote {len(samples)} embeddings of dimension {embs.shape[1]} to {out}")
    return 0
