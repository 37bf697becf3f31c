"""Recipes for the DDP tests: the tiny recipe with a recording dataset, and a per-sample loss.

``tiny-record`` is the ``tiny`` recipe whose training dataset appends every index it
loads to ``$REIDCORE_TEST_RECORD/indices-rank{RANK}.txt`` (when that variable is set), so
a test sees which samples each rank of a ``torchrun`` job trained on, in order.

``tiny-center`` trains the tiny model with a per-sample loss that has trainable
parameters (a centre per identity, mean squared distance of each embedding to its
identity's centre): the mean over the batch, so DDP without gathering must give the
gradient of the global batch, and the loss's own parameters must be averaged over ranks.
"""

from __future__ import annotations

import os
from pathlib import Path

from tiny_plugin import TinyRecipe

from reidcore.hookspecs import hookimpl

RECORD_ENV = "REIDCORE_TEST_RECORD"


def record(kind: str, line: str) -> None:
    """Append ``line`` to ``$REIDCORE_TEST_RECORD/{kind}-rank{RANK}.txt`` when it is set."""
    folder = os.environ.get(RECORD_ENV)
    if folder:
        with open(Path(folder) / f"{kind}-rank{os.environ.get('RANK', '0')}.txt", "a") as f:
            f.write(line + "\n")


class RecordingRecipe(TinyRecipe):
    name = "tiny-record"

    def train_dataset(self, cfg, split, labels):
        base = super().train_dataset(cfg, split, labels)

        class Recording:
            def __len__(self):
                return len(base)

            def __getitem__(self, i):
                record("indices", str(int(i)))
                return base[i]

        return Recording()


class CenterRecipe(RecordingRecipe):
    name = "tiny-center"

    def build_criterion(self, cfg):
        import torch
        from torch import nn

        class CenterLoss(nn.Module):
            def __init__(self):
                super().__init__()
                self.centers = nn.Parameter(torch.linspace(-1, 1, 4 * 8).reshape(4, 8))

            def forward(self, outputs, pids):
                e = outputs["embedding"].float()
                loss = (e - self.centers[pids]).square().sum(1).mean()
                return loss, {"loss": float(loss.detach())}

        return CenterLoss()


@hookimpl
def reid_recipes():
    return {"tiny-record": RecordingRecipe, "tiny-center": CenterRecipe}
