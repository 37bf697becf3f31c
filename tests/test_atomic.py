"""reidcore.atomic: the one atomic-write helper (temp file, fsync, rename)."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from reidcore import atomic


def test_write_text_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.json"
    atomic.atomic_write_json(target, {"x": 1})
    atomic.atomic_write_text(target, "second\n")
    assert target.read_text() == "second\n"
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_failure_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def boom(f):
        f.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic.atomic_write_bytes(target, boom)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_mode_follows_umask_not_mkstemp(tmp_path):
    old = os.umask(0o022)
    try:
        atomic.atomic_write_text(tmp_path / "r.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.txt").stat().st_mode) == 0o644


def test_stale_temp_files_removed_and_others_kept(tmp_path):
    stale = atomic.temp_name(tmp_path / "checkpoint-0000010.pt")
    stale.write_bytes(b"x" * 10)
    (tmp_path / "keep.tmp").write_text("not ours")
    (tmp_path / ".hidden.tmp").write_text("not ours either")
    removed = atomic.remove_stale_temp_files(tmp_path)
    assert removed == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden.tmp", "keep.tmp"]


def test_disk_error_is_one_line_naming_the_path(tmp_path, monkeypatch):
    target = tmp_path / "report.json"

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", full)
    with pytest.raises(atomic.AtomicWriteError) as info:
        atomic.atomic_write_text(target, "x")
    assert str(target) in str(info.value) and "no space" in str(info.value)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []
