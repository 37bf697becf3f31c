"""``python -m reidcore san``: SAN's texture tools (registered through ``reid_commands``).

* ``san textures --model EXP --input DIR --output DIR``: pseudo ground-truth textures of every
  image in a folder, predicted by a trained SAN-PG (Jin et al., AAAI 2020, Sec. 3.3; the
  authors' ``generate_texture.py``), one ``<stem>.png`` per image;
* ``san keypoint-textures --dataset NAME --data DIR --output DIR``: keypoint-warped pseudo
  textures (body parts cut along 14 keypoints, warped into the texture layout; our geometric
  substitute for SAN-PG, :func:`reid_san.textures.texture_from_keypoints`).

Either folder is then SAN's texture source: ``python -m reidcore run san --textures DIR``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = "SAN texture tools: SAN-PG pseudo textures, keypoint-warped textures"
PARTS = ("train", "query", "gallery", "all")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reidcore san", description=DESCRIPTION)
    sub = p.add_subparsers(dest="action", required=True, metavar="{textures,keypoint-textures}")
    t = sub.add_parser("textures", help="pseudo textures of a folder of images with a trained SAN-PG",
                       description="Write OUTPUT/<image stem>.png, SAN-PG's texture, for every "
                       "image in INPUT (the authors' generate_texture.py).")
    t.add_argument("--model", type=Path, required=True,
                   help="a trained san-pg experiment folder, or a checkpoint file inside one")
    t.add_argument("--input", type=Path, required=True, help="folder of person images")
    t.add_argument("--output", type=Path, required=True, help="texture folder (created)")
    t.add_argument("--size", type=int, default=None,
                   help="side of the written textures [SA-Dec's texture size]")
    t.add_argument("--batch-size", type=int, default=64, help="[64]")
    t.add_argument("--workers", type=int, default=0, help="DataLoader workers [0]")
    t.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N [auto]")
    t.add_argument("--overwrite", action="store_true", help="rewrite existing textures")

    k = sub.add_parser("keypoint-textures", help="keypoint-warped pseudo textures of a dataset",
                       description="Write OUTPUT/<image stem>.png, the body parts warped into the "
                       "texture layout along 14 keypoints, for a dataset's images.")
    k.add_argument("--dataset", required=True, help="dataset name (python -m reidcore list datasets)")
    k.add_argument("--data", type=Path, default=None, help="dataset root [the reader's default]")
    k.add_argument("--output", type=Path, required=True, help="texture folder (created)")
    k.add_argument("--keypoints", type=Path, default=None,
                   help="Market-1501 body-point CSV [DATA/keypoints.csv if present, else each "
                   "sample's extras['keypoints']]")
    k.add_argument("--part", choices=PARTS, default="train", help="[train]")
    k.add_argument("--size", type=int, default=64, help="texture side, a multiple of 16 [64]")
    k.add_argument("--head-point", choices=("top", "centre"), default="top",
                   help="what the head keypoint marks: top (Market-1501) | centre (synthetic) [top]")
    k.add_argument("--overwrite", action="store_true", help="rewrite existing textures")
    return p


def cmd_textures(args: argparse.Namespace) -> int:
    from reid_san.generator import generate_textures, list_images, load_texture_generator
    from reidcore.engine.device import resolve_device

    device = resolve_device(args.device)
    generator, cfg = load_texture_generator(args.model, device)
    images = list_images(args.input)
    written = generate_textures(generator, images, args.output, cfg.height, cfg.width,
                                size=args.size, batch_size=args.batch_size, workers=args.workers,
                                overwrite=args.overwrite, device=device)
    print(f"wrote {written} textures to {args.output} ({len(images) - written} already there)")
    return 0


def cmd_keypoint_textures(args: argparse.Namespace) -> int:
    from reid_san.textures import read_keypoints_csv, write_keypoint_textures
    from reidcore.registry import load_dataset

    split = load_dataset(args.dataset, args.data)
    samples = (split.train + split.query + split.gallery if args.part == "all"
               else list(getattr(split, args.part)))
    csv_path = args.keypoints
    if csv_path is None and args.data is not None and (args.data / "keypoints.csv").is_file():
        csv_path = args.data / "keypoints.csv"
    keypoints = read_keypoints_csv(csv_path) if csv_path is not None else None
    written = write_keypoint_textures(samples, args.output, args.size, keypoints,
                                      head_point=args.head_point, overwrite=args.overwrite)
    print(f"wrote {written} keypoint textures to {args.output} "
          f"({len(samples) - written} of the {len(samples)} images already there)")
    return 0


def main(argv: list[str]) -> int:
    """``python -m reidcore san {textures,keypoint-textures} ...``; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.action == "textures":
        return cmd_textures(args)
    return cmd_keypoint_textures(args)
