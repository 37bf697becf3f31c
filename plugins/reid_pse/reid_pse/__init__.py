"""reid-pse: the Pose-Sensitive Embedding (Sarfraz et al., CVPR 2018)."""

__version__ = "0.1.0"
