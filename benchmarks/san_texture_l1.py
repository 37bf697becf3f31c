"""How much of a person's true texture each pseudo-texture source recovers, on unseen
identities of ``synthetic-textures`` (its query + gallery images; the true texture is known).

L1 (mean absolute error, RGB in [0, 1]) against the true 64x64 texture of:

* ``median``: the per-pixel median of the training identities' textures (a constant);
* ``keypoint``: :func:`reid_san.textures.texture_from_keypoints` of the image along its
  keypoints (parts not seen stay black), over all pixels and over the pixels it covers;
* ``keypoint_else_median``: the keypoint texture where it covers, the median elsewhere.

SAN-PG's figure on the same images is in ``san_market1501_holdout.json``
(``san_pg_test_l1``). No training; a few seconds.

    python benchmarks/san_texture_l1.py [--output benchmarks/results/san_texture_l1.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image
from reid_san.textures import read_synthetic_textures, texture_from_keypoints

from reidcore.atomic import atomic_write_json


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", type=Path,
                   default=Path(__file__).parent / "results" / "san_texture_l1.json")
    args = p.parse_args()
    split = read_synthetic_textures(None, texture_size=64)

    def load(path) -> np.ndarray:
        return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255

    median = np.median(np.stack([load(s.extras["texture"]) for s in split.train]), 0)
    rows = []
    for s in split.query + split.gallery:
        true = load(s.extras["texture"])
        kp = texture_from_keypoints(np.asarray(Image.open(s.path).convert("RGB")),
                                    s.extras["keypoints"], 64, head_point="centre")
        kp = kp.astype(np.float32) / 255
        covered = kp.sum(-1) > 0
        hybrid = np.where(covered[..., None], kp, median)
        err_kp, err_med = np.abs(true - kp).mean(-1), np.abs(true - median).mean(-1)
        rows.append((err_med.mean(), err_kp.mean(), np.abs(true - hybrid).mean(),
                     err_kp[covered].mean(), err_med[covered].mean(), covered.mean()))
    r = np.array(rows).mean(0)
    out = {"images": len(rows), "identities_unseen_in_training": True,
           "median_l1": r[0], "keypoint_l1": r[1], "keypoint_else_median_l1": r[2],
           "keypoint_l1_on_covered_pixels": r[3], "median_l1_on_covered_pixels": r[4],
           "keypoint_coverage": r[5]}
    out = {k: (float(v) if isinstance(v, np.floating) else v) for k, v in out.items()}
    atomic_write_json(args.output, out)
    for k, v in out.items():
        print(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}")


if __name__ == "__main__":
    main()
