"""reid-san: the Semantics-Aligned Network (Jin et al., AAAI 2020)."""

__version__ = "0.1.0"
