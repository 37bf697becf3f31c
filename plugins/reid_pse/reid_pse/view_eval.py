"""Measuring the view predictor: a held-out part of the view-labelled images, accuracy, confusion.

PSE's view predictor (Sarfraz et al., CVPR 2018, Sec. 3.1) classifies front / back / side
(:data:`reid_pse.views.VIEWS`). The ``views`` recipe (and stage 1 of ``pse``) trains it on the
view-labelled training images (RAP's labels, or keypoint pseudo-labels,
:func:`reid_pse.views.view_labels`) *except* a held-out part chosen by :func:`holdout_mask`;
after training, :func:`view_accuracy` classifies the held-out images and reports the accuracy
and the confusion matrix (``report.json["views"]`` and a printed table).

Held-out part: whole identities (``pid >= 0``; images of one person never fall on both
sides), or single images where there is no identity (RAP v1, ``pid = -1``), chosen by a
stable hash (SHA-1 of ``"<seed>:<pid or path>"``, seed 0 in the recipes) below ``fraction``:
the same images for every run, training seed, machine and Python process. With pseudo-labels the "truth" is the keypoint rule's
label, so the accuracy says how well the network reproduces that rule on unseen people.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from reid_pse.views import UNKNOWN, VIEWS, view_labels

#: Default share of the view-labelled identities (or images) held out from view training.
HOLDOUT_FRACTION = 0.2


def _unit(key: str) -> float:
    return int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") / 2.0 ** 64


def holdout_mask(samples: Sequence[Any], fraction: float = HOLDOUT_FRACTION,
                 seed: int = 0) -> np.ndarray:
    """``(N,)`` bool: which samples are held out from view training.

    Args:
        samples: :class:`~reidcore.data.Sample` objects (``pid``, ``path``).
        fraction: the share of identities (images without one: of images) held out, in
            ``[0, 1)``; 0 holds out nothing. With ``fraction > 0`` and at least two groups,
            at least one group is held out and at least one is kept (tiny datasets).
        seed: changes the choice.

    Raises:
        ValueError: ``fraction`` outside ``[0, 1)``.
    """
    if not 0.0 <= float(fraction) < 1.0:
        raise ValueError(f"view hold-out fraction must lie in [0, 1), got {fraction}")
    keys = [f"{seed}:pid{s.pid}" if int(s.pid) >= 0 else f"{seed}:{s.path}" for s in samples]
    units = {k: _unit(k) for k in keys}
    held = {k for k, u in units.items() if u < float(fraction)}
    if fraction > 0 and len(units) >= 2:  # at least one group on each side
        order = sorted(units, key=units.get)
        if not held:
            held = {order[0]}
        elif len(held) == len(units):
            held.discard(order[-1])
    return np.array([k in held for k in keys], dtype=bool)


def split_view_labelled(samples: Sequence[Any], fraction: float = HOLDOUT_FRACTION,
                        seed: int = 0) -> tuple[list[int], list[int], np.ndarray]:
    """Indices of the view-labelled samples for training and for measuring, and all labels.

    Returns:
        ``(train indices, held-out indices, labels (N,) int64)``; samples whose view is
        unknown (``-1``) are in neither list.
    """
    labels = view_labels(samples)
    held = holdout_mask(samples, fraction, seed)
    known = labels != UNKNOWN
    train = [int(i) for i in np.flatnonzero(known & ~held)]
    test = [int(i) for i in np.flatnonzero(known & held)]
    return train, test, labels


def confusion_matrix(truth: Sequence[int], predicted: Sequence[int]) -> np.ndarray:
    """``(3, 3)`` int64 counts: row = true view, column = predicted view (:data:`VIEWS` order)."""
    out = np.zeros((len(VIEWS), len(VIEWS)), np.int64)
    np.add.at(out, (np.asarray(truth, np.int64), np.asarray(predicted, np.int64)), 1)
    return out


def predict_views(model, dataset, *, batch_size: int = 64, device="cpu") -> np.ndarray:
    """The view class (argmax of ``view_logits``) of every item of ``dataset``, ``(N,)`` int64.

    ``model``: a network returning ``{"view_logits": (B, 3)}`` in eval mode
    (:class:`reid_pse.model.PSENet` with views); ``dataset`` yields ``(x, label, index)``.
    """
    import torch
    from torch.utils.data import DataLoader

    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            for x, _, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
                out.append(model(x.to(device))["view_logits"].argmax(1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy().astype(np.int64) if out else np.zeros(0, np.int64)


def view_accuracy(model, cfg, split, device, *, fraction: float | None = None) -> dict[str, Any]:
    """The view predictor's accuracy on the held-out view-labelled training images of ``split``.

    Args:
        model: the trained network (:class:`reid_pse.model.PSENet` with views).
        cfg: the recipe config (``height``, ``width``, ``sigma``, ``pose_channels``,
            ``embed_batch_size`` and ``view_holdout`` are used).
        split: the view dataset (its ``train`` part, as the view stage trained on it).
        device: torch device of ``model``.
        fraction: the hold-out share (default ``cfg.view_holdout``).

    Returns:
        ``{"views": {"dataset", "labels" ("dataset" | "keypoint pseudo-labels" | "mixed"),
        "holdout_fraction", "train_images", "heldout_images", "accuracy" (None without
        held-out images), "per_class_accuracy" {view: float | None}, "classes",
        "confusion" (3x3 list, rows true, columns predicted)}}``.
    """
    from reid_pse.dataset import PoseMapDataset
    from reid_pse.pose_maps import PoseTestTransform, RGBOnly

    fraction = cfg.view_holdout if fraction is None else fraction
    train_idx, test_idx, labels = split_view_labelled(split.train, fraction)
    samples = [split.train[i] for i in test_idx]
    truth = labels[test_idx]
    predicted = np.zeros(0, np.int64)
    if samples:

        transform = PoseTestTransform(cfg.height, cfg.width, cfg.sigma)
        if not getattr(cfg, "pose_channels", True):
            transform = RGBOnly(transform)
        dataset = PoseMapDataset(samples, None, cfg.height, cfg.width, transform)
        predicted = predict_views(model, dataset, batch_size=cfg.embed_batch_size, device=device)
    conf = confusion_matrix(truth, predicted)
    own = [("view" in (split.train[i].extras or {})) for i in (*train_idx, *test_idx)]
    kind = ("dataset" if own and all(own) else
            "keypoint pseudo-labels" if not any(own) else "mixed")
    per_class = {v: (float(conf[c, c] / conf[c].sum()) if conf[c].sum() else None)
                 for c, v in enumerate(VIEWS)}
    return {"views": {
        "dataset": split.name, "labels": kind, "holdout_fraction": float(fraction),
        "train_images": len(train_idx), "heldout_images": len(test_idx),
        "accuracy": float(np.trace(conf) / conf.sum()) if conf.sum() else None,
        "per_class_accuracy": per_class, "classes": list(VIEWS), "confusion": conf.tolist(),
    }}


def format_view_accuracy(metrics: dict[str, Any]) -> str:
    """The printed form of :func:`view_accuracy`'s result ("" when it has no ``views``)."""
    v = metrics.get("views")
    if not v:
        return ""
    acc = "n/a (no held-out images)" if v["accuracy"] is None else f"{100 * v['accuracy']:.1f}%"
    lines = [f"view predictor on {v['heldout_images']} held-out images of {v['dataset']} "
             f"({v['labels']}; {v['train_images']} trained on): accuracy {acc}",
             "true \\ predicted |" + "".join(f"{c:>8}" for c in v["classes"]) + " | accuracy"]
    for c, row in zip(v["classes"], v["confusion"], strict=True):
        pc = v["per_class_accuracy"][c]
        lines.append(f"{c:>16} |" + "".join(f"{n:>8}" for n in row)
                     + f" | {'n/a' if pc is None else f'{100 * pc:.1f}%'}")
    return "\n".join(lines)
