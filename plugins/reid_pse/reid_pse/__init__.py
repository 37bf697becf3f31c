"""reid-pse: the Pose-Sensitive Embedding (Sarfraz et al., CVPR 2018).

Not implemented yet. This distribution registers no entry point, so it adds
nothing to reidcore's registries; installing it is harmless.
"""

__version__ = "0.1.0"
