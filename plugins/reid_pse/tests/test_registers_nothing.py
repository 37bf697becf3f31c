"""reid-pse is not implemented yet: it must register nothing rather than pretend to work."""

from __future__ import annotations

from importlib import metadata


def test_distribution_has_no_reidcore_entry_point():
    dist = metadata.distribution("reid-pse")
    assert [ep for ep in dist.entry_points if ep.group == "reidcore"] == []


def test_package_imports():
    import reid_pse

    assert reid_pse.__version__ == metadata.version("reid-pse")
