"""The run pipeline end to end on the tiny plugin: report, resume after SIGTERM, NaN, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reidcore.cli import main

HERE = Path(__file__).parent
TINY = ["--height", "32", "--width", "16", "--batch-p", "3", "--batch-k", "2", "--pad", "2",
        "--workers", "0", "--log-every", "1", "--pretrained", "none", "--lr", "0.01",
        "--embed-batch-size", "16"]


def tiny_args(data: Path, exp: Path, *extra: str) -> list[str]:
    return ["run", "tiny", "--dataset", "tiny", "--data", str(data), "--experiment", str(exp),
            *TINY, *extra]


def test_run_writes_complete_experiment(tiny_plugin, tiny_data, tmp_path, capsys):
    exp = tmp_path / "exp"
    assert main(tiny_args(tiny_data, exp, "--iterations", "6", "--checkpoint-every", "4",
                          "--eval-untrained")) == 0
    out = capsys.readouterr().out
    assert "rank-1" in out and "mAP" in out and "untrained network" in out
    report = json.loads((exp / "report.json").read_text())
    for key in ("rank1", "rank5", "rank10", "rank20", "mAP", "num_valid_queries", "num_skipped"):
        assert key in report
    assert report["train"]["iteration"] == 6 and report["train"]["stopped"] == "done"
    assert 0 <= report["mAP"] <= 1 and "untrained" in report
    args = json.loads((exp / "args.json").read_text())
    assert args["recipe"] == "tiny" and args["config"]["iterations"] == 6
    assert (exp / "train.log").read_text().count("iter ") >= 6
    assert sorted(p.name for p in (exp / "checkpoints").iterdir()) == [
        "checkpoint-0000004.pt", "checkpoint-0000006.pt"]
    import h5py

    with h5py.File(exp / "embeddings" / "query.h5") as f:
        assert f["embs"].shape[1] == 8 and f["embs"].dtype == "float32"
        assert len(f["pids"]) == len(f["camids"]) == f["embs"].shape[0]


def test_existing_experiment_is_not_overwritten(tiny_plugin, tiny_data, tmp_path, capsys):
    exp = tmp_path / "exp"
    assert main(tiny_args(tiny_data, exp, "--iterations", "2")) == 0
    before = (exp / "report.json").read_bytes()
    assert main(tiny_args(tiny_data, exp, "--iterations", "2")) == 2
    assert "already exists" in capsys.readouterr().err
    assert (exp / "report.json").read_bytes() == before


def test_nan_loss_stops_with_clear_error_and_keeps_checkpoint(tiny_plugin, tiny_data, tmp_path, capsys):
    exp = tmp_path / "exp"
    code = main(tiny_args(tiny_data, exp, "--iterations", "50", "--checkpoint-every", "2",
                          "--nan-at-iteration", "5"))
    assert code == 2
    err = capsys.readouterr().err
    assert "loss became nan at iteration 5" in err and "checkpoint-0000004.pt" in err
    assert (exp / "checkpoints" / "checkpoint-0000004.pt").exists()
    # issue 14: the failure is in train.log and report.json marks the run failed
    report = json.loads((exp / "report.json").read_text())
    assert report["status"] == "failed" and "rank1" not in report
    assert "loss became nan" in report["error"] and report["phase"] == "training"
    assert "run failed during training" in (exp / "train.log").read_text()


def test_resume_of_missing_experiment(tiny_plugin, tmp_path, capsys):
    missing = tmp_path / "nope"
    assert main(["run", "--resume", "--experiment", str(missing)]) == 2
    assert f"experiment folder {missing} does not exist" in capsys.readouterr().err


def test_missing_data_folder(tiny_plugin, tmp_path, capsys):
    missing = tmp_path / "no-data"
    assert main(tiny_args(missing, tmp_path / "exp", "--iterations", "2")) == 2
    assert str(missing) in capsys.readouterr().err


def test_unknown_recipe_and_dataset(tiny_plugin, tiny_data, tmp_path, capsys):
    assert main(["run", "tinny", "--dataset", "tiny"]) == 2
    assert "Unknown recipe 'tinny'. Did you mean 'tiny'?" in capsys.readouterr().err
    assert main(tiny_args(tiny_data, tmp_path / "e", "--dataset", "tinyy")) == 2
    assert "Unknown dataset 'tinyy'. Did you mean 'tiny'?" in capsys.readouterr().err


@pytest.mark.parametrize("cache", [True, False])
def test_corrupt_jpeg_is_named(tiny_plugin, tiny_data, tmp_path, capsys, cache):
    bad = sorted((tiny_data / "bounding_box_train").glob("*.jpg"))[0]
    original = bad.read_bytes()
    try:
        bad.write_bytes(original[: len(original) // 3])
        flags = ["--cache-images"] if cache else ["--no-cache-images"]
        assert main(tiny_args(tiny_data, tmp_path / "exp", "--iterations", "30", *flags)) == 2
        assert f"cannot decode image {bad}" in capsys.readouterr().err
    finally:
        bad.write_bytes(original)


RUNNER = """
import sys
sys.path.insert(0, {tests!r})
import tiny_plugin
from reidcore.cli import main
from reidcore.testing import registered_plugin
with registered_plugin(tiny_plugin, "tiny"):
    raise SystemExit(main(sys.argv[1:]))
