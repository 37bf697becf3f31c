"""reid-san: the Semantics-Aligned Network (Jin et al., AAAI 2020).

Not implemented yet. This distribution registers no entry point, so it adds
nothing to reidcore's registries; installing it is harmless.
"""

__version__ = "0.1.0"
