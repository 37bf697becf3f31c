"""The view predictor measured: held-out part, confusion matrix, accuracy of a known model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reid_pse import view_eval as E

from reidcore.data import Sample, Split
from reidcore.testing import write_tiny_market


def _samples(n_ids: int, per_id: int = 3, pid_offset: int = 0) -> list[Sample]:
    return [Sample(f"/x/{p:04d}_{i}.jpg", p + pid_offset, 0) for p in range(n_ids)
            for i in range(per_id)]


def test_holdout_is_stable_by_identity_and_near_the_fraction():
    samples = _samples(1000)
    mask = E.holdout_mask(samples, 0.2)
    assert mask.dtype == bool and mask.shape == (3000,)
    by_pid = mask.reshape(1000, 3)
    assert (by_pid.all(1) | ~by_pid.any(1)).all()  # an identity is all in or all out
    assert 0.15 < by_pid[:, 0].mean() < 0.25
    np.testing.assert_array_equal(mask, E.holdout_mask(list(reversed(samples)), 0.2)[::-1])
    assert not E.holdout_mask(samples, 0.2, seed=1).tolist() == mask.tolist()
    assert not E.holdout_mask(samples, 0.0).any()
    # no identity (RAP v1): single images
    anon = [Sample(f"/r/{i}.png", -1, 0) for i in range(500)]
    assert 0.1 < E.holdout_mask(anon, 0.2).mean() < 0.3
    with pytest.raises(ValueError, match=r"\[0, 1\), got 1"):
        E.holdout_mask(samples, 1.0)


def test_holdout_keeps_one_group_on_each_side_of_tiny_sets():
    two = _samples(2)
    for fraction in (0.01, 0.99):
        m = E.holdout_mask(two, fraction).reshape(2, 3)[:, 0]
        assert m.sum() == 1, fraction


def test_confusion_matrix_by_hand():
    conf = E.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2])
    np.testing.assert_array_equal(conf, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


class AlwaysFront(torch.nn.Module):
    """A 'network' that predicts front (class 0) for every input."""

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 3)
        logits[:, 0] = 1
        return {"view_logits": logits, "embedding": x.flatten(1)[:, :4]}


def test_view_accuracy_of_a_known_model(tmp_path):
    import attrs
    from reid_pse.recipe import ViewsConfig

    root = write_tiny_market(tmp_path / "m", num_ids=40, cams=2, per_cam=1, size=(32, 16))
    paths = sorted(root.glob("bounding_box_train/*.jpg"))
    kp = np.zeros((14, 3), np.float32)
    views = ("front", "back", "side")
    train = [Sample(str(p), i // 2, 0, {"view": views[i % 3], "keypoints": kp})
             for i, p in enumerate(paths)]
    split = Split("toy", train, [], [])
    cfg = attrs.evolve(ViewsConfig(), height=32, width=16, embed_batch_size=7, view_holdout=0.3)
    out = E.view_accuracy(AlwaysFront(), cfg, split, "cpu")["views"]
    _, held, labels = E.split_view_labelled(train, 0.3)
    truth = labels[held]
    assert out["heldout_images"] == len(held) > 0
    assert out["train_images"] + out["heldout_images"] == len(train)
    assert out["labels"] == "dataset" and out["dataset"] == "toy"
    expected = np.zeros((3, 3), int)
    for t in truth:
        expected[t, 0] += 1
    assert out["confusion"] == expected.tolist()
    assert out["accuracy"] == pytest.approx(np.mean(truth == 0))
    assert out["per_class_accuracy"]["front"] == 1.0
    assert out["per_class_accuracy"]["back"] in (0.0, None)
    text = E.format_view_accuracy({"views": out})
    assert "held-out images of toy" in text and "true \\ predicted" in text
    assert f"accuracy {100 * out['accuracy']:.1f}%" in text
    # nothing held out: accuracy n/a
    none = E.view_accuracy(AlwaysFront(), attrs.evolve(cfg, view_holdout=0.0), split, "cpu")
    assert none["views"]["accuracy"] is None and none["views"]["heldout_images"] == 0
    assert "n/a (no held-out images)" in E.format_view_accuracy(none)
