"""reid-bot: the strong baseline of Luo, Gu, Liao, Lai, Jiang (CVPR Workshops 2019).

"Bag of Tricks and A Strong Baseline for Deep Person Re-identification", arXiv:1903.07071.

* ``reid_bot.model.BoTNet``: backbone (last stride 1), global average pooling and the
  BNNeck: the pooled feature feeds the triplet (and center) loss, its batch-normalised
  version feeds a bias-free identity classifier and is the test-time embedding;
* ``reid_bot.center_loss.CenterLoss``: Wen et al. (ECCV 2016) center loss with the
  paper's own center learning rate;
* ``reid_bot.recipe.BoTRecipe``: the paper's training defaults (recipe ``bot``).

The batch-hard triplet loss comes from reid-trinet through the loss registry.
Registered through the ``reidcore`` entry point ``bot`` (``reid_bot.plugin``); importing
this package imports no torch.
"""

__version__ = "0.1.0"
