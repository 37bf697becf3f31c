"""A read-only experiment folder or a full disk ends in one line naming the path, exit 1.

The tests run as root (chmod does not stop root), so the failures are simulated: ``os.replace``
raising EROFS for a read-only folder, and writes going to ``/dev/full`` (ENOSPC).
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest
from tiny_plugin import TINY_FLAGS

from reidcore import atomic
from reidcore.cli import main
from reidcore.engine import checkpoint

sys.path.insert(0, str(Path(__file__).parent.parent))  # tiny_plugin

TINY = [*TINY_FLAGS, "--checkpoint-every", "2"]


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    import tiny_plugin

    from reidcore.testing import registered_plugin

    monkeypatch.setenv("REIDCORE_CACHE", str(tmp_path / "cache"))
    with registered_plugin(tiny_plugin, "tiny"):
        yield tiny_plugin


def _args(data: Path, exp: Path, iterations: int) -> list[str]:
    return ["run", "tiny", "--dataset", "tiny", "--data", str(data), "--experiment", str(exp),
            *TINY, "--iterations", str(iterations)]


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("reidcore: error: "), err
    return lines[0]


def test_read_only_checkpoint_folder(plugin, tmp_path, capsys, monkeypatch):
    data = plugin.write_tiny_dataset(tmp_path / "data")
    exp = tmp_path / "exp"
    real_replace = os.replace

    def read_only(src, dst):
        if "checkpoints" in str(dst):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", read_only)
    assert main(_args(data, exp, 4)) == 1
    line = _one_error_line(capsys.readouterr().err)
    target = checkpoint.checkpoint_path(exp, 2)
    assert line == f"reidcore: error: cannot write {target}: the file system is read-only"
    assert not list(exp.rglob("*.tmp"))


def test_read_only_experiment_folder_at_start(plugin, tmp_path, capsys, monkeypatch):
    data = plugin.write_tiny_dataset(tmp_path / "data")
    exp = tmp_path / "exp"

    def refuse(src, dst):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(dst))

    monkeypatch.setattr(atomic.os, "replace", refuse)
    assert main(_args(data, exp, 2)) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert str(exp) in line and "permission denied" in line


def test_full_disk_during_checkpoint(plugin, tmp_path, capsys, monkeypatch):
    data = plugin.write_tiny_dataset(tmp_path / "data")
    exp = tmp_path / "exp"
    real_open = open

    def full_disk(path, mode="r", *a, **kw):
        return real_open("/dev/full" if "w" in mode else path, mode, *a, **kw)

    monkeypatch.setattr(checkpoint, "open", full_disk, raising=False)
    assert main(_args(data, exp, 4)) == 1
    line = _one_error_line(capsys.readouterr().err)
    target = checkpoint.checkpoint_path(exp, 2)
    assert line == f"reidcore: error: cannot write {target}: no space left on the device"
    assert "inline_container" not in line


def test_other_os_errors_still_raise(plugin, tmp_path, monkeypatch):
    """Only the user-fixable disk errors become one line; a bug keeps its traceback."""
    data = plugin.write_tiny_dataset(tmp_path / "data")

    def broken(src, dst):
        raise OSError(errno.EBADF, "bad file descriptor")

    monkeypatch.setattr(atomic.os, "replace", broken)
    with pytest.raises(OSError, match="bad file descriptor"):
        main(_args(data, tmp_path / "exp", 2))
