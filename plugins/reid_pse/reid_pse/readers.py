"""The ``<name>-pose-maps`` dataset variants: a base reader's split with keypoints attached.

As in the authors' framework (seed README: "the datasets in our framework also have a
``<dataset-name>-pose-maps`` counterpart"), each variant reads the base dataset through the
registry (as :func:`reidcore.registry.load_dataset` does) and gives every image of train, query
and gallery ``extras["keypoints"]`` (:func:`reid_pse.keypoints.attach_keypoints`); the
pose maps themselves are rendered from them after augmentation
(:class:`reid_pse.pose_maps.PoseTrainTransform`). Registered names: ``market1501-pose-maps``,
``duke-pose-maps``, ``csv-pose-maps``, ``folder-pose-maps``, ``synthetic-pose-maps``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reid_pse.keypoints import KeypointsError, attach_keypoints
from reidcore.data import Split

SUFFIX = "-pose-maps"
#: Registered variant name -> reader function in this module (plugin.py lists the same).
VARIANTS = {
    "market1501-pose-maps": "read_market1501_pose_maps",
    "duke-pose-maps": "read_duke_pose_maps",
    "csv-pose-maps": "read_csv_pose_maps",
    "folder-pose-maps": "read_folder_pose_maps",
    "synthetic-pose-maps": "read_synthetic_pose_maps",
}


def read_pose_maps(
    base: str,
    root: str | os.PathLike | None,
    *,
    keypoints: str | os.PathLike | None = None,
    keypoint_estimator: str | None = None,
    name: str | None = None,
    **kwargs: Any,
) -> Split:
    """Read the registered dataset ``base`` and attach keypoints to every sample.

    Args:
        base: a registered dataset name (``market1501``, ``duke``, ...).
        root: the ``--data`` folder, passed to the base reader and searched for
            ``keypoints.csv``, ``*.mat`` (``pp``) and ``keypoints/<stem>.npy``.
        keypoints: an explicit keypoint CSV, ``.mat`` or folder, searched first.
        keypoint_estimator: a ``reid_keypoint_estimators`` name (e.g. ``keypointrcnn``) that
            estimates the keypoints of the images no file covers (``run ...
            --dataset-option keypoint_estimator=keypointrcnn``); nothing is stored: run
            ``python -m reidcore pse keypoints`` once to keep them in ``keypoints.csv``.
        name: the split's name (default ``"<base>-pose-maps"``).
        **kwargs: the base reader's own options, except ``keypoint_<option>=value``, which
            go to the estimator as ``<option>=value`` (``keypointrcnn``: ``keypoint_weights``
            = a state dict path or ``random``, ``keypoint_device``, ``keypoint_batch_size``,
            ``keypoint_min_size``, ``keypoint_max_size``, ``keypoint_proposals``,
            ``keypoint_min_confidence``; strings are accepted, as ``--dataset-option``
            gives them).

    Returns:
        The base split; every sample's ``extras`` gains ``"keypoints"`` ((J, 3) float32,
        0-based pixels of the original image) and ``"keypoint_source"``.

    Raises:
        DatasetError: the base reader's errors (missing folder, layout).
        KeypointsError: an image has no keypoints; names the first one and the places searched.
    """
    from reidcore.registry import registry

    # registry.load_dataset(base, root, **kwargs) minus its ``name`` clash: same reader call
    reader = registry("dataset").get(base)
    root = Path(root).expanduser() if root is not None else None
    prefix = "keypoint_"
    options = {k[len(prefix):]: kwargs.pop(k) for k in list(kwargs) if k.startswith(prefix)}
    if options and keypoint_estimator is None:
        raise KeypointsError(f"dataset option(s) {', '.join(prefix + k for k in options)} configure a "
                         "keypoint estimator, but none is named (keypoint_estimator=NAME)")
    split = reader(root, name=name or f"{base}{SUFFIX}", **kwargs)
    return attach_keypoints(split, root, keypoints=keypoints, estimator=keypoint_estimator,
                            estimator_options=options or None)


def _pose_map_reader(base: str, doc: str) -> Callable[..., Split]:
    """The ``<base>-pose-maps`` reader: :func:`read_pose_maps` of ``base``, its keypoint
    options in the signature (``list datasets`` shows them), the base reader's as ``**kwargs``."""

    def read(root: str | os.PathLike | None = None, *, keypoints: str | None = None,
             keypoint_estimator: str | None = None, **kwargs: Any) -> Split:
        return read_pose_maps(base, root, keypoints=keypoints,
                              keypoint_estimator=keypoint_estimator, **kwargs)

    read.__name__ = read.__qualname__ = f"read_{base}_pose_maps"
    read.__doc__ = f"{doc} (see :func:`read_pose_maps` for the options)."
    return read


read_market1501_pose_maps = _pose_map_reader("market1501", "``market1501`` with keypoints")
read_duke_pose_maps = _pose_map_reader("duke", "``duke`` (DukeMTMC-reID) with keypoints")
read_csv_pose_maps = _pose_map_reader("csv", "``csv`` (triplet-reid lists) with keypoints")
read_folder_pose_maps = _pose_map_reader(
    "folder", "``folder`` (one sub-folder per identity) with keypoints")
read_synthetic_pose_maps = _pose_map_reader(
    "synthetic", "``synthetic`` with its exact generated keypoints")
