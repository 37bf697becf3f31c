"""``python -m reidcore visualize``: ranked lists (colours, greyed ignored items) and the CMC PNG."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from test_run import tiny_args

from reidcore.cli import main
from reidcore.commands import visualize as viz


@pytest.fixture(scope="module")
def tiny_experiment(tmp_path_factory):
    """One tiny run shared by the tests of this module."""
    import tiny_plugin as module

    from reidcore.testing import registered_plugin

    root = tmp_path_factory.mktemp("viz")
    data = module.write_tiny_dataset(root / "data")
    exp = root / "exp"
    with registered_plugin(module, "tiny"):
        assert main(tiny_args(data, exp, "--iterations", "3", "--no-tensorboard")) == 0
    return exp


def test_ranked_row_statuses_and_ignored_items():
    dist = np.array([0.5, 0.1, 0.2, 0.3, 0.4, 0.05])
    g_pids = np.array([7, 3, -1, 3, 9, 3])
    g_camids = np.array([0, 0, 1, 1, 1, 1])
    ignored = (g_pids == -1) | ((g_pids == 3) & (g_camids == 0))
    row = viz.ranked_row(dist, 3, 0, g_pids, g_camids, ignored, top_k=3)
    assert row == [(5, "correct"), (1, "ignored"), (2, "ignored"), (3, "correct"), (4, "wrong")]
    assert viz._ignored_reason(-1, 1, 3, 0) == "junk"
    assert viz._ignored_reason(3, 0, 3, 0) == "same cam"


def test_visualize_tiny_run(tiny_experiment, tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "pics"
    assert main(["visualize", "--experiment", str(tiny_experiment), "--top-k", "3",
                 "--num-queries", "2", "--output", str(out), "--thumb-height", "64"]) == 0
    assert "ranked_lists.png" in capsys.readouterr().out
    with Image.open(out / "ranked_lists.png") as im:
        im = im.convert("RGB")
        cell_w, cell_h = 32 + 2 * viz.BORDER, 64 + 2 * viz.BORDER
        assert im.width >= 2 * viz.MARGIN + cell_w + viz.QUERY_GAP + 3 * (cell_w + viz.GAP)
        # the first query tile has the query's blue border; its first result a green or red one
        ys = [y for y in range(im.height) if im.getpixel((viz.MARGIN, y)) == viz.QUERY_COLOUR]
        assert len(ys) >= 2 * cell_h, "two query tiles with blue borders"
        y0 = ys[0]
        first = im.getpixel((viz.MARGIN + cell_w + viz.QUERY_GAP + 1, y0 + 1))
        assert first in (viz.CORRECT_COLOUR, viz.WRONG_COLOUR, viz.IGNORED_COLOUR)
    with Image.open(out / "cmc.png") as im:
        assert im.width > 200 and im.height > 150


def test_visualize_default_output_and_explicit_queries(tiny_experiment, capsys):
    assert main(["visualize", "--experiment", str(tiny_experiment), "--queries", "0", "5",
                 "--top-k", "2"]) == 0
    assert (tiny_experiment / "visualize" / "ranked_lists.png").is_file()
    assert (tiny_experiment / "visualize" / "cmc.png").is_file()
    assert main(["visualize", "--experiment", str(tiny_experiment), "--queries", "99"]) == 2
    assert "outside" in capsys.readouterr().err


def test_visualize_quantised_colours(tiny_experiment, tmp_path, capsys):
    from PIL import Image

    assert main(["visualize", "--experiment", str(tiny_experiment), "--colors", "16",
                 "--output", str(tmp_path)]) == 0
    with Image.open(tmp_path / "ranked_lists.png") as im:
        assert im.mode == "P" and len(im.getcolors()) <= 16
    assert main(["visualize", "--experiment", str(tiny_experiment), "--colors", "1"]) == 2
    assert "--colors" in capsys.readouterr().err


def test_visualize_without_matplotlib_names_the_extra(tiny_experiment, tmp_path, monkeypatch,
                                                      capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["visualize", "--experiment", str(tiny_experiment),
                 "--output", str(tmp_path / "o")]) == 2
    assert "pip install 'reidcore[viz]'" in capsys.readouterr().err


def test_visualize_without_embeddings(tiny_experiment, tmp_path, capsys):
    import shutil

    exp = tmp_path / "copy"
    exp.mkdir()
    shutil.copy(tiny_experiment / "args.json", exp / "args.json")
    assert main(["visualize", "--experiment", str(exp)]) == 2
    assert "query.h5" in capsys.readouterr().err


def test_visualize_is_a_registered_command(capsys):
    assert main(["list", "commands"]) == 0
    assert "visualize" in capsys.readouterr().out
