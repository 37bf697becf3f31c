from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # tiny_plugin

SHARED = HERE.parent.parent / "shared"


def _registered_tiny():
    import tiny_plugin as module

    from reidcore.testing import registered_plugin

    with registered_plugin(module, "tiny"):
        yield module


def _tiny_dataset(tmp_path_factory):
    import tiny_plugin as module

    return module.write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def tiny_plugin():
    """The tiny test plugin (tests/tiny_plugin.py) registered for one test."""
    yield from _registered_tiny()


@pytest.fixture
def tiny_data(tmp_path_factory):
    """A tiny image dataset folder for one test."""
    return _tiny_dataset(tmp_path_factory)


@pytest.fixture(scope="module")
def tiny_plugin_module():
    """The tiny test plugin registered for a whole test module."""
    yield from _registered_tiny()


@pytest.fixture(scope="module")
def tiny_data_module(tiny_plugin_module, tmp_path_factory):
    """A tiny image dataset folder shared by a whole test module."""
    return _tiny_dataset(tmp_path_factory)
