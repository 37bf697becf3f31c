"""``python -m reidcore pse ...``: the PSE plugin's command-line tools.

Subcommands:

* ``pose-maps``: render the pose maps of every image of a dataset (train, query and
  gallery) and store them with the keypoints used (:mod:`reid_pse.pose_map_files`)::

      python -m reidcore pse pose-maps --dataset market1501 --data DIR --output MAPS \\
          [--height 128 --width 64 --sigma S] [--keypoints PATH] [--keypoint-estimator NAME] \\
          [--keypoint-weights PATH]

  Keypoints come from the reader's extras, ``--keypoints``, ``DIR/keypoints.csv``,
  ``DIR/*.mat`` (``pp``), ``DIR/keypoints/<stem>.npy``, then the estimator
  (:func:`reid_pse.keypoints.attach_keypoints`); an image without any is an error naming it.
* ``keypoints``: estimate the body keypoints of every image of a dataset with a registered
  keypoint estimator (``keypointrcnn``: torchvision's Keypoint R-CNN,
  :mod:`reid_pse.keypointrcnn`) into ``keypoints.csv``, written atomically after every chunk
  and resumed where a killed run stopped (:mod:`reid_pse.keypoint_estimation`)::

      python -m reidcore pse keypoints --dataset duke --data DIR [--estimator keypointrcnn] \\
          [--weights PATH] [--output DIR/keypoints.csv] [--batch-size 8] [--device cuda]

  The table lands where the ``*-pose-maps`` datasets look for it (``DIR/keypoints.csv``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = "Pose-Sensitive Embedding (Sarfraz et al., CVPR 2018) tools"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reidcore pse", description=DESCRIPTION)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    pm = sub.add_parser(
        "pose-maps",
        help="render and store the pose maps (one Gaussian heat map per joint) of a dataset",
        description="Render the pose maps of every image (train, query, gallery) of a dataset "
                    "into OUTPUT/<image stem>.npy ((J, H, W) float16) and write the keypoints "
                    "used to OUTPUT/keypoints.csv (1-based pixels; OUTPUT is then itself a "
                    "keypoint source) and OUTPUT/pose_maps.json.",
    )
    pm.add_argument("--dataset", required=True,
                    help="a registered dataset (e.g. market1501 or market1501-pose-maps)")
    pm.add_argument("--data", type=Path, help="dataset root folder")
    pm.add_argument("--output", type=Path, required=True, help="output folder (created)")
    pm.add_argument("--height", type=int, default=128, help="map height in pixels [128]")
    pm.add_argument("--width", type=int, default=64, help="map width in pixels [64]")
    pm.add_argument("--sigma", type=float, default=None,
                    help="Gaussian standard deviation in map pixels "
                         "[height * 17 / 512 / sqrt(2 ln 2): 3.61 at height 128]")
    pm.add_argument("--keypoints", type=Path, default=None,
                    help="a keypoint CSV, .mat (pp) or folder, searched before the data folder")
    pm.add_argument("--keypoint-estimator", default=None,
                    help="a registered keypoint estimator (reid_keypoint_estimators hook) for "
                         "images without keypoints [none]")
    pm.add_argument("--keypoint-weights", default=None,
                    help="the estimator's weights (keypointrcnn: a state dict path, or random) "
                         "[torchvision's download]")
    pm.add_argument("--keypoints-only", action="store_true",
                    help="write only keypoints.csv and pose_maps.json, no map files")
    _keypoints_parser(sub)
    return p


def _keypoints_parser(sub) -> None:
    kp = sub.add_parser(
        "keypoints",
        help="estimate the body keypoints of a dataset into keypoints.csv (resumable)",
        description="Estimate the 14 body keypoints of every image (train, query, gallery) of a "
                    "dataset with a registered keypoint estimator and write them to "
                    "keypoints.csv (image,x0..x13,y0..y13 in 1-based pixels, v0..v13 "
                    "confidences). The table is rewritten atomically after every chunk; a "
                    "killed run resumes where it stopped.",
    )
    kp.add_argument("--dataset", required=True,
                    help="a registered dataset (a *-pose-maps name reads its base dataset)")
    kp.add_argument("--data", type=Path, help="dataset root folder")
    kp.add_argument("--estimator", default="keypointrcnn",
                    help="a registered keypoint estimator [keypointrcnn]")
    kp.add_argument("--output", type=Path, default=None,
                    help="the table to write or resume [DATA/keypoints.csv]")
    kp.add_argument("--weights", default=None,
                    help="keypointrcnn: a local state dict (torchvision's "
                         "keypointrcnn_resnet50_fpn_coco-fc266e95.pth) [download it with "
                         "torchvision]; 'random' = random initialisation (tests only)")
    kp.add_argument("--batch-size", type=int, default=None,
                    help="keypointrcnn: images per forward pass [8]")
    kp.add_argument("--device", default=None, help="keypointrcnn: torch device [cuda if present]")
    kp.add_argument("--min-size", type=int, default=None,
                    help="keypointrcnn: shorter image side after torchvision's resize [800]")
    kp.add_argument("--max-size", type=int, default=None,
                    help="keypointrcnn: cap of the longer side [1333]")
    kp.add_argument("--proposals", type=int, default=None,
                    help="keypointrcnn: RPN proposals per image [1000]")
    kp.add_argument("--min-confidence", type=float, default=None,
                    help="keypointrcnn: joints below it are missing [0.2]")
    kp.add_argument("--chunk-size", type=int, default=256,
                    help="images per table write (the resume granularity) [256]")
    kp.add_argument("--no-progress", action="store_true", help="no progress bar")


def cmd_keypoints(args: argparse.Namespace) -> int:
    """Run ``pse keypoints``; prints a summary; returns 0."""
    from reid_pse.keypoint_estimation import estimate_to_csv
    from reid_pse.keypoints import CSV_NAME, PART_NAMES
    from reid_pse.readers import SUFFIX, VARIANTS
    from reidcore.registry import load_dataset, registry

    if args.chunk_size < 1:
        raise ValueError(f"--chunk-size must be >= 1, got {args.chunk_size}")
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.output is None and args.data is None:
        raise ValueError("give --output (or --data, whose keypoints.csv is the default output)")
    registry("keypoint_estimator").get(args.estimator)  # unknown name: error before reading
    dataset = args.dataset[:-len(SUFFIX)] if args.dataset in VARIANTS else args.dataset
    split = load_dataset(dataset, args.data)
    paths = [s.path for part in PART_NAMES for s in getattr(split, part)]
    output = args.output if args.output is not None else Path(args.data) / CSV_NAME
    options = {"weights": args.weights, "batch_size": args.batch_size, "device": args.device,
               "min_size": args.min_size, "max_size": args.max_size, "proposals": args.proposals,
               "min_confidence": args.min_confidence}
    options = {k: v for k, v in options.items() if v is not None}
    if args.estimator == "keypointrcnn":
        options["progress"] = False  # one bar over the whole run instead of one per chunk
    s = estimate_to_csv(paths, output, args.estimator, options=options,
                        chunk_size=args.chunk_size, progress=not args.no_progress)
    print(f"keypoints of {s.images} images of {args.dataset} in {s.output} "
          f"({s.resumed} resumed, {s.estimated} estimated with {args.estimator}"
          + (f"; {100 * s.joints_found:.1f}% of their joints found)" if s.estimated else ")"))
    return 0


def load_split_with_keypoints(dataset: str, data: Path | None, *, keypoints: Path | None = None,
                              estimator: str | None = None, weights: str | None = None):
    """Read ``dataset`` and attach keypoints; a ``*-pose-maps`` name gets the options directly.

    Raises:
        UnknownNameError: unknown dataset or estimator.
        DatasetError / KeypointsError: the reader's or the keypoint search's errors.
    """
    from reid_pse import readers
    from reid_pse.keypoints import attach_keypoints
    from reid_pse.readers import VARIANTS
    from reidcore.registry import load_dataset, registry

    options = {"weights": weights} if weights is not None else {}
    if dataset in VARIANTS and registry("dataset").get(dataset) is getattr(readers, VARIANTS[dataset]):
        return load_dataset(dataset, data, keypoints=keypoints, keypoint_estimator=estimator,
                            **{f"keypoint_{k}": v for k, v in options.items()})
    split = load_dataset(dataset, data)
    return attach_keypoints(split, data, keypoints=keypoints, estimator=estimator,
                            estimator_options=options or None)


def cmd_pose_maps(args: argparse.Namespace) -> int:
    """Run ``pse pose-maps``; prints a summary; returns 0."""
    from reid_pse.pose_map_files import write_pose_maps
    from reid_pse.pose_maps import default_sigma

    if args.height < 1 or args.width < 1:
        raise ValueError(f"--height and --width must be >= 1, got {args.height}x{args.width}")
    if args.sigma is not None and not args.sigma > 0:
        raise ValueError(f"--sigma must be > 0 pixels, got {args.sigma}")
    sigma = args.sigma if args.sigma is not None else default_sigma(args.height)
    split = load_split_with_keypoints(args.dataset, args.data, keypoints=args.keypoints,
                                      estimator=args.keypoint_estimator,
                                      weights=args.keypoint_weights)
    s = write_pose_maps(split, args.output, args.height, args.width, sigma,
                        maps=not args.keypoints_only, dataset=args.dataset)
    parts = ", ".join(f"{k} {v}" for k, v in s.counts.items())
    what = (f"{s.images} pose maps (14 x {s.height} x {s.width} float16, sigma {s.sigma:.2f} px)"
            if s.maps else f"keypoints of {s.images} images (no maps: --keypoints-only)")
    print(f"wrote {what} for {args.dataset} ({parts}) to {s.output} "
          f"({s.bytes_written / 2**20:.1f} MiB)")
    for src, n in s.sources.items():
        print(f"  keypoints from {src}: {n} images")
    return 0


def main(argv: list[str]) -> int:
    """Entry point of ``python -m reidcore pse``: returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "pose-maps":
        return cmd_pose_maps(args)
    if args.command == "keypoints":
        return cmd_keypoints(args)
    parser.print_help(sys.stderr)
    return 2
