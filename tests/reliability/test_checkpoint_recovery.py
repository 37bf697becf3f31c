"""Checkpoints: a truncated newest one is set aside, killed writes leave no temp file behind,
and a full disk is one clear error naming the checkpoint."""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tiny_plugin import TINY_FLAGS

from reidcore.atomic import AtomicWriteError
from reidcore.cli import main
from reidcore.engine import checkpoint
from reidcore.errors import ExperimentError
from reidcore.safe_load import UnsafeFileError

TESTS = Path(__file__).parent.parent
sys.path.insert(0, str(TESTS))  # tiny_plugin

TINY = [*TINY_FLAGS]


def _state(it: int) -> dict:
    return {"iteration": it, "w": torch.full((1000,), float(it))}


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_newest_is_renamed_and_previous_used(tmp_path, caplog):
    for it in (10, 20):
        checkpoint.save_checkpoint(tmp_path, it, _state(it))
    newest = checkpoint.checkpoint_path(tmp_path, 20)
    _truncate(newest)
    with caplog.at_level(logging.WARNING, logger="reidcore"):
        state = checkpoint.load_latest(tmp_path)
    assert state["iteration"] == 10 and float(state["w"][0]) == 10.0
    aside = newest.with_name(newest.name + ".corrupt")
    assert aside.exists() and not newest.exists()  # renamed, not deleted
    assert str(newest) in caplog.text and "checkpoint-0000010.pt" in caplog.text
    assert [i for i, _ in checkpoint.list_checkpoints(tmp_path)] == [10]
    # a new checkpoint of the same iteration does not touch the set-aside file
    checkpoint.save_checkpoint(tmp_path, 20, _state(20))
    assert aside.exists() and checkpoint.load_latest(tmp_path)["iteration"] == 20


def test_second_corrupt_copy_gets_its_own_name(tmp_path):
    checkpoint.save_checkpoint(tmp_path, 10, _state(10))
    for _ in range(2):
        checkpoint.save_checkpoint(tmp_path, 20, _state(20))
        _truncate(checkpoint.checkpoint_path(tmp_path, 20))
        assert checkpoint.load_latest(tmp_path)["iteration"] == 10
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["checkpoint-0000010.pt", "checkpoint-0000020.pt.corrupt",
                     "checkpoint-0000020.pt.corrupt-2"]


def test_no_intact_checkpoint_is_an_error_and_renames_nothing(tmp_path):
    checkpoint.save_checkpoint(tmp_path, 10, _state(10))
    only = checkpoint.checkpoint_path(tmp_path, 10)
    _truncate(only)
    with pytest.raises(ExperimentError, match=rf"{only}.*truncated or corrupt"):
        checkpoint.load_latest(tmp_path)
    assert only.exists()


def test_unsafe_newest_is_not_skipped(tmp_path):
    checkpoint.save_checkpoint(tmp_path, 10, _state(10))
    newest = checkpoint.checkpoint_path(tmp_path, 20)
    torch.save({"iteration": 20, "x": logging.Logger}, newest)  # a class: not plain data
    with pytest.raises(UnsafeFileError, match=str(newest)):
        checkpoint.load_latest(tmp_path)
    assert newest.exists()