"""


def test_sigterm_then_resume_completes(tiny_data, tmp_path):
    exp = tmp_path / "exp"
    runner = [sys.executable, "-c", RUNNER.format(tests=str(HERE))]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = tiny_args(tiny_data, exp, "--iterations", "100000", "--checkpoint-every", "100000")
    proc = subprocess.Popen(runner + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "iter 3/" in line:
            proc.send_signal(signal.SIGTERM)
            break
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, "".join(lines) + out
    assert "--resume --experiment" in out
    ckpts = sorted((exp / "checkpoints").glob("checkpoint-*.pt"))
    assert len(ckpts) == 1 and not (exp / "report.json").exists()
    stopped_at = int(ckpts[0].stem.split("-")[1])
    assert stopped_at >= 3
    # resume with fewer total iterations so it finishes quickly: flags override args.json
    done = subprocess.run(runner + ["run", "--resume", "--experiment", str(exp),
                                    "--iterations", str(stopped_at + 3)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"resumed from iteration {stopped_at}" in done.stdout
    report = json.loads((exp / "report.json").read_text())
    assert report["train"]["iteration"] == stopped_at + 3 and "mAP" in report


def test_help_does_not_import_torch():
    code = ("import sys\nfrom reidcore.cli import main\n"
            "for argv in (['--help'], ['run', '--help'], ['train', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "--batch-p" in res.stdout and "--resume" in res.stdout


def test_embed_image_list_to_csv_and_h5(tiny_plugin, tiny_data, tmp_path, capsys):
    exp = tmp_path / "exp"
    assert main(tiny_args(tiny_data, exp, "--iterations", "2")) == 0
    images = sorted(str(p) for p in (tiny_data / "query").glob("*.jpg"))[:3]
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(images) + "\n")
    capsys.readouterr()
    assert main(["embed", "--experiment", str(exp), "--images", str(listing), "--output", "-"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split(",")[0] for ln in lines] == images
    assert all(len(ln.split(",")) == 1 + 8 for ln in lines)
    out = tmp_path / "q.csv"
    assert main(["embed", "--experiment", str(exp), "--part", "query", "--output", str(out),
                 "--flip-augment"]) == 0
    assert len(out.read_text().splitlines()) == 8
    assert main(["embed", "--experiment", str(exp), "--part", "gallery"]) == 0
    from reidcore.embeddings import read_embeddings

    g = read_embeddings(exp / "embeddings" / "gallery.h5")
    assert g.embs.shape == (16, 8) and list(g.pids[:2]) == [5, 5]
    assert main(["embed", "--experiment", str(exp), "--images", str(tmp_path / "nope.txt")]) == 2
    assert "nope.txt does not exist" in capsys.readouterr().err


def test_video_dataset_is_evaluated_on_pooled_tracklets(tiny_plugin, tiny_data, tmp_path):
    exp = tmp_path / "exp"
    args = tiny_args(tiny_data, exp, "--iterations", "2", "--tracklet-pooling", "max",
                     "--ap", "trapezoid", "--average", "all")
    args[args.index("--dataset") + 1] = "tiny-video"
    assert main(args) == 0
    report = json.loads((exp / "report.json").read_text())
    # 4 test identities × 2 cameras: 8 query tracklets (of 1 frame), 8 gallery tracklets (2 frames)
    assert report["num_queries"] == 8 and report["tracklet_pooling"] == "max"
    assert report["ap"] == "trapezoid" and report["average"] == "all"
