"""A tiny plugin for the core's own tests: dataset, model and recipe that train in seconds.

The dataset ``tiny`` writes solid-colour 32×16 JPEGs into its root (one colour per
identity plus noise) in the Market-1501 folder layout, so the core can be tested with
no first-party plugin installed.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from reidcore.data.records import Split
from reidcore.errors import DatasetError
from reidcore.hookspecs import hookimpl
from reidcore.recipe import Recipe, TrainConfig, field
from reidcore.testing import read_tiny_market, write_tiny_market

#: flags that train the tiny recipe in a second (tests add their own after these: last wins)
TINY_FLAGS = ("--height", "32", "--width", "16", "--batch-p", "3", "--batch-k", "2", "--pad", "2",
              "--workers", "0", "--log-every", "1", "--pretrained", "none", "--lr", "0.01",
              "--embed-batch-size", "16")


def write_tiny_dataset(root: Path, **kw) -> Path:
    return write_tiny_market(root, **kw)


def read_tiny(root: Path | None, **_kw) -> Split:
    if root is None or not root.is_dir():
        raise DatasetError(f"tiny dataset folder {root} does not exist")
    return read_tiny_market(root)


def read_tiny_video(root: Path | None, **_kw) -> Split:
    """The tiny dataset as video: the images of one (pid, camera) form a tracklet."""
    import attrs as _attrs

    split = read_tiny(root)

    def with_tracklets(samples):
        keys = sorted({(s.pid, s.camid) for s in samples})
        index = {k: i for i, k in enumerate(keys)}
        return [_attrs.evolve(s, extras={"tracklet": index[(s.pid, s.camid)]}) for s in samples]

    return Split("tiny-video", split.train, with_tracklets(split.query),
                 with_tracklets(split.gallery))


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


class TinyStagedRecipe(TinyRecipe):
    """Two stages as the PSE seed trains: the head alone, then everything from that checkpoint."""

    name = "tiny-staged"

    def stages(self, cfg):
        from reidcore.recipe import Stage

        first = attrs.evolve(cfg, trainable_scopes="head", iterations=2, init_checkpoint=None)
        second = attrs.evolve(cfg, trainable_scopes="", init_checkpoint="previous",
                              checkpoint_exclude_scopes="")
        return [Stage("1-head", "tiny", first), Stage("2-all", "tiny", second)]


class TinyTargetsRecipe(TinyRecipe):
    """Dict inputs: the image plus a per-image target (its mean colour) for the criterion."""

    name = "tiny-targets"
    seen_targets: list = []

    def train_dataset(self, cfg, split, labels):
        base = super().train_dataset(cfg, split, labels)

        class WithTarget:
            def __len__(self):
                return len(base)

            def __getitem__(self, i):
                x, label, index = base[i]
                return {"image": x, "colour": x.mean(dim=(1, 2))}, label, index

        return WithTarget()

    def build_criterion(self, cfg):
        from torch import nn

        inner = super().build_criterion(cfg)
        seen = self.seen_targets

        class WithTargets(nn.Module):
            def forward(self, outputs, pids, targets):
                seen.append({k: tuple(v.shape) for k, v in targets.items()})
                return inner(outputs, pids)

        return WithTargets()


@hookimpl
def reid_datasets():
    return {"tiny": read_tiny, "tiny-video": read_tiny_video}


@hookimpl
def reid_models():
    return {"tiny": tiny_model}


@hookimpl
def reid_recipes():
    return {"tiny": TinyRecipe, "tiny-staged": TinyStagedRecipe, "tiny-targets": TinyTargetsRecipe}
