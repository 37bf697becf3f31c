"""``python -m reidcore export``: a trained model's inference graph as ONNX or TorchScript.

The exported graph maps ``images`` ``(B, C, H, W)`` float32 to ``embedding`` ``(B, D)``
float32 with a dynamic batch size ``B``. Its input is preprocessed exactly as ``embed``
does: RGB scaled to ``[0, 1]``, then normalised with the ImageNet mean and standard
deviation (stored in the file's metadata with ``height`` and ``width``), resized to the
experiment's ``height × width``.

* ``--format onnx`` uses ``torch.onnx.export`` with the ``torch.export``-based (dynamo)
  exporter, which needs ``onnxscript``: ``pip install 'reidcore[onnx]'`` (also installs
  ``onnx`` and ``onnxruntime``). Metadata: the model's ``metadata_props``.
* ``--format torchscript`` traces the graph (``torch.jit.trace``); metadata in the
  archive's extra file ``reidcore.json``; load with ``torch.jit.load(path)``.

After writing, the file is loaded again and its output compared with PyTorch's at two batch
sizes (onnxruntime for ONNX, skipped with a note when onnxruntime is missing); the largest
absolute difference is printed, and a difference above ``--tolerance`` is an error.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reidcore.errors import ReidError

DESCRIPTION = "export a trained model's inference graph (images -> embedding) to ONNX or TorchScript"
FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
ONNX_HINT = "pip install 'reidcore[onnx]'"
PARITY_BATCHES = (1, 3)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reidcore export", description=DESCRIPTION)
    p.add_argument("--experiment", type=Path, required=True,
                   help="a trained experiment folder (its final model's newest checkpoint), a "
                   "stage folder, or a checkpoint file")
    p.add_argument("--format", choices=sorted(FORMATS), default="onnx", help="[onnx]")
    p.add_argument("--output", type=Path,
                   help="output file [EXPERIMENT/export/model.onnx or model.pt]")
    p.add_argument("--opset", type=int, default=None,
                   help="ONNX opset version [the exporter's recommended one]")
    p.add_argument("--verify", action=argparse.BooleanOptionalAction, default=True,
                   help="compare the exported file's output with PyTorch's [on]")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest allowed absolute difference when verifying [1e-4]")
    return p


def input_channels(model) -> int:
    """Input channels of ``model``: those of its first ``Conv2d`` (3 when it has none)."""
    from torch import nn

    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return int(first.in_channels) if first is not None else 3


def inference_graph(model):
    """``model`` (eval mode) wrapped so that ``forward(images) -> embedding (B, D)`` float32."""
    import torch
    from torch import nn

    class EmbeddingGraph(nn.Module):
        def __init__(self, inner: nn.Module):
            super().__init__()
            self.model = inner

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.model(images)["embedding"].float()

    return EmbeddingGraph(model).eval()


def metadata(height: int, width: int, channels: int, **extra: Any) -> dict[str, str]:
    """String metadata stored with the exported file (preprocessing and provenance)."""
    from reidcore import __version__
    from reidcore.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    return {
        "input": f"images (B, {channels}, {height}, {width}) float32",
        "output": "embedding (B, D) float32",
        "height": str(height), "width": str(width),
        "preprocessing": "RGB / 255, then (x - mean) / std",
        "mean": json.dumps(list(IMAGENET_MEAN)), "std": json.dumps(list(IMAGENET_STD)),
        "reidcore_version": __version__,
        **{k: str(v) for k, v in extra.items()},
    }


def export_onnx(model, path: Path, height: int, width: int, *, opset: int | None = None,
                meta: dict[str, str] | None = None) -> Path:
    """Write ``model``'s inference graph to ``path`` as ONNX with a dynamic batch axis.

    Raises:
        ReidError: ``onnxscript``/``onnx`` are missing (names the ``onnx`` extra) or the
            exporter fails (the message says which model could not be exported).
    """
    import torch

    try:
        import onnx
        import onnxscript  # noqa: F401  (the torch.export-based exporter needs it)
    except ImportError as exc:
        raise ReidError(f"ONNX export needs onnx and onnxscript ({exc}): {ONNX_HINT}") from exc
    graph = inference_graph(model)
    channels = input_channels(model)
    example = torch.randn(2, channels, height, width)  # batch 2: no 0/1 specialisation
    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        program = torch.onnx.export(
            graph, (example,), dynamo=True, input_names=["images"],
            output_names=["embedding"], dynamic_shapes={"images": {0: batch}},
            opset_version=opset, external_data=False, verbose=False,
        )
    except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds
        raise ReidError(f"torch.onnx.export failed for {type(model).__name__}: "
                        f"{type(exc).__name__}: {exc}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path), external_data=False)
    proto = onnx.load(str(path))
    for key, value in (meta or metadata(height, width, channels)).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return path


def export_torchscript(model, path: Path, height: int, width: int, *,
                       meta: dict[str, str] | None = None) -> Path:
    """Write ``model``'s inference graph to ``path`` as a traced TorchScript archive."""
    import warnings

    import torch

    graph = inference_graph(model)
    channels = input_channels(model)
    example = torch.randn(2, channels, height, width)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        traced = torch.jit.trace(graph, (example,), check_trace=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        extra = {"reidcore.json": json.dumps(meta or metadata(height, width, channels))}
        torch.jit.save(traced, str(path), _extra_files=extra)
    return path


def max_abs_difference(model, path: Path, fmt: str, height: int, width: int,
                       batches: Sequence[int] = PARITY_BATCHES) -> float | None:
    """Largest ``|exported(x) - model(x)|`` over random inputs of each batch size.

    ``None`` for ONNX when onnxruntime is not installed.
    """
    import numpy as np
    import torch

    graph = inference_graph(model)
    channels = input_channels(model)
    if fmt == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            return None
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        run = lambda x: session.run(["embedding"], {"images": x.numpy()})[0]  # noqa: E731
    else:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
            loaded = torch.jit.load(str(path), map_location="cpu").eval()
        run = lambda x: loaded(x).numpy()  # noqa: E731
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    with torch.no_grad():
        for b in batches:
            x = torch.randn(b, channels, height, width, generator=gen)
            expected = graph(x).numpy()
            got = np.asarray(run(x))
            if got.shape != expected.shape:
                raise ReidError(f"exported {fmt} model gives shape {got.shape} for batch {b}, "
                                f"PyTorch {expected.shape}")
            worst = max(worst, float(np.max(np.abs(got - expected))))
    return worst


def export_model(model, fmt: str, path: Path, height: int, width: int, *,
                 opset: int | None = None, meta: dict[str, str] | None = None) -> Path:
    """Export ``model`` (eval mode, CPU) in ``fmt`` (``onnx`` | ``torchscript``) to ``path``.

    Raises:
        ValueError: unknown format.
    """
    if fmt == "onnx":
        return export_onnx(model, path, height, width, opset=opset, meta=meta)
    if fmt == "torchscript":
        return export_torchscript(model, path, height, width, meta=meta)
    raise ValueError(f"unknown export format {fmt!r}; known: {', '.join(sorted(FORMATS))}")


def load_experiment_model(exp_dir: Path):
    """``(model on the CPU in eval mode, config, recipe name)`` of a trained experiment: its
    final model (the last stage's for a staged recipe), a stage folder's, or a checkpoint
    file's (see :func:`reidcore.trained.load_trained`)."""
    from reidcore.trained import load_trained

    trained = load_trained(exp_dir, "cpu")
    return trained.model.float().eval(), trained.config, trained.recipe_name


def main(argv: list[str]) -> int:
    """``python -m reidcore export --experiment DIR --format onnx|torchscript [--output FILE]``."""
    args = _parser().parse_args(argv)
    model, cfg, recipe_name = load_experiment_model(args.experiment)
    root = args.experiment if args.experiment.is_dir() else args.experiment.parent.parent
    out = args.output or root / "export" / f"model{FORMATS[args.format]}"
    meta = metadata(cfg.height, cfg.width, input_channels(model), recipe=recipe_name,
                    model=cfg.model, backbone=cfg.backbone, metric=cfg.metric,
                    embedding_dim=getattr(model, "embedding_dim", "?"))
    export_model(model, args.format, out, cfg.height, cfg.width, opset=args.opset, meta=meta)
    print(f"wrote {args.format} model: {out} ({out.stat().st_size / 2**20:.1f} MiB): "
          f"images (B, {input_channels(model)}, {cfg.height}, {cfg.width}) -> embedding "
          f"(B, {getattr(model, 'embedding_dim', 'D')}), dynamic batch")
    if args.verify:
        diff = max_abs_difference(model, out, args.format, cfg.height, cfg.width)
        if diff is None:
            print(f"not verified: onnxruntime is not installed ({ONNX_HINT})")
        elif diff > args.tolerance:
            raise ReidError(f"the exported model differs from PyTorch by {diff:.3g} "
                            f"(> --tolerance {args.tolerance:g}) at batch sizes "
                            f"{', '.join(map(str, PARITY_BATCHES))}")
        else:
            print(f"verified: max abs difference {diff:.2g} vs PyTorch at batch sizes "
                  f"{', '.join(map(str, PARITY_BATCHES))}")
    return 0
