"""Hook implementations of reid-trinet: names mapped to lazily imported targets.

Only strings: listing plugins imports neither torch nor this package's modules.
"""

from __future__ import annotations

from reidcore.hookspecs import hookimpl


@hookimpl
def reid_models():
    return {"trinet": "reid_trinet.model:TriNet"}


@hookimpl
def reid_losses():
    return {
        "batch_hard": "reid_trinet.losses:BatchHardTripletLoss",
        "batch_all": "reid_trinet.losses:BatchAllTripletLoss",
    }


@hookimpl
def reid_recipes():
    return {"trinet": "reid_trinet.recipe:TriNetRecipe"}
