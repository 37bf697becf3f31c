"""reid-dcnn: the identification + verification Siamese embedding (Zheng et al., TOMM 2017).

Not implemented yet. This distribution registers no entry point, so it adds
nothing to reidcore's registries; installing it is harmless.
"""

__version__ = "0.1.0"
