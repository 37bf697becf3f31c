"""reidcore: a slim, plugin-based person re-identification core.

The core holds what every re-ID method shares (records, samplers, trainer,
evaluator, CLI); methods and datasets come from plugins registered through the
``reidcore`` entry-point group (see :mod:`reidcore.hookspecs`).
"""

__version__ = "0.1.0"

# OpenMP's wait policy is read when torch loads libgomp: set it first (see reidcore.threads)
from reidcore.threads import apply_wait_policy as _apply_wait_policy  # noqa: E402

_apply_wait_policy()
