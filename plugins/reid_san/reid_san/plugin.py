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


@hookimpl
def reid_models():
    return {"san": "reid_san.model:SAEncoder"}


@hookimpl
def reid_recipes():
    return {"san": "reid_san.recipe:SANRecipe", "san-pg": "reid_san.recipe:SANPGRecipe"}


@hookimpl
def reid_commands():
    return {"san": "reid_san.cli:main"}
