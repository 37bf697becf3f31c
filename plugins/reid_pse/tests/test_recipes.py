"""The views / pose-maps / pse recipes end to end on a tiny Market-layout set with keypoints:
staged training freezes what it says, stage chaining, test-time pose inputs, ECN-free report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reidcore.cli import main
from reidcore.engine import checkpoint
from reidcore.testing import write_tiny_market

# 0-based (x, y) of the 14 Market joints of a person facing the camera in a 64x32 image
FRONT = np.array([[16, 4], [16, 12], [10, 14], [8, 22], [7, 30], [22, 14], [24, 22], [25, 30],
                  [12, 34], [12, 46], [12, 58], [20, 34], [20, 46], [20, 58]], dtype=float)


def person(view: str) -> np.ndarray:
    xy = FRONT.copy()
    if view == "back":  # left/right joints on the other side
        xy[:, 0] = 32 - 1 - xy[:, 0]
    elif view == "side":  # narrow shoulders and hips
        xy[:, 0] = 16 + (xy[:, 0] - 16) * 0.1
    return xy


def write_keypoints_csv(root: Path) -> None:
    views = ("front", "back", "side")
    rows = ["image," + ",".join(f"x{j}" for j in range(14)) + "," + ",".join(f"y{j}" for j in range(14))]
    for i, p in enumerate(sorted(root.glob("*/*.jpg"))):
        xy = person(views[i % 3]) + 1  # the CSV is 1-based
        rows.append(p.name + "," + ",".join(str(int(v)) for v in xy[:, 0]) + ","
                    + ",".join(str(int(v)) for v in xy[:, 1]))
    (root / "keypoints.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    root = write_tiny_market(tmp_path_factory.mktemp("market"), num_ids=8, cams=2, per_cam=3,
                             size=(64, 32))
    write_keypoints_csv(root)
    return root


SMALL = ["--backbone", "resnet18", "--pretrained", "none", "--height", "64", "--width", "32",
         "--batch-p", "2", "--batch-k", "2", "--workers", "0", "--embedding-dim", "16",
         "--embed-batch-size", "8", "--pad", "2", "--lr", "0.01", "--no-tensorboard"]


def _params(exp: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load_latest(exp)["model"]


def _changed(a: dict, b: dict, prefix: str) -> bool:
    keys = [k for k in a if k.startswith(prefix) and a[k].is_floating_point()
            and not k.endswith(("running_mean", "running_var"))]
    assert keys, prefix
    return any(not torch.equal(a[k], b[k]) for k in keys)


def test_pse_stages_train_what_they_say(market, tmp_path):
    exp = tmp_path / "pse"
    code = main(["run", "pse", "--dataset", "market1501-pose-maps", "--data", str(market),
                 "--experiment", str(exp), *SMALL, "--view-iterations", "2", "--view-batch-k", "2",
                 "--new-layers-iterations", "2", "--iterations", "2", "--flip-augment",
                 "--keep-stage-checkpoints"])
    assert code == 0
    report = json.loads((exp / "report.json").read_text())
    assert [s["stage"] for s in report["stages"]] == ["1-views", "2-new-layers", "3-all"]
    assert report["recipe"] == "pse" and 0 <= report["mAP"] <= 1
    # the final network's view predictor on the images held out from stage 1
    v = report["views"]
    assert v["labels"] == "keypoint pseudo-labels" and v["heldout_images"] > 0
    assert v["train_images"] + v["heldout_images"] == 24  # every training image has a view
    assert sum(map(sum, v["confusion"])) == v["heldout_images"]
    assert 0 <= v["accuracy"] <= 1
    views = _params(exp / "stages" / "1-views")
    new = _params(exp / "stages" / "2-new-layers")
    final = _params(exp / "stages" / "3-all")
    torch.manual_seed(0)  # the stage's seed: its initial weights
    from reid_pse.recipe import PSERecipe, ViewsConfig

    init = PSERecipe().build_model(ViewsConfig(backbone="resnet18", pretrained="none",
                                               embedding_dim=16), 4).state_dict()
    # stage 1: only the view predictor
    assert _changed(init, views, "view_predictor.")
    for frozen in ("backbone.", "view_units.", "pre_logits.", "classifier."):
        assert not _changed(init, views, frozen), frozen
    # stage 2: first conv, view units, pre_logits, classifier; the rest (and the views) kept
    for trained in ("backbone.conv1.", "view_units.", "pre_logits.", "classifier."):
        assert _changed(views, new, trained), trained
    for frozen in ("backbone.layer1.", "backbone.layer3.", "backbone.bn1.", "view_predictor."):
        assert not _changed(views, new, frozen), frozen
    for k in ("backbone.bn1.running_mean", "backbone.layer2.0.bn1.running_var"):
        assert torch.equal(views[k], new[k]), k  # frozen BatchNorm keeps its statistics
    # stage 3: everything
    for trained in ("backbone.layer1.", "backbone.layer3.", "view_predictor.", "view_units."):
        assert _changed(new, final, trained), trained
    # the final checkpoint's model is what was evaluated (embeddings of 3+J-channel inputs)
    import h5py

    with h5py.File(exp / "embeddings" / "query.h5") as f:
        assert f["embs"].shape[1] == 16 and f["embs_augmented"].shape[1] == 2


def test_pose_maps_recipe_two_stages_and_views_alone(market, tmp_path, capsys):
    exp = tmp_path / "pm"
    assert main(["run", "pose-maps", "--dataset", "market1501-pose-maps", "--data", str(market),
                 "--experiment", str(exp), *SMALL, "--iterations", "4", "--keep-stage-checkpoints"]) == 0
    report = json.loads((exp / "report.json").read_text())
    assert [s["stage"] for s in report["stages"]] == ["1-new-layers", "2-all"]
    first, second = _params(exp / "stages" / "1-new-layers"), _params(exp / "stages" / "2-all")
    assert "view_predictor.0.weight" not in first
    assert _changed(first, second, "backbone.layer2.")
    exp = tmp_path / "views"
    assert main(["run", "views", "--dataset", "market1501-pose-maps", "--data", str(market),
                 "--experiment", str(exp), *SMALL, "--batch-p", "3", "--iterations", "2"]) == 0
    log = (exp / "train.log").read_text()
    assert "view/accuracy" in log and "in scopes 'view_predictor'" in log
    # measured on held-out identities: accuracy and confusion in report.json and printed
    from reid_pse.view_eval import split_view_labelled

    from reidcore.registry import load_dataset

    v = json.loads((exp / "report.json").read_text())["views"]
    split = load_dataset("market1501-pose-maps", market)
    train, held, labels = split_view_labelled(split.train, 0.2)
    assert (v["train_images"], v["heldout_images"]) == (len(train), len(held))
    assert len(held) > 0 and len({split.train[i].pid for i in held} & {split.train[i].pid
                                                                       for i in train}) == 0
    conf = np.array(v["confusion"])
    np.testing.assert_array_equal(conf.sum(1), np.bincount(labels[held], minlength=3))
    assert v["accuracy"] == pytest.approx(np.trace(conf) / len(held))
    out = capsys.readouterr().out
    assert f"view predictor on {len(held)} held-out images" in out
    assert f"accuracy {100 * v['accuracy']:.1f}%" in out and "true \\ predicted" in out


def test_pse_on_a_dataset_without_keypoints_names_the_first_image(tmp_path, capsys):
    root = write_tiny_market(tmp_path / "m", size=(64, 32))
    code = main(["run", "pse", "--dataset", "market1501-pose-maps", "--data", str(root),
                 "--experiment", str(tmp_path / "e"), *SMALL, "--iterations", "1"])
    assert code != 0
    err = capsys.readouterr().err
    assert "0001_c1s1_000000_00.jpg" in err and "keypoints" in err


def test_pose_maps_without_pose_channels_is_the_rgb_only_baseline(market, tmp_path):
    exp = tmp_path / "rgb"
    assert main(["run", "pose-maps", "--dataset", "market1501-pose-maps", "--data", str(market),
                 "--experiment", str(exp), *SMALL, "--iterations", "4", "--flip-augment",
                 "--no-pose-channels"]) == 0
    report = json.loads((exp / "report.json").read_text())
    assert [s["stage"] for s in report["stages"]] == ["1-new-layers", "2-all"]  # as pose-maps
    assert json.loads((exp / "args.json").read_text())["config"]["pose_channels"] is False
    final = _params(exp / "stages" / "2-all")
    assert final["backbone.conv1.weight"].shape[1] == 3  # RGB only
    # the same augmentation as with pose maps, without the map channels
    from reid_pse.pose_maps import PoseTrainTransform, RGBOnly

    image = torch.randint(0, 255, (3, 64, 32), dtype=torch.uint8)
    kp = np.concatenate([person("front"), np.ones((14, 1))], 1)
    full = PoseTrainTransform(64, 32, 4, True, 0.5)
    torch.manual_seed(3)
    a = full(image, kp)
    torch.manual_seed(3)
    b = RGBOnly(full)(image, kp)
    assert a.shape[0] == 17 and b.shape[0] == 3
    torch.testing.assert_close(b, a[:3])
