"""attrs records for re-ID samples and train/query/gallery splits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs


@attrs.frozen
class Sample:
    """One image of a person.

    Attributes:
        path: image file path (absolute, or as the reader found it).
        pid: the dataset's original person identity. ``-1`` marks junk images
            (Market-1501), ``0`` distractors.
        camid: camera index, 0-based.
        extras: optional per-sample fields a plugin needs (e.g. ``"keypoints"``:
            a ``(J, 3)`` float array of x, y in pixels and visibility; ``"view"``).
    """

    path: str
    pid: int
    camid: int
    extras: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)


def _summary(samples: Sequence[Sample]) -> str:
    pids = {s.pid for s in samples}
    cams = {s.camid for s in samples}
    return f"{len(pids)} ids, {len(samples)} images, {len(cams)} cameras"


@attrs.frozen
class Split:
    """A dataset read into its three parts.

    ``train`` keeps the dataset's original pids; :attr:`train_labels` relabels
    them to ``0..num_train_pids-1`` in sorted order of the original pid, the
    target of identity classifiers.
    """

    name: str
    train: tuple[Sample, ...] = attrs.field(converter=tuple)
    query: tuple[Sample, ...] = attrs.field(converter=tuple)
    gallery: tuple[Sample, ...] = attrs.field(converter=tuple)

    @property
    def train_pids(self) -> list[int]:
        return sorted({s.pid for s in self.train})

    @property
    def num_train_pids(self) -> int:
        return len(self.train_pids)

    @property
    def train_labels(self) -> list[int]:
        """Relabelled training pids (0..n-1), one per training sample."""
        index = {pid: i for i, pid in enumerate(self.train_pids)}
        return [index[s.pid] for s in self.train]

    def summary(self) -> str:
        """One line: ids, images and cameras per part."""
        return (
            f"{self.name}: train {_summary(self.train)} | query {_summary(self.query)} | "
            f"gallery {_summary(self.gallery)}"
        )
