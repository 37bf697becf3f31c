"""Hook implementations of reid-bot: names mapped to lazily imported targets (no torch)."""

from __future__ import annotations

from reidcore.hookspecs import hookimpl


@hookimpl
def reid_models():
    return {"bot": "reid_bot.model:BoTNet"}


@hookimpl
def reid_losses():
    return {"center": "reid_bot.center_loss:CenterLoss"}


@hookimpl
def reid_recipes():
    return {"bot": "reid_bot.recipe:BoTRecipe"}
