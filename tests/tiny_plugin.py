"""A tiny plugin for the core's own tests: dataset, model and recipe that train in seconds.

The dataset ``tiny`` writes solid-colour 32×16 JPEGs into its root (one colour per
identity plus noise) in the Market-1501 folder layout, so the core can be tested with
no first-party plugin installed.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np

from reidcore.data.records import Sample, Split
from reidcore.errors import DatasetError
from reidcore.hookspecs import hookimpl
from reidcore.recipe import Recipe, TrainConfig, field


def write_tiny_dataset(root: Path, num_ids: int = 8, cams: int = 2, per_cam: int = 3,
                       seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 255, size=(num_ids, 3))
    for folder, pids in (("bounding_box_train", range(1, num_ids // 2 + 1)),
                         ("test", range(num_ids // 2 + 1, num_ids + 1))):
        for pid in pids:
            for cam in range(1, cams + 1):
                for k in range(per_cam):
                    img = np.clip(colours[pid - 1] + rng.normal(0, 20, (32, 16, 3)), 0, 255)
                    sub = folder if folder != "test" else ("query" if k == 0 else "bounding_box_test")
                    out = root / sub / f"{pid:04d}_c{cam}s1_{k:06d}_00.jpg"
                    out.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(img.astype(np.uint8)).save(out)
    return root


def read_tiny(root: Path | None, **_kw) -> Split:
    if root is None or not root.is_dir():
        raise DatasetError(f"tiny dataset folder {root} does not exist")
    parts = {}
    for part, folder in (("train", "bounding_box_train"), ("query", "query"),
                         ("gallery", "bounding_box_test")):
        files = sorted((root / folder).glob("*.jpg"))
        if not files:
            raise DatasetError(f"{root / folder} has no .jpg files")
        parts[part] = [Sample(str(f), int(f.name[:4]), int(f.name[6]) - 1) for f in files]
    return Split("tiny", **parts)


def tiny_model(num_classes: int = 0, **_kw):
    import torch
    from torch import nn

    class Tiny(nn.Module):
        embedding_dim = 8

        def __init__(self):
            super().__init__()
            self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                          nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor):
            return {"embedding": self.head(self.backbone(x))}

    return Tiny()


@attrs.define(kw_only=True)
class TinyConfig(TrainConfig):
    nan_at_iteration: int = field(-1, "make the loss NaN from this iteration on (tests)")


class TinyRecipe(Recipe):
    name = "tiny"
    description = "a tiny conv net with a batch-hard-like loss, for the core's tests"
    config_class = TinyConfig

    def build_model(self, cfg, num_classes):
        return tiny_model()

    def build_criterion(self, cfg):
        import torch
        from torch import nn

        class Crit(nn.Module):
            calls = 0

            def forward(self, outputs, pids):
                e = outputs["embedding"].float()
                d = torch.cdist(e, e)
                same = pids[:, None] == pids[None, :]
                pos = (d * same).max(1).values
                neg = (d + 1e6 * same).min(1).values
                loss = nn.functional.softplus(pos - neg).mean()
                Crit.calls += 1
                if 0 <= cfg.nan_at_iteration < Crit.calls:
                    loss = loss * float("nan")
                return loss, {"loss": float(loss.detach())}

        return Crit()


@hookimpl
def reid_datasets():
    return {"tiny": read_tiny}


@hookimpl
def reid_models():
    return {"tiny": tiny_model}


@hookimpl
def reid_recipes():
    return {"tiny": TinyRecipe}
