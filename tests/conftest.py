from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # tiny_plugin

SHARED = HERE.parent.parent / "shared"


@pytest.fixture
def tiny_plugin():
    import tiny_plugin as module

    from reidcore.testing import registered_plugin

    with registered_plugin(module, "tiny"):
        yield module


@pytest.fixture
def tiny_data(tmp_path_factory):
    import tiny_plugin as module

    return module.write_tiny_dataset(tmp_path_factory.mktemp("tiny"))
