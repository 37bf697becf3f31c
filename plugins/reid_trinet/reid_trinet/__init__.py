"""reid-trinet: TriNet and the triplet losses of Hermans, Beyer, Leibe (2017).

"In Defense of the Triplet Loss for Person Re-Identification", arXiv:1703.07737.

* ``reid_trinet.model.TriNet``: backbone, global average pooling, a 1024-unit
  layer with batch norm and ReLU, and a 128-d embedding (Sec. 4.1);
* ``reid_trinet.losses``: ``BatchHardTripletLoss`` and ``BatchAllTripletLoss``
  (Sec. 2, eq. 5 and 6, soft or fixed margin);
* ``reid_trinet.recipe.TriNetRecipe``: the paper's training defaults.

Registered through the ``reidcore`` entry point ``trinet`` (``reid_trinet.plugin``);
importing this package imports no torch.
"""

__version__ = "0.1.0"
