"""A third-party plugin written as an outside author would, with public reidcore API only.

- dataset ``acme-market``: the Market-1501 layout with a reader option ``max_train_ids``
  (keep only the first N training identities), passed as
  ``--dataset-option max_train_ids=N``;
- recipe ``acme-center``: the trinet model with batch-hard triplet + a center loss
  (Wen et al., ECCV 2016, Eq. 2) whose centres are trained in their own optimizer group at
  their own learning rate (``--center-lr``).
"""

from __future__ import annotations

from pathlib import Path

import attrs

from reidcore.data.records import Split
from reidcore.hookspecs import hookimpl
from reidcore.registry import load_dataset


def read_acme_market(root: Path | None, *, max_train_ids: int = 0) -> Split:
    """Market-1501 layout; ``max_train_ids`` > 0 keeps that many training identities."""
    split = load_dataset("market1501", root)
    if max_train_ids > 0:
        keep = sorted({s.pid for s in split.train})[:max_train_ids]
        split = attrs.evolve(split, train=[s for s in split.train if s.pid in keep])
    return split


@hookimpl
def reid_datasets():
    return {"acme-market": read_acme_market}


@hookimpl
def reid_recipes():
    return {"acme-center": "third_party.acme_recipe:CenterRecipe"}  # imported on first use
