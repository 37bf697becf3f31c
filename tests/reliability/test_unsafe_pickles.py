"""A crafted pickle never runs: every path that reads a torch file refuses it and names it.

The payload's ``__reduce__`` calls ``open(MARKER, "w")``, so unpickling it with
``torch.load(weights_only=False)`` creates the marker file. Each loading path (run and train
``--resume``, ``embed``, ``export``, ``--init-checkpoint`` file and folder, ``san textures
--model`` folder and file, ``--pretrained PATH``) must fail with an error naming the file
while the marker stays absent.
"""

from __future__ import annotations

import pickle
import shutil
import sys
from pathlib import Path

import pytest
import torch
from tiny_plugin import TINY_FLAGS

from reidcore.cli import main
from reidcore.engine import checkpoint
from reidcore.safe_load import UnsafeFileError, safe_torch_load

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))  # tiny_plugin

TINY = [*TINY_FLAGS]


class Payload:
    """Unpickled with the full unpickler, creates ``marker`` (as ``os.system`` could do anything)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def plugin():
    import tiny_plugin

    from reidcore.testing import registered_plugin

    with registered_plugin(tiny_plugin, "tiny"):
        yield tiny_plugin


@pytest.fixture(scope="module")
def trained(plugin, tmp_path_factory):
    """A finished tiny experiment (3 iterations) and its data folder."""
    root = tmp_path_factory.mktemp("unsafe")
    data = plugin.write_tiny_dataset(root / "data")
    exp = root / "exp"
    assert main(["run", "tiny", "--dataset", "tiny", "--data", str(data), "--experiment",
                 str(exp), *TINY, "--iterations", "3", "--checkpoint-every", "3"]) == 0
    return exp, data


def poison(path: Path, marker: Path, **extra) -> Path:
    """Write a checkpoint-like dict holding the payload to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"iteration": 3, "model": {}, "evil": Payload(marker), **extra}, path)
    return path


@pytest.fixture
def evil_exp(trained, tmp_path):
    """A copy of the tiny experiment whose newest checkpoint holds the payload."""
    exp, data = trained
    copy = tmp_path / "exp"
    shutil.copytree(exp, copy)
    marker = tmp_path / "MARKER"
    newest = checkpoint.list_checkpoints(copy)[-1][1]
    good = torch.load(newest, weights_only=True)
    poison(newest, marker, **{k: v for k, v in good.items() if k != "iteration"})
    return copy, newest, marker, data


def test_payload_is_live_with_the_unsafe_loader(tmp_path):
    """The crafted file does create the marker when fully unpickled (the threat is real)."""
    marker = tmp_path / "MARKER"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


def test_safe_load_refuses_and_names_file_and_global(tmp_path):
    marker = tmp_path / "MARKER"
    path = poison(tmp_path / "evil.pt", marker)
    with pytest.raises(UnsafeFileError, match=rf"{path}.*(io|builtins)\.open"):
        safe_torch_load(path, what="checkpoint")
    assert not marker.exists()


