"""reidcore: a slim, plugin-based person re-identification core.

The core holds what every re-ID method shares (records, samplers, trainer,
evaluator, CLI); methods and datasets come from plugins registered through the
``reidcore`` entry-point group (see :mod:`reidcore.hookspecs`).
"""

__version__ = "0.1.0"
