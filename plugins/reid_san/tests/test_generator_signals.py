"""Issue 13: SIGTERM/SIGINT during ``san textures`` exits 128+signal with one line, and the
same command run again writes only the textures still missing."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from reid_san.generator import generate_textures

from reidcore.interrupts import Interrupted


class Painter(torch.nn.Module):
    """Images ``(B, 3, H, W)`` -> flat textures ``(B, 3, 8, 8)``; sends ``signum`` to its own
    process during batch number ``kill_at`` (1-based)."""

    def __init__(self, kill_at: int | None = None, signum: int = signal.SIGTERM):
        super().__init__()
        self.calls, self.kill_at, self.signum = 0, kill_at, signum

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.kill_at:
            os.kill(os.getpid(), self.signum)
        return x.mean(dim=(2, 3), keepdim=True).sigmoid().expand(-1, -1, 8, 8)


def _images(folder, n=5):
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (16, 8, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_after_whole_files_and_a_rerun_writes_the_rest(tmp_path, signum):
    images, out = _images(tmp_path / "in"), tmp_path / "tex"
    with pytest.raises(Interrupted) as stop:
        generate_textures(Painter(kill_at=2, signum=signum), images, out, 16, 8, batch_size=2)
    assert stop.value.exit_code == 128 + signum
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.png"]  # no partial file
    again = Painter()
    assert generate_textures(again, images, out, 16, 8, batch_size=2) == 3
    assert again.calls == 2  # only the 3 missing images were run
    assert sorted(p.name for p in out.iterdir()) == [f"img{i}.png" for i in range(5)]


def test_san_textures_command_exits_143_with_one_line(tmp_path, monkeypatch, capsys):
    import reid_san.generator as generator_module

    from reidcore.cli import main
    from reidcore.experiment import setup_logging

    setup_logging(None)  # log to this test's stdout, not a stream an earlier test closed
    images, out = _images(tmp_path / "in"), tmp_path / "tex"
    painter = Painter(kill_at=2)
    monkeypatch.setattr(generator_module, "load_texture_generator",
                        lambda model, device: (painter, SimpleNamespace(height=16, width=8)))
    argv = ["san", "textures", "--model", str(tmp_path / "exp"), "--input", str(tmp_path / "in"),
            "--output", str(out), "--batch-size", "2", "--device", "cpu"]
    assert main(argv) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["reidcore: stopped by SIGTERM during texture generation"]
    painter.kill_at = None
    assert main(argv) == 0
    assert f"wrote 3 textures to {out} (2 already there)" in capsys.readouterr().out
    assert len(list(out.iterdir())) == len(images)
