"""reid-dcnn: "A Discriminatively Learned CNN Embedding for Person Re-identification".

Zheng, Zheng, Yang, ACM TOMM 2017 (arXiv:1611.05666), following layumi's PyTorch code:
a shared backbone, a 512-d bottleneck descriptor, an identity classifier, and a verification
classifier on the element-wise product of two descriptors (the paper's square layer
``(x - y)^2`` is available too).
"""

__version__ = "0.1.0"
