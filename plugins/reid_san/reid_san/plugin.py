"""Hook implementations of reid-san: names mapped to lazily imported targets.

Only strings: listing plugins imports neither torch nor this package's modules.
"""

from __future__ import annotations

from reidcore.hookspecs import hookimpl


@hookimpl
def reid_datasets():
    return {
        "pit": "reid_san.textures:read_pit",
        "synthetic-textures": "reid_san.textures:read_synthetic_textures",
    }
