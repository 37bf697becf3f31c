"""``python -m reidcore export``: ONNX (onnxruntime parity) and TorchScript of every registered model."""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
import warnings

import pytest
from test_run import tiny_args

from reidcore.cli import main
from reidcore.commands import export as ex
from reidcore.registry import create_model, list_models, registry

HEIGHT, WIDTH = 64, 32  # tiny input: fast on the CPU, still 2×1 after a ResNet's stride 32
TOLERANCE = 1e-4


def _build(name: str):
    """Registered model ``name`` with random weights, as small as its factory allows."""
    factory = registry("model").get(name)
    params = inspect.signature(factory).parameters
    accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    wanted = {"pretrained": "none", "backbone": "resnet18"}
    kwargs = {k: v for k, v in wanted.items() if k in params or accepts_kwargs}
    if "backbone" in kwargs and "resnet18" not in registry("backbone"):
        del kwargs["backbone"]
    return create_model(name, **kwargs).eval()


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _onnxruntime_or_skip():
    pytest.importorskip("onnxscript", reason="ONNX export needs the onnx extra (onnxscript)")
    pytest.importorskip("onnxruntime", reason="parity needs the onnx extra (onnxruntime)")


@pytest.mark.parametrize("name", list_models())
def test_onnx_parity_every_registered_model(name, tmp_path):
    _onnxruntime_or_skip()
    import onnx

    model = _build(name)
    path = ex.export_model(model, "onnx", tmp_path / f"{name}.onnx", HEIGHT, WIDTH)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "images" and out.name == "embedding"
    assert not inp.type.tensor_type.shape.dim[0].HasField("dim_value"), "batch must be dynamic"
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["height"] == str(HEIGHT) and json.loads(meta["mean"])[0] == pytest.approx(0.485)
    diff = ex.max_abs_difference(model, path, "onnx", HEIGHT, WIDTH, batches=(1, 3))
    assert diff is not None and diff <= TOLERANCE, f"{name}: onnxruntime differs by {diff}"


@pytest.mark.parametrize("name", list_models())
def test_torchscript_parity_every_registered_model(name, tmp_path):
    import torch

    model = _build(name)
    path = ex.export_model(model, "torchscript", tmp_path / f"{name}.pt", HEIGHT, WIDTH)
    diff = ex.max_abs_difference(model, path, "torchscript", HEIGHT, WIDTH, batches=(1, 3))
    assert diff <= TOLERANCE, f"{name}: TorchScript differs by {diff}"
    files = {"reidcore.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated
        torch.jit.load(str(path), _extra_files=files)
    assert json.loads(files["reidcore.json"])["width"] == str(WIDTH)


def test_export_command_on_a_tiny_run(tiny_plugin, tiny_data, tmp_path, capsys):
    exp = tmp_path / "exp"
    assert main(tiny_args(tiny_data, exp, "--iterations", "2", "--no-tensorboard")) == 0
    capsys.readouterr()
    assert main(["export", "--experiment", str(exp), "--format", "torchscript"]) == 0
    out = capsys.readouterr().out
    assert (exp / "export" / "model.pt").is_file()
    assert "verified: max abs difference" in out and "dynamic batch" in out
    if _has("onnxruntime") and _has("onnxscript"):
        target = tmp_path / "tiny.onnx"
        assert main(["export", "--experiment", str(exp), "--format", "onnx",
                     "--output", str(target)]) == 0
        assert target.is_file() and "verified" in capsys.readouterr().out
    assert main(["list", "commands"]) == 0
    assert "export" in capsys.readouterr().out


def test_onnx_export_without_onnxscript_names_the_extra(tiny_plugin, tmp_path, monkeypatch):
    from reidcore.errors import ReidError

    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ReidError, match=r"reidcore\[onnx\]"):
        ex.export_model(tiny_plugin.tiny_model().eval(), "onnx", tmp_path / "m.onnx", 32, 16)


def test_export_of_experiment_without_checkpoint(tiny_plugin, tmp_path, capsys):
    from reidcore import experiment

    exp = tmp_path / "empty"
    experiment.create(exp, "tiny", {"dataset": "tiny"})
    assert main(["export", "--experiment", str(exp)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
