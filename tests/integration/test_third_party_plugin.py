"""A third-party plugin (tests/integration/third_party) through the public API: a center loss
with its own optimizer group and learning rate, and a reader option given by --dataset-option."""

from __future__ import annotations

import json

import pytest
import torch
from third_party import acme_reid

from reidcore.cli import main
from reidcore.engine.checkpoint import load_latest
from reidcore.testing import TINY_RUN_FLAGS, registered_plugin, write_tiny_market


def _run(data, exp, *flags):
    argv = ["run", "acme-center", "--dataset", "acme-market", "--data", str(data),
            *TINY_RUN_FLAGS, "--schedule", "constant", *flags, "--experiment", str(exp)]
    return main(argv)


def test_center_loss_trains_its_centres_in_their_own_group(tmp_path, monkeypatch):
    monkeypatch.setenv("REIDCORE_CACHE", str(tmp_path / "cache"))
    data = write_tiny_market(tmp_path / "market", num_ids=12)
    exp = tmp_path / "exp"
    with registered_plugin(acme_reid, "acme"):
        rc = _run(data, exp, "--lr", "0.001", "--center-lr", "0.25", "--center-weight", "0.1",
                  "--dataset-option", "max_train_ids=4")
    assert rc == 0
    state = load_latest(exp)
    groups = state["optimizer"]["param_groups"]
    centres = [g for g in groups if g.get("name") == "centers"]
    assert len(centres) == 1 and centres[0]["lr"] == 0.25 and centres[0]["weight_decay"] == 0.0
    assert all(g["lr"] == 0.001 for g in groups if g.get("name") != "centers")
    # the option reached the reader: 4 training identities, so 4 centres
    assert state["criterion"]["centers"].shape[0] == 4
    args = json.loads((exp / "args.json").read_text())
    assert args["config"]["dataset_options"] == {"max_train_ids": 4}
    report = json.loads((exp / "report.json").read_text())
    assert report["status"] == "done" and 0.0 <= report["mAP"] <= 1.0


def test_centres_move_at_their_own_rate(tmp_path, monkeypatch):
    monkeypatch.setenv("REIDCORE_CACHE", str(tmp_path / "cache"))
    data = write_tiny_market(tmp_path / "market", num_ids=12)
    moved = {}
    for lr in ("1e-9", "0.5"):
        exp = tmp_path / f"exp-{lr}"
        torch.manual_seed(0)
        with registered_plugin(acme_reid, "acme"):
            assert _run(data, exp, "--center-lr", lr, "--center-weight", "1") == 0
        moved[lr] = state_centres(exp)
    start = _initial_centres(tmp_path, data)
    assert torch.allclose(moved["1e-9"], start, atol=1e-6)
    assert (moved["0.5"] - start).abs().max() > 1e-3


def state_centres(exp):
    return load_latest(exp)["criterion"]["centers"]


def _initial_centres(tmp_path, data):
    exp = tmp_path / "exp-zero"
    with registered_plugin(acme_reid, "acme"):
        assert _run(data, exp, "--center-lr", "1e-12", "--iterations", "1",
                    "--decay-start-iteration", "0") == 0
    return state_centres(exp)


@pytest.mark.parametrize("option", ["max_train_id=4", "max_train_ids=four"])
def test_bad_dataset_option_fails_before_the_folder(tmp_path, option, capsys):
    data = write_tiny_market(tmp_path / "market")
    exp = tmp_path / "exp"
    with registered_plugin(acme_reid, "acme"):
        rc = _run(data, exp, "--dataset-option", option)
    assert rc == 2 and not exp.exists()
    assert "max_train_id" in capsys.readouterr().err
