"""``combined``: train on several datasets at once, evaluate on the first.

Usage::

    python -m reidcore run trinet --dataset combined --data "market1501=DIR1,duke=DIR2"
    load_dataset("combined", "market1501=DIR1,duke=DIR2")
    read_combined(None, datasets=[("market1501", DIR1), ("duke", DIR2)])

``--data`` is a comma-separated list of ``name=folder`` pairs (the folder may be empty for
a reader with a default, e.g. ``synthetic=``; folders cannot contain commas: use the
``datasets=`` keyword from Python then). Every name is a registered dataset (``python -m
reidcore list datasets``) read with its own reader, so each keeps its layout, checks and
index cache.

**Training part**: the training samples of every dataset, in the order given. Identities
of different datasets are kept apart: the ``k``-th training identity (in sorted order of
the original pid) of a dataset whose identities start after ``offset`` gets pid
``offset + k`` (1-based, so no pid is -1 or 0), each dataset's range following the
previous one's. ``Split.train_labels`` then relabels them to ``0..n-1`` as usual. Every
training sample keeps its reader's ``extras`` plus ``"dataset"`` (the name as given) and
``"original_pid"`` (the pid in that dataset).

**Query and gallery**: those of the first dataset, unchanged (original pids and extras),
so evaluation follows the first dataset's protocol.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from reid_datasets._common import log
from reidcore.data import Sample, Split
from reidcore.errors import DatasetError

USAGE = (
    "pass --data 'NAME=DIR,NAME=DIR' with registered dataset names (e.g. "
    "--data 'market1501=/data/market,duke=/data/duke'); the first also gives query and gallery"
)


def parse_spec(spec: str) -> list[tuple[str, str | None]]:
    """``"a=DIR1,b=DIR2"`` -> ``[("a", "DIR1"), ("b", "DIR2")]`` (an empty folder -> ``None``).

    Raises:
        DatasetError: an item is not ``NAME=DIR`` or no item is given.
    """
    out = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, eq, folder = item.partition("=")
        if not eq or not name.strip():
            raise DatasetError(f"combined: {item!r} is not NAME=DIR; {USAGE}")
        out.append((name.strip(), folder.strip() or None))
    if not out:
        raise DatasetError(f"combined: no dataset given; {USAGE}")
    return out


def combine(splits: list[tuple[str, Split]], name: str = "combined") -> Split:
    """Merge the training parts of ``splits`` with disjoint pids; query/gallery of the first."""
    train: list[Sample] = []
    offset = 0
    for dataset, split in splits:
        new = {pid: offset + k for k, pid in enumerate(split.train_pids, start=1)}
        train += [
            Sample(
                s.path,
                new[s.pid],
                s.camid,
                {**s.extras, "dataset": dataset, "original_pid": s.pid},
            )
            for s in split.train
        ]
        offset += len(new)
    first = splits[0][1]
    return Split(name, train, first.query, first.gallery)


def read_combined(
    root: str | os.PathLike | None = None,
    *,
    datasets: Mapping[str, str | os.PathLike | None]
    | Iterable[tuple[str, str | os.PathLike | None]]
    | None = None,
    name: str = "combined",
) -> Split:
    """Read several datasets into one training set (see the module docstring).

    Args:
        root: the ``--data`` string ``"NAME=DIR,NAME=DIR"`` (ignored when ``datasets`` is
            given).
        datasets: ``{name: folder}`` or ``[(name, folder), ...]``, in order.
        name: the :attr:`Split.name`.

    Returns:
        A :class:`~reidcore.data.Split`: the training samples of all datasets with
        disjoint pids, query and gallery of the first.

    Raises:
        DatasetError: no or malformed specification, ``combined`` inside itself, or a
            member dataset's own error (prefixed with its name).
        UnknownNameError: a name no plugin registers.
    """
    from reidcore.registry import load_dataset

    if datasets is not None:
        items = list(datasets.items() if isinstance(datasets, Mapping) else datasets)
        pairs = [(str(n), None if d is None else str(d)) for n, d in items]
        if not pairs:
            raise DatasetError(f"combined: no dataset given; {USAGE}")
    elif root is None:
        raise DatasetError(f"Dataset 'combined' needs its members: {USAGE}")
    else:
        pairs = parse_spec(str(root))
    splits = []
    for dataset, folder in pairs:
        if dataset == "combined":
            raise DatasetError("combined: a member cannot be 'combined' itself")
        path = Path(folder).expanduser() if folder is not None else None
        try:
            splits.append((dataset, load_dataset(dataset, path)))
        except DatasetError as exc:
            raise DatasetError(f"combined: member {dataset!r}: {exc}") from exc
    split = combine(splits, name)
    log.info(
        "%s (members: %s; query/gallery of %s)",
        split.summary(),
        ", ".join(f"{d} {s.num_train_pids} ids" for d, s in splits),
        pairs[0][0],
    )
    return split