def test_cleanup_experiment_removes_only_our_temp_files(tmp_path):
    checkpoint.save_checkpoint(tmp_path, 10, _state(10))
    folder = tmp_path / "checkpoints"
    stale = [folder / ".checkpoint-0000020.pt.0123abcd.tmp",
             tmp_path / "embeddings" / ".query.h5.deadbeef.tmp"]
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"partial")
    keep = [tmp_path / ".notes.tmp", folder / "checkpoint-0000010.pt"]
    keep[0].write_text("mine")
    assert sorted(checkpoint.cleanup_experiment(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)


def test_disk_full_during_checkpoint_write_is_one_line_naming_it(tmp_path, monkeypatch):
    checkpoint.save_checkpoint(tmp_path, 10, _state(10))
    real_open = open

    def full_disk(path, mode="r", *a, **kw):  # every byte written raises ENOSPC
        if "w" in mode:
            return real_open("/dev/full", mode, *a, **kw)
        return real_open(path, mode, *a, **kw)

    monkeypatch.setattr(checkpoint, "open", full_disk, raising=False)
    with pytest.raises(AtomicWriteError) as info:
        checkpoint.save_checkpoint(tmp_path, 20, {"w": torch.zeros(100_000)})
    msg = str(info.value)
    assert info.value.errno == errno.ENOSPC and "\n" not in msg
    assert str(checkpoint.checkpoint_path(tmp_path, 20)) in msg and "no space" in msg
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint-0000010.pt"]


RUNNER = """
import os, sys, time
sys.path.insert(0, {tests!r})
import tiny_plugin
from reidcore.cli import main
from reidcore.engine import checkpoint
from reidcore.testing import registered_plugin

real_save = checkpoint.torch.save
def slow_save(obj, f):
    if obj.get("iteration") == {kill_at}:  # stall mid-write: the parent SIGKILLs us here
        f.write(b"PK partial checkpoint")
        f.flush()
        print("WRITING", flush=True)
        time.sleep(600)
    real_save(obj, f)
checkpoint.torch.save = slow_save
with registered_plugin(tiny_plugin, "tiny"):
    raise SystemExit(main(sys.argv[1:]))
"""


@pytest.fixture
def plugin():
    import tiny_plugin

    from reidcore.testing import registered_plugin

    with registered_plugin(tiny_plugin, "tiny"):
        yield tiny_plugin


def test_sigkill_during_checkpoint_write_then_resume(plugin, tmp_path):
    data = plugin.write_tiny_dataset(tmp_path / "data")
    exp = tmp_path / "exp"
    runner = [sys.executable, "-c", RUNNER.format(tests=str(TESTS), kill_at=4)]
    args = ["run", "tiny", "--dataset", "tiny", "--data", str(data), "--experiment", str(exp),
            *TINY, "--iterations", "6", "--checkpoint-every", "2"]
    proc = subprocess.Popen(runner + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "WRITING" in line or not line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert "WRITING" in "".join(lines), "".join(lines)
    temps = list((exp / "checkpoints").glob(".checkpoint-*.tmp"))
    assert len(temps) == 1  # what SIGKILL leaves behind
    assert [i for i, _ in checkpoint.list_checkpoints(exp)] == [2]  # intact
    assert main(["run", "--resume", "--experiment", str(exp)]) == 0
    assert not list(exp.rglob("*.tmp"))
    assert [i for i, _ in checkpoint.list_checkpoints(exp)] == [4, 6]
    assert "resumed from iteration 2" in (exp / "train.log").read_text()


def test_resume_after_truncated_newest_checkpoint(plugin, tmp_path, capsys):
    data = plugin.write_tiny_dataset(tmp_path / "data")
    exp = tmp_path / "exp"
    base = ["--dataset", "tiny", "--data", str(data), "--experiment", str(exp), *TINY,
            "--checkpoint-every", "2"]
    assert main(["train", "tiny", *base, "--iterations", "4"]) == 0
    newest = checkpoint.checkpoint_path(exp, 4)
    _truncate(newest)
    assert main(["run", "--resume", "--experiment", str(exp), "--iterations", "6"]) == 0
    log = (exp / "train.log").read_text()
    assert str(newest) in log and "resumed from iteration 2" in log
    assert newest.with_name(newest.name + ".corrupt").exists()
    assert (exp / "report.json").exists()


def test_checkpoint_vanishing_while_listed_is_skipped(tmp_path, monkeypatch):
    """Another DDP rank may rename a corrupt newest checkpoint aside while this one lists."""
    for it in (10, 20):
        checkpoint.save_checkpoint(tmp_path, it, _state(it))
    listed = checkpoint.list_checkpoints(tmp_path)
    checkpoint.checkpoint_path(tmp_path, 20).unlink()
    monkeypatch.setattr(checkpoint, "list_checkpoints", lambda exp_dir: listed)
    assert checkpoint.load_latest(tmp_path)["iteration"] == 10
