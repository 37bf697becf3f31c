"""Test helpers for reidcore and for third-party plugin authors (an opt-in pytest plugin).

Enable the fixtures in a plugin's test suite with, in ``conftest.py``::

    pytest_plugins = ["reidcore.testing"]

Fixtures:
    ``reid_register_plugin``: ``register(module, name)`` registers a plugin module (an object
        with ``@hookimpl`` functions) for the current test only, rebuilding the registries
        around it, so the test sees exactly what an installed plugin would add.
    ``reid_tiny_split``: a :class:`~reidcore.data.Split` of tiny images written to a temporary
        Market-1501-layout folder (4 training identities × 2 cameras × 3 images; P×K batches
        up to P=4, K=6 work).
    ``reid_model_contract``: :func:`check_model_contract`, for tests parametrized over your
        registered model names.

Plain helpers (no pytest needed): :func:`registered_plugin` (a context manager),
:func:`write_tiny_market`, :func:`check_model_contract`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reidcore import plugins as plugins_mod
from reidcore import registry


@contextlib.contextmanager
def registered_plugin(module: object, name: str, distribution: str = "test",
                      version: str = "0") -> Iterator[None]:
    """Register ``module`` as plugin ``name`` inside the block; unregister it afterwards."""
    current = plugins_mod.get_plugins()
    current.register(module, plugins_mod.PluginInfo(name, distribution, version, repr(module)))
    registry.clear_cache()
    try:
        yield
    finally:
        current.unregister(name)
        registry.clear_cache()


def write_tiny_market(root: Path, num_ids: int = 8, cams: int = 2, per_cam: int = 3,
                      seed: int = 0, size: tuple[int, int] = (32, 16)) -> Path:
    """Write a tiny dataset in the Market-1501 layout and return ``root``.

    Identities ``1..num_ids/2`` go to ``bounding_box_train/``, the others to ``query/``
    (first image per camera) and ``bounding_box_test/``. Each identity is a solid colour
    plus Gaussian noise, ``size`` = (height, width) pixels, JPEG, file names
    ``PPPP_cCs1_NNNNNN_00.jpg``.
    """
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 255, size=(num_ids, 3))
    h, w = size
    for pid in range(1, num_ids + 1):
        for cam in range(1, cams + 1):
            for k in range(per_cam):
                img = np.clip(colours[pid - 1] + rng.normal(0, 20, (h, w, 3)), 0, 255)
                if pid <= num_ids // 2:
                    sub = "bounding_box_train"
                else:
                    sub = "query" if k == 0 else "bounding_box_test"
                out = Path(root) / sub / f"{pid:04d}_c{cam}s1_{k:06d}_00.jpg"
                out.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img.astype(np.uint8)).save(out)
    return Path(root)


def read_tiny_market(root: Path, name: str = "tiny"):
    """Read :func:`write_tiny_market`'s folder into a Split (pid and camera from the names)."""
    from reidcore.data.records import Sample, Split
    from reidcore.errors import DatasetError

    parts = {}
    for part, folder in (("train", "bounding_box_train"), ("query", "query"),
                         ("gallery", "bounding_box_test")):
        files = sorted((Path(root) / folder).glob("*.jpg"))
        if not files:
            raise DatasetError(f"{Path(root) / folder} has no .jpg files")
        parts[part] = [Sample(str(f), int(f.name[:4]), int(f.name[6]) - 1) for f in files]
    return Split(name, **parts)


def check_model_contract(model_or_name: Any, *, height: int = 64, width: int = 32,
                         batch: int = 4, num_classes: int = 5, **kwargs: Any) -> None:
    """Assert the ``reid_models`` contract for a model instance or a registered name.

    The input is ``(batch, C, height, width)`` random float32, ``C`` the input channels of
    the model's first ``Conv2d``. Checks: train-mode forward returns a dict with ``"embedding"`` ``(B, embedding_dim)``
    float32, finite; ``"logits"`` (if any) is ``(B, num_classes)``; backward reaches every
    trainable parameter without NaN; eval-mode forward under ``no_grad`` gives the same shape.
    A name is built with ``create_model(name, num_classes=..., **kwargs)``.

    Raises:
        AssertionError: naming the broken part of the contract.
    """
    import torch

    model = model_or_name
    if isinstance(model_or_name, str):
        model = registry.create_model(model_or_name, num_classes=num_classes, **kwargs)
    from reidcore.commands.export import input_channels

    torch.manual_seed(0)  # input channels: the first conv's (e.g. RGB + pose maps for PSE)
    x = torch.randn(batch, input_channels(model), height, width)
    model.train()
    out = model(x)
    assert isinstance(out, dict) and "embedding" in out, "forward must return {'embedding': ...}"
    dim = getattr(model, "embedding_dim", None)
    assert isinstance(dim, int), "model must have an int embedding_dim attribute"
    emb = out["embedding"]
    assert emb.shape == (batch, dim), f"embedding shape {tuple(emb.shape)} != {(batch, dim)}"
    assert emb.dtype == torch.float32 and torch.isfinite(emb).all(), "embedding not finite float32"
    if "logits" in out:
        assert out["logits"].shape == (batch, num_classes), "logits must be (B, num_classes)"
    loss = emb.pow(2).mean() + sum(v.float().mean() for k, v in out.items() if k != "embedding")
    loss.backward()
    for pname, p in model.named_parameters():
        if p.requires_grad and p.grad is not None:
            assert torch.isfinite(p.grad).all(), f"gradient of {pname} is not finite"
    model.eval()
    with torch.no_grad():
        assert model(x)["embedding"].shape == (batch, dim), "eval-mode embedding shape differs"


try:  # the fixtures need pytest; the helpers above do not
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

if pytest is not None:

    @pytest.fixture
    def reid_register_plugin():
        """``register(module, name)``: a plugin for this test only."""
        stack = contextlib.ExitStack()

        def register(module: object, name: str, distribution: str = "test",
                     version: str = "0") -> None:
            stack.enter_context(registered_plugin(module, name, distribution, version))

        with stack:
            yield register

    @pytest.fixture
    def reid_tiny_split(tmp_path_factory):
        """A tiny Market-layout Split (see :func:`write_tiny_market`)."""
        return read_tiny_market(write_tiny_market(tmp_path_factory.mktemp("tiny-market")))

    @pytest.fixture
    def reid_model_contract():
        """:func:`check_model_contract`."""
        return check_model_contract
