"""The core's extra CLI verbs, registered through the ``reid_commands`` hook like plugin verbs.

* ``visualize`` (:mod:`reidcore.commands.visualize`): ranked-list images and a CMC curve;
* ``export`` (:mod:`reidcore.commands.export`): ONNX or TorchScript inference graph.
"""
