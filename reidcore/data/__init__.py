"""Data records, image loading, transforms and P×K samplers."""

from reidcore.data.records import Sample, Split

__all__ = ["Sample", "Split"]
