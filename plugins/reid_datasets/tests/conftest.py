from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # dataset_fixtures


@pytest.fixture(autouse=True)
def _index_cache(tmp_path_factory, monkeypatch):
    """Every test writes parsed-index caches into its own $REIDCORE_CACHE, never ~/.cache."""
    monkeypatch.setenv("REIDCORE_CACHE", str(tmp_path_factory.mktemp("reidcore-cache")))