def test_legacy_pickle_file_is_refused(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "legacy.pt"
    path.write_bytes(pickle.dumps({"model": Payload(marker)}, protocol=2))
    with pytest.raises(UnsafeFileError, match=str(path)):
        safe_torch_load(path)
    assert not marker.exists()


def test_numpy_rng_state_and_plain_types_load(tmp_path):
    """What a checkpoint may hold (tensors, RNG states, numbers) still loads."""
    import random

    import numpy as np

    state = {"t": torch.arange(3), "np_rng": np.random.RandomState(1).get_state(),
             "py_rng": random.Random(1).getstate(), "gen": np.random.default_rng(1).bit_generator.state,
             "x": np.float64(1.5), "a": np.zeros((2, 2), np.float32), "s": "text", "n": None}
    path = tmp_path / "ok.pt"
    torch.save(state, path)
    back = safe_torch_load(path)
    assert back["np_rng"][0] == "MT19937" and np.array_equal(back["np_rng"][1], state["np_rng"][1])
    assert back["py_rng"] == state["py_rng"] and back["x"] == 1.5 and back["a"].shape == (2, 2)
    rs = np.random.RandomState()
    rs.set_state(back["np_rng"])
    assert rs.randint(1000) == np.random.RandomState(1).randint(1000)


def test_real_tiny_checkpoint_loads_weights_only(trained):
    exp, _ = trained
    path = checkpoint.list_checkpoints(exp)[-1][1]
    state = torch.load(path, weights_only=True)
    assert state["iteration"] == 3 and state["model"]


@pytest.mark.parametrize("verb", ["run", "train"])
def test_resume_refuses(evil_exp, verb, capsys):
    exp, newest, marker, _ = evil_exp
    assert main([verb, "--resume", "--experiment", str(exp), "--iterations", "5"]) == 2
    err = capsys.readouterr().err
    assert str(newest) in err and "refusing to load" in err
    assert not marker.exists()
    assert newest.exists()  # an unsafe file is not "corrupt": left where it is


def test_embed_refuses(evil_exp, capsys):
    exp, newest, marker, _ = evil_exp
    assert main(["embed", "--experiment", str(exp), "--part", "query"]) == 2
    assert str(newest) in capsys.readouterr().err
    assert not marker.exists()


def test_export_refuses(evil_exp, tmp_path, capsys):
    exp, newest, marker, _ = evil_exp
    assert main(["export", "--experiment", str(exp), "--format", "torchscript",
                 "--output", str(tmp_path / "m.pt")]) == 2
    assert str(newest) in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize("as_folder", [False, True])
def test_init_checkpoint_refuses(evil_exp, tmp_path, as_folder, capsys):
    exp, newest, marker, data = evil_exp
    source = exp if as_folder else newest
    code = main(["run", "tiny", "--dataset", "tiny", "--data", str(data), "--experiment",
                 str(tmp_path / "new"), *TINY, "--iterations", "2",
                 "--init-checkpoint", str(source)])
    assert code == 2
    assert str(newest) in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize("as_folder", [True, False])
def test_san_textures_model_refuses(evil_exp, tmp_path, as_folder, capsys):
    pytest.importorskip("reid_san")
    exp, newest, marker, data = evil_exp
    source = exp if as_folder else newest
    code = main(["san", "textures", "--model", str(source), "--input", str(data / "query"),
                 "--output", str(tmp_path / "textures")])
    assert code == 2
    assert str(newest) in capsys.readouterr().err
    assert not marker.exists()


def test_pretrained_path_refuses(tmp_path):
    from reidcore.errors import WeightsError
    from reidcore.registry import create_backbone

    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "evil": Payload(marker)}, path)
    with pytest.raises(WeightsError, match=str(path)):
        create_backbone("resnet18", pretrained=str(path))
    assert not marker.exists()


def test_pretrained_path_refuses_on_the_command_line(trained, tmp_path, capsys):
    pytest.importorskip("reid_trinet")
    _, data = trained
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "evil": Payload(marker)}, path)
    args = [a for a in TINY if a not in ("--pretrained", "none")]
    code = main(["run", "trinet", "--dataset", "tiny", "--data", str(data), "--experiment",
                 str(tmp_path / "e"), *args, "--backbone", "resnet18", "--pretrained", str(path),
                 "--iterations", "1"])
    assert code == 2
    assert str(path) in capsys.readouterr().err
    assert not marker.exists()


def test_every_torch_load_in_the_sources_goes_through_safe_load():
    """A new ``torch.load`` call (or ``weights_only=False``) would reopen the hole."""
    import re

    root = Path(__file__).resolve().parents[2]
    call = re.compile(r"(?<![`\w.])torch\.load\(|weights_only\s*=\s*False")
    files = [*root.glob("reidcore/**/*.py"), *root.glob("plugins/*/reid_*/**/*.py")]
    assert len(files) > 20
    offenders = [f"{py.relative_to(root)}:{i}" for py in files if py.name != "safe_load.py"
                 for i, line in enumerate(py.read_text(encoding="utf-8").splitlines(), 1)
                 if call.search(line)]
    assert offenders == [], "use reidcore.safe_load.safe_torch_load instead"
