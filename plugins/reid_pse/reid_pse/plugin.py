"""Hook implementations of reid-pse: names mapped to lazily imported targets.

Only strings: listing plugins imports neither torch nor this package's modules.
"""

from __future__ import annotations

from reidcore.hookspecs import hookimpl


@hookimpl
def reid_datasets():
    return {
        "rap": "reid_pse.rap:read_rap",
    }
