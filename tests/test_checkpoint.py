from __future__ import annotations

import pytest
import torch

from reidcore.engine import checkpoint


def test_save_keeps_last_two_and_loads_latest(tmp_path):
    for it in (10, 20, 30):
        checkpoint.save_checkpoint(tmp_path, it, {"iteration": it})
    assert [i for i, _ in checkpoint.list_checkpoints(tmp_path)] == [20, 30]
    assert checkpoint.load_latest(tmp_path)["iteration"] == 30
    assert checkpoint.load_latest(tmp_path / "none") is None


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = checkpoint.save_checkpoint(tmp_path, 10, {"iteration": 10})
    before = path.read_bytes()

    def exploding_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", exploding_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_checkpoint(tmp_path, 10, {"iteration": 11})
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left


def test_unreadable_checkpoint_is_named(tmp_path):
    path = checkpoint.checkpoint_path(tmp_path, 5)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(Exception, match=str(path)):
        checkpoint.load_latest(tmp_path)
