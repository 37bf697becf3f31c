"""Test helpers for reidcore and for third-party plugin authors (an opt-in pytest plugin).

Enable the fixtures in a plugin's test suite with, in ``conftest.py``::

    pytest_plugins = ["reidcore.testing"]

Fixtures:
    ``reid_register_plugin``: ``register(module, name)`` registers a plugin module (an object
        with ``@hookimpl`` functions) for the current test only, rebuilding the registries
        around it, so the test sees exactly what an installed plugin would add. Registering
        a module that is already installed (its entry point loaded) is a no-op; a module
        under the name of an installed plugin replaces that plugin for the test.
    ``reid_tiny_market``: the path of a tiny dataset folder in the Market-1501 layout
        (:func:`write_tiny_market`), readable by ``--dataset market1501 --data DIR``.
    ``reid_tiny_split``: a :class:`~reidcore.data.Split` of tiny images written to a temporary
        Market-1501-layout folder (4 training identities × 2 cameras × 3 images; P×K batches
        up to P=4, K=6 work).
    ``reid_run_recipe``: :func:`run_recipe` with the experiment and cache folders in the
        test's temporary folder: ``reid_run_recipe("trinet", data_dir, "--margin", "0.3")``.
    ``reid_model_contract``: :func:`check_model_contract`, for tests parametrized over your
        registered model names.

Plain helpers (no pytest needed): :func:`registered_plugin` (a context manager),
:func:`write_tiny_market`, :func:`run_recipe`, :func:`check_model_contract`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from reidcore import plugins as plugins_mod
from reidcore import registry


@contextlib.contextmanager
def registered_plugin(module: object, name: str, distribution: str = "test",
                      version: str = "0") -> Iterator[None]:
    """Register ``module`` as plugin ``name`` inside the block; unregister it afterwards.

    A module that is already registered (an installed plugin whose entry point was
    loaded, under any name) stays as it is: the block sees it and nothing is undone.
    A different module under the name of a loaded plugin replaces that plugin inside
    the block; the installed one is put back (at its place in load order) afterwards.
    """
    current = plugins_mod.get_plugins()
    if current.pm.is_registered(module):
        yield
        return
    replaced = current.pm.get_plugin(name)
    index = current.load_index(name)
    old_info = current.info(name)
    if replaced is not None:
        current.unregister(name)
    current.register(module, plugins_mod.PluginInfo(name, distribution, version, repr(module)))
    registry.clear_cache()
    try:
        yield
    finally:
        current.unregister(name)
        if replaced is not None and old_info is not None:
            current.register(replaced, old_info)
            current.infos.insert(index, current.infos.pop())
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


TINY_RUN_FLAGS: tuple[str, ...] = (
    "--height", "32", "--width", "16", "--pad", "2", "--batch-p", "2", "--batch-k", "2",
    "--iterations", "2", "--decay-start-iteration", "1", "--workers", "0",
    "--backbone", "resnet18", "--pretrained", "none", "--log-every", "1",
    "--embed-batch-size", "16", "--no-tensorboard",
)
"""Flags that make any :class:`~reidcore.recipe.TrainConfig` recipe train in seconds on a CPU:
32×16 images, P×K = 2×2, 2 iterations, ResNet-18 from random weights. Staged recipes
(e.g. ``pse``) need their own stage lengths on top (``--view-iterations 1 ...``)."""


@attrs.frozen
class RecipeRun:
    """The outcome of :func:`run_recipe`.

    Attributes:
        returncode: the process's exit status (0 success, 2 bad input).
        stdout, stderr: its output.
        experiment: the experiment folder.
        report: ``experiment/report.json`` as a dict, or ``None`` when it was not written.
    """

    returncode: int
    stdout: str
    stderr: str
    experiment: Path
    report: dict | None


def run_recipe(recipe: str, data: Path | None, *flags: str, experiment: Path,
               dataset: str = "market1501", tiny: bool = True, cache: Path | None = None,
               timeout: float = 600) -> RecipeRun:
    """Run ``python -m reidcore run RECIPE --dataset DATASET --data DATA`` in a subprocess.

    Args:
        recipe: a registered recipe name.
        data: the ``--data`` folder (e.g. from :func:`write_tiny_market`); ``None`` omits it.
        *flags: more flags, after :data:`TINY_RUN_FLAGS` so they override them.
        experiment: the ``--experiment`` folder (must not exist yet).
        dataset: ``--dataset`` (default ``market1501``: the layout :func:`write_tiny_market` writes).
        tiny: prepend :data:`TINY_RUN_FLAGS`.
        cache: ``$REIDCORE_CACHE`` for the run (dataset index caches); default
            ``EXPERIMENT.parent / "reidcore-cache"`` so nothing is written to the user's cache.
        timeout: seconds before ``subprocess.TimeoutExpired`` is raised.

    Returns:
        a :class:`RecipeRun`; the caller asserts on it (``assert run.returncode == 0, run.stderr``).
    """
    experiment = Path(experiment)
    argv = [sys.executable, "-m", "reidcore", "run", recipe, "--dataset", dataset]
    if data is not None:
        argv += ["--data", str(data)]
    argv += [*(TINY_RUN_FLAGS if tiny else ()), *flags, "--experiment", str(experiment)]
    env = {**os.environ, "REIDCORE_CACHE": str(cache or experiment.parent / "reidcore-cache")}
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    report_path = experiment / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else None
    return RecipeRun(res.returncode, res.stdout, res.stderr, experiment, report)


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
    def reid_tiny_market(tmp_path_factory) -> Path:
        """A tiny Market-1501-layout folder (see :func:`write_tiny_market`)."""
        return write_tiny_market(tmp_path_factory.mktemp("tiny-market"))

    @pytest.fixture
    def reid_run_recipe(tmp_path):
        """``run(recipe, data, *flags, **kw) -> RecipeRun``: :func:`run_recipe` in ``tmp_path``."""
        counter = iter(range(1_000_000))

        def run(recipe: str, data: Path | None, *flags: str, **kwargs: Any) -> RecipeRun:
            kwargs.setdefault("experiment", tmp_path / f"experiment-{recipe}-{next(counter)}")
            kwargs.setdefault("cache", tmp_path / "reidcore-cache")
            return run_recipe(recipe, data, *flags, **kwargs)

        return run

    @pytest.fixture
    def reid_tiny_split(tmp_path_factory):
        """A tiny Market-layout Split (see :func:`write_tiny_market`)."""
        return read_tiny_market(write_tiny_market(tmp_path_factory.mktemp("tiny-market")))

    @pytest.fixture
    def reid_model_contract():
        """:func:`check_model_contract`."""
        return check_model_contract
